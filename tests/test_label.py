"""label export / import / train-user on tiny fixtures: a real scoring output, Label Studio exports in the
shapes the real server writes (JSON, JSON-MIN, CSV; tests/test_label_studio.py checks them against it)."""

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from pipeline import config, label, score, tracking, train
from pipeline.cli import app
from pipeline.config import SENTIMENT_LABELS, STANCE_LABELS
from pipeline.label import LabelError
from tests.conftest import TINY_SENTENCES

GOLD = {text: (stance, sentiment, holder) for text, stance, sentiment, holder in TINY_SENTENCES}


def write_articles(path: Path, n: int = 4) -> Path:
    rows = [{"id": f"art-{i}", "title": f"Headline {i}",
             "text": " ".join(text for text, *_ in TINY_SENTENCES[i:] + TINY_SENTENCES[:i])} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def scores_dir(models, tmp_path, store) -> Path:
    cfg = config.load(config.ScoreConfig, [Path("configs/score.yaml")], [
        f"stance_model={models['stance']}", f"sentiment_model={models['sentiment']}"])
    out = tmp_path / "scores"
    score.run(cfg, [str(write_articles(tmp_path / "articles.jsonl"))], str(out))
    return out


def export_cfg(scores_dir: Path, tmp_path: Path, **values) -> config.LabelExportConfig:
    return config.from_options(config.LabelExportConfig, scores_dir=str(scores_dir), out=str(tmp_path / "tasks.json"),
                               skip_labeled=[str(tmp_path / "user" / "*.jsonl")], **values)


# ---------------------------------------------------------------- export


def test_uncertainty_strategies_rank_the_unsure_first():
    probabilities = np.array([[0.9, 0.05, 0.05], [0.45, 0.44, 0.11], [0.34, 0.33, 0.33]])
    margin = label.uncertainty(probabilities, "margin")
    entropy = label.uncertainty(probabilities, "entropy")
    assert margin == pytest.approx([0.15, 0.99, 0.99])
    assert list(np.argsort(-entropy)) == [2, 1, 0] and entropy[2] == pytest.approx(1.0, abs=1e-3)
    assert list(label.uncertainty(probabilities, "random", 3)) == list(label.uncertainty(probabilities, "random", 3))


def test_select_caps_articles_and_drops_near_duplicates():
    frame = pd.DataFrame({"article_id": ["a", "a", "a", "b", "b"], "text": [
        "the board will meet on march 3 to review the budget",
        "the board will meet on march 3 to review the budget again",  # near duplicate of the first
        "regulators doubt the plan can protect customer records",
        "the union accused the operator of hiding safety reports",
        "shares closed at 412 pence on tuesday after the announcement"]})
    picked, duplicates = label.select(frame, np.array([5.0, 4.0, 3.0, 2.0, 1.0]), 4, 2, 0.8)
    assert picked == [0, 2, 3, 4]  # 1 is a near duplicate of 0
    assert duplicates == 1
    picked, _ = label.select(frame, np.array([5.0, 4.0, 3.0, 2.0, 1.0]), 4, 1, 0.8)
    assert picked == [0, 3], "one per article"


def test_export_writes_tasks_with_context_and_the_models_guess(scores_dir, tmp_path):
    result = label.export_tasks(export_cfg(scores_dir, tmp_path, n=6, max_per_article=2))
    tasks = json.loads((tmp_path / "tasks.json").read_text())
    assert result.tasks == len(tasks) == 6
    sentences = pd.read_parquet(scores_dir / "sentences.parquet").set_index(["article_id", "sentence_index"])
    per_article = pd.Series([t["data"]["article_id"] for t in tasks]).value_counts()
    assert per_article.max() <= 2
    for task in tasks:
        data, prediction = task["data"], task["predictions"][0]
        key = (data["article_id"], data["sentence_index"])
        assert data["text"] == sentences.loc[key, "text"]
        before = (data["article_id"], data["sentence_index"] - 1)
        assert data["context_before"] == (sentences.loc[before, "text"] if before in sentences.index else "")
        choices = {r["from_name"]: r["value"] for r in prediction["result"]}
        assert choices["stance"]["choices"][0] in STANCE_LABELS
        assert choices["sentiment"]["choices"][0] == sentences.loc[key, "sentiment"]
        assert "stance-model" in prediction["model_version"] and "sentiment-model" in prediction["model_version"]
    assert result.mean_uncertainty_picked > result.mean_uncertainty_all


def test_export_is_seeded_and_leaves_out_labeled_sentences(scores_dir, tmp_path):
    first = label.export_tasks(export_cfg(scores_dir, tmp_path, n=5, strategy="random", seed=4))
    tasks = json.loads(first.out.read_text())
    again = label.export_tasks(export_cfg(scores_dir, tmp_path, n=5, strategy="random", seed=4))
    assert json.loads(again.out.read_text()) == tasks
    user = tmp_path / "user" / "me.jsonl"
    user.parent.mkdir()
    done = tasks[0]["data"]
    user.write_text(json.dumps({"article_id": done["article_id"], "sentence_index": done["sentence_index"]}) + "\n")
    later = label.export_tasks(export_cfg(scores_dir, tmp_path, n=40, strategy="random", seed=4))
    keys = {(t["data"]["article_id"], t["data"]["sentence_index"]) for t in json.loads(later.out.read_text())}
    assert (done["article_id"], done["sentence_index"]) not in keys
    assert later.already_labeled == 1


def test_export_needs_a_scoring_output(tmp_path):
    with pytest.raises(LabelError, match=r"is not a scoring output \(no sentences\.parquet\): score your articles"):
        label.export_tasks(export_cfg(tmp_path, tmp_path))
    out = CliRunner().invoke(app, ["label", "export", str(tmp_path), "--n", "0"])
    assert out.exit_code == 2
    assert "expected a value > 0, found 0 in option --n: n" in out.output


def test_labeling_interface_matches_the_label_map():
    root = ET.parse("configs/label-studio.xml").getroot()
    choices = {c.get("name"): c for c in root.iter("Choices")}
    assert [c.get("value") for c in choices["stance"].iter("Choice")] == list(STANCE_LABELS)
    assert [c.get("value") for c in choices["sentiment"].iter("Choice")] == list(SENTIMENT_LABELS)
    hotkeys = [c.get("hotkey") for c in root.iter("Choice")]
    assert all(hotkeys) and len(set(hotkeys)) == len(hotkeys)
    names = {t.get("name"): t.get("value") for t in root.iter("Text")}
    assert names == {"before": "$context_before", "sentence": "$text", "after": "$context_after"}
    assert [t.get("name") for t in root.iter("TextArea")] == ["stakeholder"]


# ---------------------------------------------------------------- import

TASK_DATA = {"context_before": "", "context_after": "", "title": "T", "outlet": "O", "strategy": "margin",
             "uncertainty": 0.9}


def ls_annotation(stance, sentiment, holder="", user=1, cancelled=False, when="2026-12-01T10:00:00Z"):
    result = [] if cancelled else [
        {"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}},
        {"from_name": "sentiment", "to_name": "sentence", "type": "choices", "value": {"choices": [sentiment]}}]
    if holder and not cancelled:
        result.append({"from_name": "stakeholder", "to_name": "sentence", "type": "textarea",
                       "value": {"text": [holder]}})
    return {"id": user * 100, "completed_by": user, "result": result, "was_cancelled": cancelled,
            "created_at": when, "updated_at": when}


def ls_task(task_id, article, index, text, annotations):
    return {"id": task_id, "annotations": annotations, "predictions": [],
            "data": {"text": text, "article_id": article, "sentence_index": index, **TASK_DATA}}


def json_export(path: Path, tasks: list) -> Path:
    path.write_text(json.dumps(tasks, indent=1))
    return path


def sample_tasks(stance_of_two="wary"):
    s = TINY_SENTENCES
    return [
        ls_task(1, "a1", 0, s[0][0], [ls_annotation("confident", "positive", "the ministry")]),
        ls_task(2, "a1", 1, s[2][0], [ls_annotation("wary", "negative", "Regulators"),
                                     ls_annotation(stance_of_two, "negative", "Regulators", user=2,
                                                   when="2026-12-01T11:00:00Z")]),
        ls_task(3, "a2", 4, s[8][0], [ls_annotation("", "", cancelled=True)]),
        ls_task(4, "a2", 5, s[9][0], []),
        ls_task(5, "a3", 2, s[6][0], [ls_annotation("dismissive", "negative", "The company")]),
    ]


def flat_rows(tasks: list) -> list[dict]:
    """JSON-MIN as the server writes it: one row per (not skipped) annotation, data fields flattened."""
    rows = []
    for task in tasks:
        for annotation in task["annotations"]:
            if annotation["was_cancelled"]:
                continue
            values = {r["from_name"]: r["value"].get("choices", r["value"].get("text"))[0]
                      for r in annotation["result"]}
            rows.append({**task["data"], "id": task["id"], **values, "annotator": annotation["completed_by"],
                         "annotation_id": annotation["id"], "created_at": annotation["created_at"],
                         "updated_at": annotation["updated_at"], "lead_time": None})
    return rows


def import_cfg(export: Path, out: Path, overwrite: bool = False) -> config.LabelImportConfig:
    return config.from_options(config.LabelImportConfig, export=str(export), out=str(out), overwrite=overwrite)


def test_json_export_counts_skipped_and_agreement(tmp_path):
    export = json_export(tmp_path / "export.json", sample_tasks())
    out = tmp_path / "user" / "me.jsonl"
    result = label.import_labels(import_cfg(export, out))
    assert (result.format, result.tasks, result.labeled, result.skipped, result.unlabeled) == ("JSON", 5, 3, 1, 1)
    assert (result.added, result.total, result.conflicts) == (3, 3, [])
    assert result.agreement == {"tasks": 1.0, "stance_agreement": 1.0, "stance_kappa": 1.0,
                                "sentiment_agreement": 1.0, "sentiment_kappa": 1.0}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["article_id"], r["sentence_index"], r["stance"], r["sentiment"]) for r in rows] == [
        ("a1", 0, "confident", "positive"), ("a1", 1, "wary", "negative"), ("a3", 2, "dismissive", "negative")]
    assert all(GOLD[r["text"]][:2] == (r["stance"], r["sentiment"]) for r in rows)
    assert rows[1]["annotators"] == ["1", "2"]


def test_two_annotators_who_disagree_are_listed_and_the_latest_kept(tmp_path):
    export = json_export(tmp_path / "export.json", sample_tasks(stance_of_two="accusatory"))
    result = label.import_labels(import_cfg(export, tmp_path / "me.jsonl"))
    assert result.agreement["stance_agreement"] == 0.0 and result.agreement["sentiment_agreement"] == 1.0
    assert len(result.disagreements) == 1
    assert "task 2 (item 2): annotators disagree (wary/negative vs accusatory/negative); kept accusatory/negative" \
        in result.disagreements[0]


def test_json_min_and_csv_give_the_same_labels(tmp_path):
    tasks = sample_tasks()
    label.import_labels(import_cfg(json_export(tmp_path / "export.json", tasks), tmp_path / "a.jsonl"))
    rows = flat_rows(tasks)
    json_min = tmp_path / "export-min.json"
    json_min.write_text(json.dumps(rows, indent=2))
    as_csv = tmp_path / "export.csv"
    with as_csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=sorted({k for r in rows for k in r}))
        writer.writeheader()
        writer.writerows(rows)
    for export, kind in ((json_min, "JSON-MIN"), (as_csv, "CSV")):
        out = tmp_path / f"{kind}.jsonl"
        result = label.import_labels(import_cfg(export, out))
        assert (result.format, result.labeled, result.added) == (kind, 3, 3)
        labels = lambda p: [{k: r[k] for k in ("article_id", "sentence_index", "stance", "sentiment",  # noqa: E731
                                               "stakeholder")} for r in map(json.loads, p.read_text().splitlines())]
        assert labels(out) == labels(tmp_path / "a.jsonl"), kind
        assert result.agreement["tasks"] == 1.0


def test_bad_label_is_rejected_by_task_and_nothing_is_lost(tmp_path):
    out = tmp_path / "user" / "me.jsonl"
    label.import_labels(import_cfg(json_export(tmp_path / "first.json", sample_tasks()), out))
    before = out.read_bytes()
    tasks = sample_tasks()
    tasks.append(ls_task(7, "a4", 0, TINY_SENTENCES[4][0], [ls_annotation("angry", "negative", "The union")]))
    tasks.append(ls_task(8, "a4", 1, TINY_SENTENCES[5][0], [ls_annotation("accusatory", "furious")]))
    with pytest.raises(LabelError, match=r"2 problem\(s\); nothing was written to .*me\.jsonl:\n.*task 7 \(item 6\), "
                                         r"annotation 100: stance 'angry' is not one of confident, wary, accusatory, "
                                         r"dismissive, neutral; fix the label in Label Studio .*\n.*task 8 \(item 7\), "
                                         r"annotation 100: sentiment 'furious' is not one of positive, negative, "
                                         r"neutral"):
        label.import_labels(import_cfg(json_export(tmp_path / "bad.json", tasks), out))
    assert out.read_bytes() == before
    assert [p.name for p in out.parent.iterdir()] == ["me.jsonl"], "no temporary file left behind"


def test_bad_csv_label_names_the_line(tmp_path):
    rows = flat_rows(sample_tasks())
    rows[1]["sentiment"] = "meh"
    bad = tmp_path / "export.csv"
    with bad.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=sorted(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(LabelError, match=r"export\.csv: line 3: sentiment 'meh' is not one of positive"):
        label.import_labels(import_cfg(bad, tmp_path / "me.jsonl"))
    out = CliRunner().invoke(app, ["label", "import", str(bad), "--out", str(tmp_path / "me.jsonl")])
    assert out.exit_code == 2 and out.output.startswith("error: ") and "line 3" in out.output
    assert not (tmp_path / "me.jsonl").exists()


def test_export_of_other_tasks_says_where_they_should_come_from(tmp_path):
    other = [{"id": 1, "data": {"text": "hello"}, "annotations": [ls_annotation("wary", "negative")]}]
    with pytest.raises(LabelError, match=r"task 1 \(item 1\): the task has no data field 'article_id'; label only "
                                         r"tasks made by `python -m pipeline label export`"):
        label.import_labels(import_cfg(json_export(tmp_path / "x.json", other), tmp_path / "me.jsonl"))
    (tmp_path / "broken.json").write_text("[{")
    with pytest.raises(LabelError, match=r"broken\.json: not valid JSON \(line 1"):
        label.import_labels(import_cfg(tmp_path / "broken.json", tmp_path / "me.jsonl"))


def test_conflicts_keep_the_existing_label_unless_overwrite(tmp_path):
    out = tmp_path / "me.jsonl"
    label.import_labels(import_cfg(json_export(tmp_path / "first.json", sample_tasks()), out))
    changed = sample_tasks()
    changed[0]["annotations"] = [ls_annotation("neutral", "neutral")]
    export = json_export(tmp_path / "second.json", changed)
    result = label.import_labels(import_cfg(export, out))
    assert (result.added, result.unchanged, result.replaced) == (0, 2, 0)
    assert result.conflicts == ["article a1 sentence 0: stance 'confident' -> 'neutral', sentiment 'positive' -> "
                                "'neutral', stakeholder 'the ministry' -> '' (kept the existing label)"]
    assert json.loads(out.read_text().splitlines()[0])["stance"] == "confident"
    result = label.import_labels(import_cfg(export, out, overwrite=True))
    assert result.replaced == 1 and result.conflicts[0].endswith("(replaced)")
    assert json.loads(out.read_text().splitlines()[0])["stance"] == "neutral"


def test_a_failed_write_leaves_the_old_file(tmp_path, monkeypatch):
    out = tmp_path / "me.jsonl"
    label.import_labels(import_cfg(json_export(tmp_path / "first.json", sample_tasks()[:1]), out))
    before = out.read_bytes()

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(label.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space left"):
        label.import_labels(import_cfg(json_export(tmp_path / "all.json", sample_tasks()), out))
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_damaged_label_file_is_not_merged_into(tmp_path):
    out = tmp_path / "me.jsonl"
    out.write_text('{"article_id": "a1", "sentence_index": 0}\n{not json\n')
    with pytest.raises(LabelError, match=r"me\.jsonl is damaged, so nothing was merged into it: .*me\.jsonl:2: not "
                                         r"valid JSON"):
        label.import_labels(import_cfg(json_export(tmp_path / "e.json", sample_tasks()), out))
    assert out.read_text().endswith("{not json\n")


# ---------------------------------------------------------------- train on the user's labels


def write_user_labels(path: Path, articles: int = 6) -> Path:
    rows = []
    for a in range(articles):
        for i, (text, stance, sentiment, holder) in enumerate(TINY_SENTENCES):
            rows.append({"article_id": f"user-{a}", "sentence_index": i, "text": f"{text} [user {a}]",
                         "stance": stance, "sentiment": sentiment, "stakeholder": holder})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.parametrize(("numbers", "promoted", "why"), [
    ((0.70, 0.60, 0.80, 0.805), True, "better on the user hold-out and holds on corpus val"),
    ((0.60, 0.60, 0.90, 0.80), False, "not better on the user hold-out"),
    ((0.70, 0.60, 0.79, 0.805), False, "better on the user hold-out but loses more than allowed on corpus val"),
])
def test_promotion_rule(numbers, promoted, why):
    decided, reason = label.decide(*numbers, 0.01)
    assert decided is promoted
    assert reason.startswith(why)


def test_train_user_retrains_the_champions_family_and_logs_the_decision(tiny_corpus, tmp_path, store):
    base = [f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}", "data.suite_file="]
    champion = train.run(config.train_config("stance", "tfidf", overrides=[*base, "training.max_train_rows=12"]))
    assert champion.promoted
    user = write_user_labels(tmp_path / "user" / "me.jsonl")
    cfg = config.train_config("stance", "tfidf", overrides=[*base, f"data.user_files={json.dumps([str(user)])}"])
    result = label.train_user(cfg)
    assert result.n_user_train + result.n_user_holdout == 60 and result.n_user_holdout > 0
    run = MlflowClient(store).get_run(result.run_id)
    assert run.data.tags["user_promotion"] == ("promoted" if result.promoted else "kept")
    assert run.data.tags["user_promotion_reason"] == result.reason
    assert "test_user/macro_f1" in run.data.metrics and "test_user/champion_macro_f1" in run.data.metrics
    expected, _ = label.decide(result.candidate_user_f1, result.champion_user_f1, result.candidate_val_f1,
                               result.champion_val_f1, 0.01)
    assert result.promoted is expected
    holder, _ = tracking.champion_score("stance-classifier")
    assert holder == (result.candidate_version if result.promoted else champion.registered_version)


def test_train_user_needs_a_champion_and_labels(tiny_corpus, tmp_path, store):
    user = write_user_labels(tmp_path / "me.jsonl")
    cfg = config.train_config("stance", "tfidf", overrides=[f"data.corpus_dir={tiny_corpus}",
                                                            f"data.user_files={json.dumps([str(user)])}"])
    with pytest.raises(LabelError, match=r"no stance-classifier champion to retrain: train one first"):
        label.train_user(cfg)
    with pytest.raises(LabelError, match=r"no user labels: set data\.user_files"):
        label.train_user(config.train_config("stance", "tfidf"))
