import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import config, evaluate, tracking, train
from pipeline.cli import app
from pipeline.data import DataError


@pytest.fixture
def champion(tiny_corpus, tmp_path, store):
    return train.run(config.train_config("stance", "tfidf", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}"]))


def test_evaluate_any_labeled_table_with_custom_columns(champion, tiny_corpus, tmp_path):
    frame = pd.read_json(tiny_corpus / "test.jsonl", lines=True)
    path = tmp_path / "labeled.csv"
    frame.rename(columns={"text": "sentence", "stance": "gold"})[["sentence", "gold"]].to_csv(path, index=False)
    result = evaluate.run(config.EvaluateConfig(model="models:/stance-classifier@champion", data=str(path),
                                                text_column="sentence", label_column="gold"))
    assert result.n_rows == len(frame) and result.task == "stance"
    assert result.metrics["macro_f1"] == pytest.approx(champion.test["macro_f1"])


def test_unknown_labels_get_a_clear_error(champion, tmp_path):
    path = tmp_path / "labeled.jsonl"
    path.write_text('{"text": "A sentence.", "stance": "furious"}\n')
    with pytest.raises(DataError, match=r"labels the model does not know: \['furious'\]"):
        evaluate.run(config.EvaluateConfig(model="models:/stance-classifier@champion", data=str(path)))


def test_cli_prints_json_metrics(champion, tiny_corpus):
    out = CliRunner().invoke(app, ["evaluate", "--model", "models:/stance-classifier@champion",
                                   "--data", str(tiny_corpus / "test.jsonl"), "--json"])
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.output)
    assert {"macro_f1", "accuracy", "f1_confident", "precision_wary", "recall_neutral"} <= set(metrics)


def test_missing_model_is_a_clear_cli_error(store, tiny_corpus):
    out = CliRunner().invoke(app, ["evaluate", "--model", "models:/stance-classifier@champion",
                                   "--data", str(tiny_corpus / "test.jsonl")])
    assert out.exit_code == 2
    assert "could not load model 'models:/stance-classifier@champion'" in out.output


def test_suite_reports_accuracy_per_rule_and_on_minimal_pairs(tiny_corpus, tiny_suite, tmp_path, store):
    trained = train.run(config.train_config("stance", "tfidf", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"data.suite_file={tiny_suite}", f"training.output_dir={tmp_path / 'o'}"]))
    classifier = tracking.load_model("models:/stance-classifier@champion")
    suite = pd.read_json(tiny_suite, lines=True, dtype=False)
    predicted = [classifier.labels[i] for i in classifier.predict_proba(suite["text"].tolist()).argmax(1)]
    # The fixture's premise: the baseline knows these sentences; b2 and b3 carry wrong labels on purpose.
    assert [p == s for p, s in zip(predicted, suite["stance"], strict=True)] == [True] * 4 + [False] * 2
    result = evaluate.run(config.EvaluateConfig(model="models:/stance-classifier@champion", data=str(tiny_suite),
                                                suite=True))
    assert result.metrics["suite/B1"] == 1.0
    assert result.metrics["suite/B2"] == pytest.approx(1 / 3)
    assert result.metrics["suite/overall"] == pytest.approx(4 / 6)
    assert result.metrics["suite/pairs"] == 2 and result.metrics["suite/pairs_both_right"] == 0.5
    assert trained.suite == result.metrics  # training logs the same suite/ metrics


def test_suite_cli_prints_rules_and_rejects_a_broken_suite(tiny_corpus, tiny_suite, tmp_path, store):
    train.run(config.train_config("stance", "tfidf", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"data.suite_file={tiny_suite}", f"training.output_dir={tmp_path / 'o'}"]))
    out = CliRunner().invoke(app, ["evaluate", "--model", "models:/stance-classifier@champion", "--suite",
                                   "--data", str(tiny_suite)])
    assert out.exit_code == 0, out.output
    assert "B1" in out.output and "pairs_both_right" in out.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text(tiny_suite.read_text().replace('"rule": "B2"', '"rule": "B9"', 1))
    out = CliRunner().invoke(app, ["evaluate", "--model", "models:/stance-classifier@champion", "--suite",
                                   "--data", str(broken)])
    assert out.exit_code == 2
    assert f"{broken}:4: rule 'B9' not one of B1" in out.output
