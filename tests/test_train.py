from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from pipeline import config, tracking, train


def _test_macro_f1(classifier, corpus: Path) -> float:
    from pipeline import metrics
    from pipeline.data import label_maps, load_split

    test = load_split(corpus, "test")
    label2id, _ = label_maps(classifier.task)
    probabilities = classifier.predict_proba(test.text.tolist(), 64)
    return metrics.compute(test[classifier.task].map(label2id).to_numpy(), probabilities, classifier.labels)["macro_f1"]


def train_cfg(corpus: Path, tmp_path: Path, family: str = "tfidf", *extra: str) -> config.TrainConfig:
    return config.train_config("stance", family, overrides=[
        f"data.corpus_dir={corpus}", f"training.output_dir={tmp_path / 'out'}", *extra])


def test_tfidf_run_is_tracked_registered_and_champion(tiny_corpus, tmp_path, store):
    result = train.run(train_cfg(tiny_corpus, tmp_path))
    client = MlflowClient(store)
    run = client.get_run(result.run_id)
    assert run.info.run_name.startswith("stance-tfidf-")
    assert run.data.params["family"] == "tfidf" and run.data.params["n_train"] == "30"
    assert run.data.params["n_train_evaluated"] == "30"  # under the sample size: every training sentence
    assert {"task", "model_family", "data_version", "git_commit"} <= set(run.data.tags)
    for name in ("val/macro_f1", "test/macro_f1", "test/ece", "test/f1_wary", "best/val_macro_f1", "train/macro_f1"):
        assert name in run.data.metrics
    artifacts = {a.path for folder in ("eval", "config") for a in client.list_artifacts(result.run_id, folder)}
    assert {"eval/confusion_matrix_test.png", "eval/classification_report_test.txt",
            "eval/misclassified_test.csv", "eval/learning_curves.png", "config/resolved.yaml"} <= artifacts
    assert len(run.inputs.dataset_inputs) == 3
    assert result.registered_version == "1"
    assert tracking.champion_score("stance-classifier") == ("1", result.best_val_macro_f1)
    model = mlflow.pyfunc.load_model("models:/stance-classifier@champion")
    output = model.predict(__import__("pandas").DataFrame({"text": ["The union accused the operator."]}))
    assert list(output.columns) == ["label", "confidence", "prob_confident", "prob_wary", "prob_accusatory",
                                    "prob_dismissive", "prob_neutral"]
    assert abs(output.filter(like="prob_").sum(axis=1).iloc[0] - 1.0) < 1e-6


def test_train_metrics_come_from_a_seeded_sample_of_a_large_training_split():
    rows = train._sample_rows(5000, 1000, seed=7)
    assert len(rows) == len(set(rows)) == 1000 and list(rows) == sorted(rows) and rows.max() < 5000
    assert list(rows) == list(train._sample_rows(5000, 1000, seed=7))
    assert list(train._sample_rows(30, 1000, seed=7)) == list(range(30))


def test_champion_moves_only_on_better_validation(store, tiny_corpus, tmp_path):
    first = train.run(train_cfg(tiny_corpus, tmp_path))
    worse = train.run(train_cfg(tiny_corpus, tmp_path, "tfidf", "training.max_train_rows=8", "training.seed=3"))
    assert worse.best_val_macro_f1 < first.best_val_macro_f1
    assert not worse.promoted
    assert tracking.champion_score("stance-classifier")[0] == first.registered_version
    forced = train.run(train_cfg(tiny_corpus, tmp_path, "tfidf", "training.max_train_rows=8",
                                 "tracking.promote=true"))
    assert forced.promoted
    assert tracking.champion_score("stance-classifier")[0] == forced.registered_version


@pytest.mark.parametrize("family", ["frozen", "setfit", "finetune"])
def test_encoder_families_train_on_the_tiny_bert(family, tiny_corpus, tiny_bert, tmp_path, store):
    result = train.run(train_cfg(tiny_corpus, tmp_path, family, f"model.encoder={tiny_bert}",
                                 "training.epochs=1", "training.batch_size=8", "model.setfit_pairs_per_sentence=2"))
    run = MlflowClient(store).get_run(result.run_id)
    loaded = tracking.load_model(f"runs:/{result.run_id}/model")
    # The logged test macro-F1 is the one the logged model earns on the test split.
    assert run.data.metrics["test/macro_f1"] == pytest.approx(_test_macro_f1(loaded, tiny_corpus), abs=1e-6)
    assert loaded.family == family and loaded.labels[0] == "confident"
    assert loaded.predict_proba(["The board will meet."]).shape == (1, 5)
    if family == "finetune":
        _calibration_checks(result.run_id, store, tiny_corpus)
        history = MlflowClient(store).get_metric_history(result.run_id, "val/macro_f1")
        assert len(history) >= 2, "per-evaluation validation metrics are logged during training"
        saved = (result.model_dir / "hf_model" / "config.json").read_text()
        assert '"0": "confident"' in saved, "id2label is saved with the model"


def _calibration_checks(run_id: str, store: str, corpus: Path, target: float = 0.95) -> None:
    """The logged model returns its family's probabilities scaled by the logged temperature, and its
    threshold meets the target accuracy on the validation predictions it was chosen on."""
    import pandas as pd
    from scipy.special import softmax

    from pipeline import calibration
    from pipeline.data import label_maps, load_split

    client = MlflowClient(store)
    logged = client.get_run(run_id).data.metrics
    for name in ("val/ece_uncalibrated", "val/ece", "test/ece_uncalibrated", "test/ece", "val/temperature",
                 "val/uncertain_threshold", "val/coverage", "test/coverage", "val/nll", "val/nll_uncalibrated"):
        assert name in logged, name
    assert logged["val/nll"] <= logged["val/nll_uncalibrated"] + 1e-9, "the fit minimises validation NLL"
    assert "eval/reliability_diagram.png" in {a.path for a in client.list_artifacts(run_id, "eval")}

    val = load_split(corpus, "val")
    model = mlflow.pyfunc.load_model(f"runs:/{run_id}/model")
    classifier = model.unwrap_python_model().classifier
    temperature = logged["val/temperature"]
    assert classifier.temperature == pytest.approx(temperature) and temperature != pytest.approx(1.0, abs=0.01)
    assert classifier.uncertain_threshold == pytest.approx(logged["val/uncertain_threshold"])
    output = model.predict(pd.DataFrame({"text": val.text}))
    raw = classifier.raw_proba(val.text.tolist())
    with np.errstate(divide="ignore"):
        expected = softmax(np.log(raw) / temperature, axis=1)
    assert not np.allclose(output.filter(like="prob_").to_numpy(), raw, rtol=0, atol=1e-5), "calibration changed them"
    np.testing.assert_allclose(output.filter(like="prob_").to_numpy(), expected, atol=1e-6)
    np.testing.assert_allclose(output["confidence"], expected.max(1), atol=1e-6)

    label2id, _ = label_maps(classifier.task)
    y = val[classifier.task].map(label2id).to_numpy()
    confidence = output["confidence"].to_numpy()
    kept = confidence >= classifier.uncertain_threshold
    # The tiny random BERT gives many sentences nearly the same confidence and a re-prediction in other
    # batches moves them by float noise; the threshold sits in a gap wider than that noise.
    assert logged["val/coverage"] == pytest.approx(kept.mean())
    if logged["val/target_accuracy_reached"]:
        assert (expected.argmax(1)[kept] == y[kept]).mean() >= target
    else:  # the tiny random BERT: no confidence is that accurate, so every sentence is uncertain
        assert classifier.uncertain_threshold == 1.0 and not kept.any()
    assert calibration.coverage_at(expected, y, classifier.uncertain_threshold)[0] == pytest.approx(kept.mean())


def test_tfidf_model_is_calibrated_on_validation_and_loads_calibrated(tiny_corpus, tmp_path, store):
    result = train.run(train_cfg(tiny_corpus, tmp_path, "tfidf", "calibration.target_accuracy=0.9"))
    _calibration_checks(result.run_id, store, tiny_corpus, target=0.9)
    assert MlflowClient(store).get_run(result.run_id).data.metrics["val/target_accuracy_reached"] == 1.0
    metadata = mlflow.models.get_model_info(f"runs:/{result.run_id}/model").metadata
    assert metadata["target_accuracy"] == 0.9 and metadata["uncertain_threshold"] > 0


def test_calibration_off_keeps_the_raw_probabilities(tiny_corpus, tmp_path, store):
    result = train.run(train_cfg(tiny_corpus, tmp_path, "tfidf", "calibration.temperature_scaling=false"))
    run = MlflowClient(store).get_run(result.run_id)
    assert run.data.metrics["val/temperature"] == 1.0
    assert run.data.metrics["val/ece"] == run.data.metrics["val/ece_uncalibrated"]
    assert tracking.load_model(f"runs:/{result.run_id}/model").uncertain_threshold is not None


def test_finetune_resumes_from_its_checkpoint(tiny_corpus, tiny_bert, tmp_path, store):
    cfg = train_cfg(tiny_corpus, tmp_path, "finetune", f"model.encoder={tiny_bert}", "training.epochs=1",
                    "training.batch_size=8", "tracking.register=false", "training.keep_checkpoints=true")
    train.run(cfg)
    checkpoints = sorted((tmp_path / "out").glob("checkpoint-*"))
    assert checkpoints
    resumed = train_cfg(tiny_corpus, tmp_path, "finetune", f"model.encoder={tiny_bert}", "training.epochs=2",
                        "training.batch_size=8", "tracking.register=false",
                        f"training.resume_from_checkpoint={checkpoints[-1]}")
    result = train.run(resumed)
    steps = MlflowClient(store).get_metric_history(result.run_id, "train/loss")
    assert min(m.step for m in steps) > int(checkpoints[-1].name.split("-")[1]) - 1


def test_finetune_keeps_one_copy_of_the_model_and_no_checkpoints(tiny_corpus, tiny_bert, tmp_path, store):
    result = train.run(train_cfg(tiny_corpus, tmp_path, "finetune", f"model.encoder={tiny_bert}",
                                 "training.epochs=1", "training.batch_size=8"))
    out = tmp_path / "out"
    assert not list(out.glob("checkpoint-*")), "checkpoints are removed once the best one is loaded"
    assert not (out / "models").exists(), "no second copy of the model beside the store's"
    assert result.model_dir.is_relative_to(tmp_path / "mlruns"), result.model_dir
    assert (result.model_dir / "hf_model" / "model.safetensors").is_file()
    size = sum(p.stat().st_size for p in result.model_dir.rglob("*") if p.is_file()) / 2**20
    assert result.disk_mib >= size > 0
    assert MlflowClient(store).get_run(result.run_id).data.metrics["train/disk_mib"] == pytest.approx(
        result.disk_mib)
    classifier = tracking.load_model("models:/stance-classifier@champion")
    assert classifier.family == "finetune"
    assert classifier.predict_proba(["The union accused the operator."]).shape == (1, 5)


@pytest.mark.slow
def test_real_minilm_trains_and_loads_as_champion(tiny_corpus, tmp_path, store):
    result = train.run(train_cfg(tiny_corpus, tmp_path, "finetune", "model.encoder=minilm", "training.epochs=1",
                                 "training.batch_size=8"))
    classifier = tracking.load_model("models:/stance-classifier@champion")
    assert _test_macro_f1(classifier, tiny_corpus) == pytest.approx(result.test["macro_f1"], abs=1e-6)
    assert classifier.family == "finetune"
    probabilities = classifier.predict_proba(["Prosecutors allege the firm paid bribes to win the contract."])
    assert probabilities.shape == (1, 5) and abs(probabilities.sum() - 1) < 1e-4


def test_the_logged_model_refuses_a_payload_over_the_size_limit(tiny_corpus, tmp_path, store, monkeypatch):
    import pandas as pd

    train.run(train_cfg(tiny_corpus, tmp_path))
    model = mlflow.pyfunc.load_model("models:/stance-classifier@champion")
    monkeypatch.setenv(tracking.MAX_ROWS_ENV, "3")
    assert len(model.predict(pd.DataFrame({"text": ["The union accused the operator."] * 3}))) == 3
    with pytest.raises(tracking.PayloadTooLargeError, match=r"payload too large: 4 rows .* at most 3 rows"):
        model.predict(pd.DataFrame({"text": ["The union accused the operator."] * 4}))
    monkeypatch.setenv(tracking.MAX_CHARS_ENV, "100")
    with pytest.raises(tracking.PayloadTooLargeError, match=r"1 rows and 200 characters"):
        model.predict(pd.DataFrame({"text": ["x" * 200]}))


def test_user_labels_train_and_are_measured_on_their_own(tiny_corpus, tmp_path, store):
    from tests.test_label import write_user_labels

    user = write_user_labels(tmp_path / "user" / "me.jsonl")
    plain = train.run(train_cfg(tiny_corpus, tmp_path, "tfidf", "tracking.register=false"))
    result = train.run(train_cfg(tiny_corpus, tmp_path, "tfidf", "tracking.register=false",
                                 f"data.user_files=[{user}]", "data.user_weight=1.5"))
    run = MlflowClient(store).get_run(result.run_id)
    n_train, n_holdout = int(run.data.params["n_user_train"]), int(run.data.params["n_user_holdout"])
    assert n_train + n_holdout == 60 and n_holdout > 0
    assert int(run.data.params["n_train"]) == 30 + round(1.5 * n_train)
    assert len(run.data.tags["user_data_version"]) == 12
    assert run.data.metrics["test_user/macro_f1"] == pytest.approx(result.test_user["macro_f1"])
    assert {d.dataset.name for d in run.inputs.dataset_inputs} >= {"user-train", "user-holdout"}
    plain_run = MlflowClient(store).get_run(plain.run_id)
    assert not any(k.startswith("test_user/") for k in plain_run.data.metrics), "no user files: corpus only"
    assert "user_data_version" not in plain_run.data.tags and plain.test_user == {}
