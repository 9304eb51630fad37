import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import config, evaluate, train
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
