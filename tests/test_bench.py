import pytest

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
    assert report["c_over_a"] == pytest.approx(report["c_sentences_per_s"] / report["a_sentences_per_s"], rel=0.02)
    assert report["c_fraction_of_limit"] > 0
    assert "macro_f1_change_points" in report


def test_flops_per_sentence_grows_with_length(tiny_bert):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_bert)
    assert bench.encoder_flops_per_sentence(model, 40) > 2 * bench.encoder_flops_per_sentence(model, 10) * 0.99


def test_training_benchmark_leaves_the_project_store_alone(tiny_corpus, tmp_path, store, monkeypatch):
    monkeypatch.setattr(config, "train_config", lambda task, family, overrides=(): config.load(
        config.TrainConfig, [], [f"task={task}", f"model.family={family}", f"data.corpus_dir={tiny_corpus}",
                                 "model.encoder=minilm", *overrides]))
    report = bench.run_training("tfidf", "minilm")["report"]
    assert report["within_goal"] and report["time_ratio_to_baseline"] > 0
    from mlflow.tracking import MlflowClient

    assert MlflowClient(store).get_experiment_by_name("benchmarks") is not None
    assert MlflowClient(store).get_experiment_by_name("stance") is None, "training runs went to the temporary store"
