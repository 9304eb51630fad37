import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import bench, config, tracking, train
from pipeline.data import load_split


def test_scoring_benchmark_compares_naive_two_model_and_end_to_end_paths(tiny_corpus, tiny_bert, tmp_path, store):
    common = [f"data.corpus_dir={tiny_corpus}", f"model.encoder={tiny_bert}", "training.epochs=1",
              "training.batch_size=8"]
    for task in ("stance", "sentiment"):
        train.run(config.train_config(task, "finetune", overrides=[*common, f"training.output_dir={tmp_path / task}"]))
    train.run(config.train_config(None, "multitask", overrides=[*common, f"training.output_dir={tmp_path / 'mt'}"]))

    result = bench.run_scoring(naive_sentences=6, batch_tokens=64, max_batch_sentences=8, corpus_dir=str(tiny_corpus),
                               rounds=2)
    report, rows = result["report"], result["measurements"]
    test = load_split(tiny_corpus, "test")
    assert report["sentences"] == len(test) and report["naive_sentences"] == 6 and report["c_sentences"] > 0
    names = [m.name for m in rows]
    assert names[0].startswith("(a)") and names[1].startswith("(b)") and names[-1].startswith("(c)")
    assert [n.split(": ")[1] for n in names[2:8]] == ["fp32", "bf16 autocast", "bf16 weights",
                                                       "bf16 weights, token budget 64",
                                                       "bf16 weights, token budget 64, fixed shapes",
                                                       "fused Linear layers, token budget 64, fixed shapes"]
    assert report["c_over_a"] == round(rows[-1].rate / rows[0].rate, 2)
    # (c) keeps the one-off model loading apart from its rate, and reports both.
    assert report["c_model_load_seconds"] > 0
    assert report["c_with_load_sentences_per_s"] < report["c_sentences_per_s"]
    assert report["c_over_b"] == round(rows[-1].rate / rows[1].rate, 2)
    assert report["limit_sentences_per_s"] > 0 and report["counted_gflops_per_sentence"] > 0
    # (c)'s limit is taken from the FLOPs of the sentences it scored (segmenting merges some of the split's).
    assert report["c_counted_gflops_per_sentence"] > 0 and report["c_limit_sentences_per_s"] > 0
    # The fast path and (c) run in rounds, each between two probes of the limit; the fractions are medians.
    probes = report["gemm_probes_gflops"]
    assert report["rounds"] == 2 and len(probes) == 5 and min(probes) > 0
    assert report["bf16_gemm_gflops_at_model_shapes"] == pytest.approx(np.median(probes), rel=1e-3)
    for path in ("model", "c"):
        assert report[f"{path}_fraction_of_limit"] == pytest.approx(np.median(report[f"{path}_fractions_by_round"]),
                                                                    rel=1e-3)
    for task in ("stance", "sentiment"):
        for key in ("test_macro_f1_b", "test_macro_f1_c"):
            assert 0 <= report[f"{task}_{key}"] <= 1
        change = report[f"{task}_test_macro_f1_c"] - report[f"{task}_test_macro_f1_b"]
        assert report[f"{task}_macro_f1_change_points"] == pytest.approx(100 * change, abs=0.02)
    logged = MlflowClient(store).search_runs([MlflowClient(store).get_experiment_by_name("benchmarks")
                                              .experiment_id])[0].data.metrics
    assert logged["bench/c_over_a"] == report["c_over_a"] and logged["bench/sentences"] == len(test)


def test_naive_baseline_computes_what_the_scorer_computes(tiny_corpus, tiny_bert, tmp_path, store):
    result = train.run(config.train_config("stance", "finetune", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}", f"model.encoder={tiny_bert}",
        "training.epochs=1", "training.batch_size=8"]))
    classifier = tracking.load_model(f"runs:/{result.run_id}/model")
    classifier.set_fast_path("none")
    texts = load_split(tiny_corpus, "test").text.tolist()[:8]
    np.testing.assert_allclose(bench._one_at_a_time(classifier, texts), classifier.predict_proba(texts, 4),
                               atol=1e-4)


def test_counted_flops_grow_with_sentence_length(tiny_corpus, tiny_bert, tmp_path, store):
    result = train.run(config.train_config("stance", "finetune", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}", f"model.encoder={tiny_bert}",
        "training.epochs=1", "training.batch_size=8", "tracking.register=false"]))
    classifier = tracking.load_model(f"runs:/{result.run_id}/model")
    short = bench.counted_flops_per_sentence(classifier, ["Rates rose."] * 4, 4)
    long = bench.counted_flops_per_sentence(classifier, ["Rates rose again in May, the bank said on Monday, "
                                                         "as prices kept climbing across the region."] * 4, 4)
    assert long > 2 * short
    assert bench.gemm_flops_per_s(classifier.torch_module(), rows=64, repeats=2) > 0


def test_training_benchmark_leaves_the_project_store_alone(tiny_corpus, tmp_path, store, monkeypatch):
    monkeypatch.setattr(config, "train_config", lambda task, family, overrides=(): config.load(
        config.TrainConfig, [], [f"task={task}", f"model.family={family}", f"data.corpus_dir={tiny_corpus}",
                                 "model.encoder=minilm", *overrides]))
    report = bench.run_training("tfidf", "minilm")["report"]
    assert MlflowClient(store).get_experiment_by_name("benchmarks") is not None
    assert MlflowClient(store).get_experiment_by_name("stance") is None, "training runs went to the temporary store"
    # It trained the configuration it names: the same TF-IDF run on the same corpus scores the same.
    same = train.run(config.train_config("stance", "tfidf", overrides=["tracking.register=false",
                                                                        f"training.output_dir={tmp_path}"]))
    assert report["default_test_macro_f1"] == round(same.test["macro_f1"], 4)


def test_memory_benchmark_scores_both_sizes_in_a_separate_process(models, tiny_corpus, store):
    overrides = ["models=single", f"stance_model={models['stance']}", f"sentiment_model={models['sentiment']}"]
    result = bench.run_memory(n_sentences=60, small_sentences=20, overrides=overrides, corpus_dir=str(tiny_corpus))
    report = result["report"]
    assert 20 <= report["small_sentences"] < 60 <= report["large_sentences"]
    assert report["small_peak_rss_mib"] > 50 and report["large_peak_rss_mib"] > 50, "a Python process with torch"
    assert report["peak_ratio_large_to_small"] == round(report["large_peak_rss_mib"] / report["small_peak_rss_mib"], 3)
    assert report["within_goal"] == (report["large_peak_rss_mib"] <= 1536)
    failing = r"pipeline score exited with 2 on .*articles-10\.jsonl: error: expected .* found 'both'"
    with pytest.raises(bench.BenchError, match=failing):
        bench.run_memory(n_sentences=20, small_sentences=10, overrides=["models=both"], corpus_dir=str(tiny_corpus))
