"""The quantise stage: the multi-task champion in OpenVINO int8, registered behind the quality gate."""

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipeline import config, metrics, quantize, score, tracking, train
from pipeline.data import label_maps, load_split

TASKS = ("stance", "sentiment")


def quantize_cfg(corpus, *extra: str) -> config.QuantizeConfig:
    return config.load(config.QuantizeConfig, ["configs/quantize.yaml"], [
        f"corpus_dir={corpus}", "calibration_sentences=8", "batch_tokens=64", *extra])


def test_int8_model_is_registered_behind_the_gate_restored_as_evaluated_and_scores(tiny_corpus, tiny_bert,
                                                                                     tmp_path, store):
    train.run(config.train_config(None, "multitask", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}", f"model.encoder={tiny_bert}",
        "training.epochs=1", "training.batch_size=8"]))

    result = quantize.run(quantize_cfg(tiny_corpus, "max_loss_points=100"))
    assert result.passes and result.promoted and result.registered_version == "1"
    client = MlflowClient(store)
    run = client.get_run(result.run_id)
    logged = run.data.metrics
    assert run.data.params["runtime"] == "openvino-int8" and run.data.params["calibration_sentences"] == "8"
    assert run.data.tags["source_model"].startswith("news-classifier version 1")
    for task in TASKS:
        for split in ("val", "test"):
            assert logged[f"{task}/{split}/macro_f1"] == pytest.approx(result.int8[split][task], abs=1e-6)
            assert logged[f"{task}/{split}/change_points"] == pytest.approx(
                result.change_points(split)[task], abs=1e-6)
        assert f"{task}/val/temperature" in logged and f"{task}/val/ece_uncalibrated" in logged

    # The registered model is the one the gate measured, restored without PyTorch weights.
    restored = tracking.load_model("models:/news-classifier-int8@champion")
    assert restored.torch_module() is None and restored.compiled.int8_matmuls() > 0
    val = load_split(tiny_corpus, "val")
    for task in TASKS:
        earned = metrics.compute(val[task].map(label_maps(task)[0]).to_numpy(),
                                 restored.heads[task].predict_proba(val.text.tolist()),
                                 restored.heads[task].labels)["macro_f1"]
        assert earned == pytest.approx(result.int8["val"][task], abs=1e-6)

    # pipeline score --model int8 labels both tasks with it.
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "a.txt").write_text("The union accused the operator of hiding safety reports. The board will meet "
                                    "on March 3 to review the budget.")
    cfg = config.load(config.ScoreConfig, ["configs/score.yaml"], [
        "models=multitask", "multitask_model=models:/news-classifier-int8@champion", "batch_tokens=64"])
    scored = score.run(cfg, [str(articles)], str(tmp_path / "scores"))
    sentences = pd.read_parquet(tmp_path / "scores" / "sentences.parquet")
    assert scored.sentences == len(sentences) == 2
    restored.batch_tokens, restored.fixed_shapes = 64, True  # the batches scoring made (bf16 numerics follow shape)
    both = restored.predict_tasks(sentences["text"].tolist())
    np.testing.assert_allclose(sentences["sentiment_confidence"], both["sentiment"].max(1), atol=1e-5)

    # A gate it cannot pass (a 100-point gain): registered for the record, the champion stays.
    failed = quantize.run(quantize_cfg(tiny_corpus, "max_loss_points=-100"))
    assert not failed.passes and not failed.promoted and failed.registered_version == "2"
    assert str(client.get_model_version_by_alias("news-classifier-int8", "champion").version) == "1"


def test_quantize_refuses_a_model_that_is_not_a_pytorch_multitask_one(models, tiny_corpus, store):
    with pytest.raises(quantize.QuantizeError, match=r"is not a PyTorch multi-task model \(family tfidf\); pass a "
                                                     r"news-classifier URI"):
        quantize.run(quantize_cfg(tiny_corpus, f"source_model={models['stance']}"))
