"""Int8 of the multi-task model with OpenVINO and NNCF (pipeline.int8), and its benchmark."""

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import bench, config, int8, quantize, tracking, train
from pipeline.data import load_split


def tiny_multitask(corpus, tmp_path, encoder, *extra: str):
    result = train.run(config.train_config(None, "multitask", overrides=[
        f"data.corpus_dir={corpus}", f"training.output_dir={tmp_path / 'out'}", f"model.encoder={encoder}",
        "training.epochs=1", "training.batch_size=8", *extra]))
    return result, tracking.load_model(f"runs:/{result.run_id}/model")


def test_openvino_predicts_what_pytorch_predicts_and_int8_keeps_the_named_layers(tiny_corpus, tiny_bert, tmp_path,
                                                                                  store):
    _, classifier = tiny_multitask(tiny_corpus, tmp_path, tiny_bert, "tracking.register=false")
    classifier.set_fast_path("none")
    texts = load_split(tiny_corpus, "test").text.tolist()
    converted = int8.convert(classifier)

    exact = int8.OpenVinoModel(converted, classifier, precision="f32")
    expected = classifier.raw_proba_tasks(texts, 4)
    got = exact.raw_proba_tasks(texts, batch_size=4, batch_tokens=64)
    for task in ("stance", "sentiment"):
        np.testing.assert_allclose(got[task], expected[task], atol=1e-4)
    assert exact.int8_matmuls() == 0

    calibration = load_split(tiny_corpus, "train").text.tolist()
    every = int8.OpenVinoModel(int8.quantize(int8.convert(classifier), classifier, calibration), classifier)
    kept = int8.OpenVinoModel(int8.quantize(int8.convert(classifier), classifier, calibration,
                                            keep=[int8.FEED_FORWARD_OUTPUTS]), classifier)
    # The tiny BERT has 2 layers: 6 Linear layers each, 2 of them feed-forward outputs.
    assert every.int8_matmuls() >= 12
    assert kept.int8_matmuls() == every.int8_matmuls() - 2
    probabilities = kept.raw_proba_tasks(texts, batch_size=4, batch_tokens=64)
    for task, p in probabilities.items():
        assert p.shape == expected[task].shape
        np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-3)

    with pytest.raises(ValueError, match="quantize needs calibration sentences"):
        int8.quantize(converted, classifier, [])
    classifier.set_fast_path("bf16")
    with pytest.raises(ValueError, match="convert needs the model's fp32 weights"):
        int8.convert(classifier)


def test_int8_benchmark_measures_every_path_against_the_bf16_scoring_path(tiny_corpus, tiny_bert, tmp_path, store):
    tiny_multitask(tiny_corpus, tmp_path, tiny_bert)  # registered: news-classifier@champion
    quantize.run(config.load(config.QuantizeConfig, ["configs/quantize.yaml"], [  # news-classifier-int8@champion
        f"corpus_dir={tiny_corpus}", "calibration_sentences=8", "batch_tokens=64", "max_loss_points=100"]))
    out = bench.run_int8(calibration_sentences=8, batch_tokens=64, max_batch_sentences=8, rounds=2,
                         corpus_dir=str(tiny_corpus))
    report, rows = out["report"], out["measurements"]
    test = load_split(tiny_corpus, "test")
    assert report["sentences"] == len(test) and report["calibration_sentences"] == 8 and report["rounds"] == 2
    assert [m.name for m in rows[2:]] == [*bench.INT8_ROWS.values(), *bench.INT8_SCORE_ROWS.values()]
    assert rows[0].name.startswith("NNCF quantisation") and rows[0].items == 8
    base = rows[2].rate
    for m, key in zip(rows[2:7], bench.INT8_ROWS, strict=True):
        assert m.items == len(test)
        rounds = [float(r) for r in report[f"{key}_rounds_sentences_per_s"].split(", ")]
        assert len(rounds) == 2 and round(m.rate, 1) in rounds
        assert report[f"{key}_over_bf16"] == pytest.approx(m.rate / base, abs=1e-3)
        for task in ("stance", "sentiment"):
            assert 0 <= report[f"{key}_{task}_test_macro_f1"] <= 1
            if key != "bf16":
                change = 100 * (report[f"{key}_{task}_test_macro_f1"] - report[f"bf16_{task}_test_macro_f1"])
                assert report[f"{key}_{task}_change_points"] == pytest.approx(change, abs=0.02)
    for key in ("torch_int8", "openvino_int8", "openvino_int8_keep_ffn"):
        lost = min(report[f"{key}_stance_change_points"], report[f"{key}_sentiment_change_points"])
        assert report[f"{key}_passes"] == (report[f"{key}_over_bf16"] > 1 and lost >= -0.5)
    assert report["openvino_int8_int8_matmuls"] > report["openvino_int8_keep_ffn_int8_matmuls"] > 0
    assert report["openvino_bf16_int8_matmuls"] == 0
    # pipeline score end to end with the champion and with the registered int8 model, in the same rounds.
    assert rows[-1].items == rows[-2].items > 0
    assert report["score_int8_over_bf16"] == pytest.approx(rows[-1].rate / rows[-2].rate, abs=1e-3)
    client = MlflowClient(store)
    logged = client.search_runs([client.get_experiment_by_name("benchmarks").experiment_id])[0].data.metrics
    assert logged["bench/openvino_int8_over_bf16"] == report["openvino_int8_over_bf16"]
    assert logged["bench/int8_passes"] == int(report["int8_passes"])
    with pytest.raises(bench.BenchError, match="rounds must be at least 1, found 0"):
        bench.run_int8(rounds=0, corpus_dir=str(tiny_corpus))
