"""The multitask family: one encoder with a stance and a sentiment head, trained, tracked, served, scored."""

from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from pipeline import config, score, tracking, train
from pipeline.data import label_maps, load_split

TASKS = ("stance", "sentiment")


def multitask_cfg(corpus: Path, tmp_path: Path, encoder: Path, *extra: str) -> config.TrainConfig:
    return config.train_config(None, "multitask", overrides=[
        f"data.corpus_dir={corpus}", f"training.output_dir={tmp_path / 'out'}", f"model.encoder={encoder}",
        "training.epochs=1", "training.batch_size=8", *extra])


def test_multitask_trains_both_heads_in_one_run_registers_loads_and_scores(
        tiny_corpus, tiny_bert, tiny_suite, tmp_path, store):
    result = train.run(multitask_cfg(tiny_corpus, tmp_path, tiny_bert, f"data.suite_file={tiny_suite}"))
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name(train.MULTITASK_EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id])
    assert [r.info.run_id for r in runs] == [result.run_id], "one run holds both tasks"
    run = runs[0]
    assert run.info.run_name.startswith(f"multitask-{tiny_bert.name}-")
    assert run.data.tags["task"] == "both" and run.data.params["multitask_sentiment_weight"] == "1.0"
    logged = run.data.metrics
    for task in TASKS:
        for name in ("val/macro_f1", "test/macro_f1", "train/macro_f1", "test/ece", "val/temperature",
                     "val/uncertain_threshold", "val/ece_uncalibrated", "suite/overall"):
            assert f"{task}/{name}" in logged, f"{task}/{name}"
        assert len(client.get_metric_history(result.run_id, f"{task}/val/macro_f1")) >= 2, "per evaluation"
    mean_val = np.mean([logged[f"{task}/val/macro_f1"] for task in TASKS])
    assert logged["val/mean_macro_f1"] == pytest.approx(mean_val)
    assert logged[tracking.SELECTION_METRIC] == pytest.approx(result.best_val_macro_f1)
    assert result.best_val_macro_f1 >= mean_val - 1e-9
    artifacts = {a.path for a in client.list_artifacts(result.run_id, "eval")}
    assert {f"eval/{task}_{name}" for task in TASKS for name in (
        "confusion_matrix_test.png", "reliability_diagram.png", "misclassified_test.csv")} <= artifacts

    # Registered as news-classifier, champion by the mean validation macro-F1.
    assert result.registered_version == "1" and result.promoted
    assert tracking.champion_score("news-classifier") == ("1", pytest.approx(result.best_val_macro_f1))
    saved = tracking.model_meta("models:/news-classifier@champion")
    assert saved["family"] == "multitask" and saved["heads"]["stance"]["id2label"]["0"] == "confident"
    assert saved["heads"]["sentiment"]["id2label"] == {str(i): v for i, v in label_maps("sentiment")[1].items()}

    # The pyfunc returns both tasks' labels, confidences and calibrated probabilities.
    model = mlflow.pyfunc.load_model("models:/news-classifier@champion")
    classifier = model.unwrap_python_model().classifier
    val = load_split(tiny_corpus, "val")
    output = model.predict(pd.DataFrame({"text": val.text}))
    expected_columns = [column for task in TASKS for column in (
        f"{task}_label", f"{task}_confidence", *(f"{task}_prob_{lab}" for lab in label_maps(task)[0]))]
    assert list(output.columns) == expected_columns == tracking.output_columns(saved)
    raw = classifier.raw_proba_tasks(val.text.tolist())
    for task in TASKS:
        head = classifier.heads[task]
        assert head.temperature == pytest.approx(logged[f"{task}/val/temperature"])
        assert head.uncertain_threshold == pytest.approx(logged[f"{task}/val/uncertain_threshold"])
        probabilities = output.filter(like=f"{task}_prob_").to_numpy()
        np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-6)
        with np.errstate(divide="ignore"):
            scaled = np.exp(np.log(raw[task]) / head.temperature)
        np.testing.assert_allclose(probabilities, scaled / scaled.sum(1, keepdims=True), atol=1e-6)
        assert head.temperature != pytest.approx(1.0, abs=0.01), "the temperature was fitted"
        assert list(output[f"{task}_label"]) == [head.labels[i] for i in probabilities.argmax(1)]
        np.testing.assert_allclose(output[f"{task}_confidence"], probabilities.max(1), atol=1e-9)
        # The logged test macro-F1 is what the logged head earns on the test split.
        test = load_split(tiny_corpus, "test")
        from pipeline import metrics

        earned = metrics.compute(test[task].map(label_maps(task)[0]).to_numpy(),
                                 head.predict_proba(test.text.tolist()), head.labels)["macro_f1"]
        assert logged[f"{task}/test/macro_f1"] == pytest.approx(earned, abs=1e-6)

    # Scoring with it writes both labels, from the one model, with its stance head's threshold.
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "a.txt").write_text("The union accused the operator of hiding safety reports. The board will meet "
                                    "on March 3 to review the budget. Shares closed at 412 pence on Tuesday.")
    cfg = config.load(config.ScoreConfig, ["configs/score.yaml"], ["models=multitask", "uncertain_threshold=0",
                                                                   "fast_path=autocast"])  # as predict_tasks runs
    scored = score.run(cfg, [str(articles)], str(tmp_path / "scores"))
    assert scored.sentences == 3
    sentences = pd.read_parquet(tmp_path / "scores" / "sentences.parquet")
    assert set(sentences["stance"]) <= set(label_maps("stance")[0])
    assert set(sentences["sentiment"]) <= set(label_maps("sentiment")[0])
    both = classifier.predict_tasks(sentences["text"].tolist())
    np.testing.assert_allclose(sentences["stance_confidence"], both["stance"].max(1), atol=1e-5)
    np.testing.assert_allclose(sentences["sentiment_confidence"], both["sentiment"].max(1), atol=1e-5)
    np.testing.assert_allclose(sentences.filter(like="prob_").sum(axis=1), 1.0, atol=1e-6)
    params = MlflowClient(store).get_run(scored.run_id).data.params
    assert params["models"] == "multitask" and params["multitask_model"].startswith("models:/news-classifier/1")
    own = score.uncertain_threshold(config.ScoreConfig(models="multitask"), "models:/news-classifier/1")
    assert own == pytest.approx(classifier.heads["stance"].uncertain_threshold)
    # The default (models: auto) scores with it once news-classifier has a champion.
    tracking.setup()
    setup, pinned = score.scoring_setup(config.load(config.ScoreConfig, ["configs/score.yaml"], []))
    assert pinned.models == "multitask" and setup["stance_model"] == setup["sentiment_model"]

    # evaluate takes one head, named by the label column.
    from pipeline import evaluate
    from pipeline.data import DataError

    test_file = str(tiny_corpus / "test.jsonl")
    evaluated = evaluate.run(config.EvaluateConfig(model="models:/news-classifier@champion", data=test_file,
                                                   label_column="sentiment"))
    assert evaluated.task == "sentiment"
    assert evaluated.metrics["macro_f1"] == pytest.approx(logged["sentiment/test/macro_f1"], abs=1e-6)
    with pytest.raises(DataError, match=r"is a multi-task model: choose the head with --label-column stance or "
                                        r"sentiment"):
        evaluate.run(config.EvaluateConfig(model="models:/news-classifier@champion", data=test_file))


def test_auto_scores_with_one_model_per_task_when_there_is_no_multitask_model(models, store):
    cfg = config.load(config.ScoreConfig, ["configs/score.yaml"], [
        f"stance_model={models['stance']}", f"sentiment_model={models['sentiment']}"])
    assert cfg.models == "auto"
    tracking.setup()
    setup, pinned = score.scoring_setup(cfg)
    assert pinned.models == "single" and setup["stance_model"] != setup["sentiment_model"]


def test_scoring_refuses_a_single_task_model_as_the_multitask_one(models, tmp_path, store):
    cfg = config.load(config.ScoreConfig, ["configs/score.yaml"], [
        "models=multitask", f"multitask_model={models['stance']}"])
    with pytest.raises(score.ScoreError, match=r"is a tfidf stance model, not a multitask one"):
        score.run(cfg, ["examples/articles"], str(tmp_path / "out"))


def test_soft_cross_entropy_is_the_hard_loss_for_one_hot_targets_and_least_at_the_students_own():
    import torch

    from pipeline.models.multitask import soft_cross_entropy

    logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 3.0]])
    one_hot = torch.nn.functional.one_hot(torch.tensor([0, 2]), 3).float()
    hard = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]))
    assert soft_cross_entropy(logits, one_hot, 1.0).item() == pytest.approx(hard.item())
    # Cross-entropy against the student's own softened distribution is its entropy, the least over targets.
    own = torch.softmax(logits / 2.0, -1)
    other = torch.softmax(torch.tensor([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), -1)
    assert soft_cross_entropy(logits, own, 2.0) < soft_cross_entropy(logits, other, 2.0)


def test_distilled_tier_learns_the_teachers_soft_labels_and_registers_as_the_fast_model(
        tiny_corpus, tiny_bert, tmp_path, store):
    from typer.testing import CliRunner

    from pipeline.cli import app
    from pipeline.data import DataError

    teacher = train.run(multitask_cfg(tiny_corpus, tmp_path, tiny_bert))
    unlabeled = tmp_path / "unlabeled.txt"
    unlabeled.write_text("The council said the depot would reopen.\n\nShares fell 4% after the warning.\n"
                         "The union accused the board of hiding the audit.\n")
    distill = ["model.distill_from=models:/news-classifier@champion", f"data.unlabeled_files=[{unlabeled}]"]
    result = train.run(multitask_cfg(tiny_corpus, tmp_path, tiny_bert, *distill))

    client = MlflowClient(store)
    run = client.get_run(result.run_id)
    assert run.info.run_name.startswith(f"distilled-{tiny_bert.name}-")
    params = run.data.params
    n_train = len(load_split(tiny_corpus, "train"))
    assert (params["n_unlabeled"], params["n_transfer"]) == ("3", str(n_train + 3))
    assert params["teacher"].startswith("news-classifier version 1") and params["distill_temperature"] == "2.0"
    assert "stance/val/macro_f1" in run.data.metrics and "sentiment/test/macro_f1" in run.data.metrics
    # Registered under its own name: the teacher stays news-classifier's only version and champion.
    assert result.registered_version == "1" and result.promoted
    assert tracking.champion_score("news-classifier-fast")[0] == "1"
    assert [str(v.version) for v in client.search_model_versions("name='news-classifier'")] == ["1"]
    assert tracking.champion_score("news-classifier") == ("1", pytest.approx(teacher.best_val_macro_f1))

    # `score --model fast` labels both tasks with it.
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "a.txt").write_text("The board will meet on March 3. Shares closed at 412 pence on Tuesday.")
    out = CliRunner().invoke(app, ["score", str(articles), "--out", str(tmp_path / "scores"), "--model", "fast"])
    assert out.exit_code == 0, out.output
    scoring = client.search_runs([client.get_experiment_by_name("scoring").experiment_id])[0]
    assert scoring.data.params["multitask_model"].startswith("models:/news-classifier-fast/1")

    # Bad setups are refused before any training.
    with pytest.raises(DataError, match=r"data.unlabeled_files: '.*missing\*.txt' matches no file"):
        train.run(multitask_cfg(tiny_corpus, tmp_path, tiny_bert, distill[0],
                                f"data.unlabeled_files=[{tmp_path / 'missing*.txt'}]"))
    leaked = tmp_path / "leaked.txt"
    leaked.write_text("A new sentence.\n" + load_split(tiny_corpus, "test").text.iloc[0] + "\n")
    with pytest.raises(DataError, match=r"leaked.txt:2: this sentence is in the validation or test split"):
        train.run(multitask_cfg(tiny_corpus, tmp_path, tiny_bert, distill[0], f"data.unlabeled_files=[{leaked}]"))
    with pytest.raises(config.ConfigError, match=r"model.distill_from: only the multitask family distills"):
        train.run(config.train_config("stance", "finetune", overrides=[f"data.corpus_dir={tiny_corpus}", distill[0]]))
