import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import bench, config, train


@pytest.mark.parametrize("family", ["finetune", "frozen"])
def test_scoring_benchmark_reports_ratios_and_limit(family, tiny_corpus, tiny_bert, tmp_path, store):
    result = train.run(config.train_config("stance", family, overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}", f"model.encoder={tiny_bert}",
        "training.epochs=1", "training.batch_size=8"]))
    report = bench.run_scoring(f"runs:/{result.run_id}/model", n_sentences=24)["report"]
    assert report["sentences"] == 24
    for key in ("a_sentences_per_s", "b_sentences_per_s", "c_sentences_per_s", "limit_sentences_per_s"):
        assert report[key] > 0
    assert "macro_f1_change_points" in report
    # The ratios compare like with like: the one-at-a-time baseline computes what the scorer computes.
    from pipeline import tracking
    from pipeline.data import load_split

    classifier = tracking.load_model(f"runs:/{result.run_id}/model")
    classifier.set_fast_path("none")
    texts = load_split(tiny_corpus, "test").text.tolist()[:8]
    np.testing.assert_allclose(bench._one_at_a_time(classifier, texts), classifier.predict_proba(texts, 4),
                               atol=1e-4)
    logged = MlflowClient(store).search_runs([MlflowClient(store).get_experiment_by_name("benchmarks")
                                              .experiment_id])[0].data.metrics
    assert logged["bench/c_over_a"] == report["c_over_a"] and logged["bench/sentences"] == 24


def test_flops_per_sentence_grows_with_length(tiny_bert):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert)
    assert bench.encoder_flops_per_sentence(model, 40) > 2 * bench.encoder_flops_per_sentence(model, 10) * 0.99


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
