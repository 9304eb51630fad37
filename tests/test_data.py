import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline import data
from pipeline.config import DataConfig


def relaxed(corpus_dir: Path) -> DataConfig:
    return DataConfig(corpus_dir=str(corpus_dir), min_sentences_per_stance=1, min_articles=1, min_domains=1,
                      max_domain_share=1.0, min_registers=1, suite_file="")


def test_shipped_corpus_passes_validation():
    result = data.validate(DataConfig())
    assert result.ok, "\n".join(result.errors[:20])
    assert result.counts["articles"] >= 300 and result.counts["sentences"] >= 5000
    assert result.figures["median_words"] >= 22


def test_bad_rows_are_reported_with_file_and_line(tiny_corpus):
    train = tiny_corpus / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    rows[1]["stance"] = "angry"
    rows[2]["text"] = "   "
    del rows[3]["sentiment"]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    result = data.validate(relaxed(tiny_corpus))
    assert not result.ok
    joined = "\n".join(result.errors)
    assert f"{train}:2: stance 'angry' not one of" in joined
    assert f"{train}:3: empty or whitespace-only text" in joined
    assert f"{train}:4: missing field 'sentiment'" in joined
    assert f"{train}:31: not valid JSON" in joined


def test_duplicates_and_leakage_are_caught(tiny_corpus):
    val = tiny_corpus / "val.jsonl"
    rows = [json.loads(line) for line in val.read_text().splitlines()]
    train_rows = [json.loads(line) for line in (tiny_corpus / "train.jsonl").read_text().splitlines()]
    rows[0]["text"] = train_rows[0]["text"]  # exact duplicate across splits
    for row in rows:
        row["writer"] = "w1"  # a training writer in validation
    val.write_text("".join(json.dumps(r) + "\n" for r in rows))
    errors = "\n".join(data.validate(relaxed(tiny_corpus)).errors)
    assert "exact duplicate of" in errors
    assert "leakage: writers ['w1'] write both training and held-out articles" in errors


def test_near_duplicates_use_word_trigram_jaccard():
    texts = ["the council will vote on the new budget for the harbour district on march 3",
             "the council will vote on the new budget for the harbour district on march 4",
             "a completely different sentence about rail freight prices in the north"]
    pairs = data.near_duplicates(texts, 0.8)
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]


def test_realism_limits_fail_on_short_textbook_sentences(tiny_corpus):
    result = data.validate(relaxed(tiny_corpus))
    assert any(e.startswith("realism: median_words") for e in result.errors)


def test_read_table_rejects_unknown_format(tmp_path):
    path = tmp_path / "x.xlsx"
    path.write_text("x")
    with pytest.raises(data.DataError, match=r"x\.xlsx: unsupported format '\.xlsx'"):
        data.read_table(path)


def test_label_maps_are_fixed():
    _, id2label = data.label_maps("stance")
    assert id2label == {0: "confident", 1: "wary", 2: "accusatory", 3: "dismissive", 4: "neutral"}


def test_shipped_suite_covers_every_rule_without_leaking_into_the_corpus():
    suite, errors = data.read_suite(DataConfig().suite_file)
    assert errors == []
    assert len(suite) >= 600
    assert suite["rule"].value_counts().min() >= 40
    assert (suite["pair"] != "").mean() >= 1 / 3
    result = data.validate(DataConfig())
    assert not [e for e in result.errors if e.startswith(("suite", "leakage"))]


def test_suite_problems_are_named_by_file_and_line(tiny_corpus, tiny_suite):
    rows = [json.loads(line) for line in tiny_suite.read_text().splitlines()]
    rows[1].update(stance=rows[0]["stance"], sentiment=rows[0]["sentiment"])  # pair p1 crosses no border
    rows[3]["rule"] = "B8"
    rows.append(dict(rows[2], id="a3"))  # duplicate id
    train_text = json.loads((tiny_corpus / "train.jsonl").read_text().splitlines()[0])["text"]
    rows[5]["text"] = train_text  # a training sentence in the suite
    tiny_suite.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = DataConfig(**{**relaxed(tiny_corpus).__dict__, "suite_file": str(tiny_suite), "min_suite_per_rule": 3})
    errors = "\n".join(data.validate(cfg).errors)
    assert f"{tiny_suite}:2: pair 'p1' has the same labels on both sides" in errors
    assert f"{tiny_suite}:4: rule 'B8' not one of B1" in errors
    assert "id 'a3' is used 2 times" in errors
    assert f"leakage: {tiny_suite}:6 (suite) nearly repeats" in errors
    assert "suite: rule B3 has 0 sentences, needs at least 3" in errors


def test_border_realism_figures_count_questions_reasons_and_legal_denials():
    frame = pd.DataFrame({"text": [
        "The board fined Varo Gas on Monday for failing to report two leaks.",
        "Prosecutors charged the trader with rigging the rate, the filing said.",
        "Who pays if the insurer walks away?",
        "“Is that really the best they can do?” she asked.",
        "The company said the suit was without merit.",
        "The hearing is set for May 3."], "stance": ["neutral", "accusatory", "wary", "accusatory", "dismissive",
                                                     "neutral"]})
    for label in ("confident",):
        frame.loc[len(frame)] = ["We will finish on time, the manager said.", label]
    figures = data.realism_figures(frame)
    assert figures["question_share"] == pytest.approx(1 / 7)  # "... do?” she asked." is no question
    assert figures["enforcement_with_reason_neutral_share"] == 0.5
    assert figures["legal_denial_sentences"] == 1


def test_rules_field_is_checked(tiny_corpus):
    train = tiny_corpus / "train.jsonl"
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    rows[0]["rules"] = ["B1", "B9"]
    rows[1]["rules"] = ["B2", "S1"]
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    errors = data.validate(relaxed(tiny_corpus)).errors
    expected = f"{train}:1: field 'rules' must be a list of B1, B2, B3, B4, B5, B6, B7, S1, found ['B1', 'B9']"
    assert [e for e in errors if "field 'rules'" in e] == [expected]


# ---------------------------------------------------------------- a user's own labels


def _user_rows(articles: int, per_article: int = 3) -> list[dict]:
    return [{"article_id": f"mine-{a}", "sentence_index": i, "text": f"Sentence {i} of my article {a}.",
             "stance": "neutral", "sentiment": "neutral"} for a in range(articles) for i in range(per_article)]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_user_labels_split_by_article_and_the_split_is_stable(tmp_path):
    _write(tmp_path / "user" / "a.jsonl", _user_rows(20))
    cfg = DataConfig(user_files=(str(tmp_path / "user" / "*.jsonl"),), user_holdout_share=0.3)
    user = data.load_user(cfg)
    assert len(user.train) + len(user.holdout) == 60
    assert not set(user.train.article_id) & set(user.holdout.article_id)
    assert 0 < user.holdout.article_id.nunique() < 20
    held = set(user.holdout.article_id)
    _write(tmp_path / "user" / "b.jsonl", [dict(r, article_id=r["article_id"].replace("mine", "more"))
                                          for r in _user_rows(10)])
    grown = data.load_user(cfg)
    assert held <= set(grown.holdout.article_id), "labeling more never moves an article out of the hold-out"
    assert grown.version != user.version and len(user.version) == 12


def test_user_label_problems_are_named_by_file_and_line(tmp_path):
    rows = _user_rows(2)
    rows[1]["stance"] = "angry"
    rows[4] = dict(rows[0])
    path = _write(tmp_path / "me.jsonl", rows)
    with pytest.raises(data.DataError, match=r"me\.jsonl:2: stance 'angry' is not one of confident, wary.*\n"
                                             r".*me\.jsonl:5: article mine-0 sentence 0 is also labeled at "
                                             r".*me\.jsonl:1; keep one"):
        data.load_user(DataConfig(user_files=(str(path),)))
    with pytest.raises(data.DataError, match=r"data\.user_files: '.*nothing/\*\.jsonl' matches no file; label some"):
        data.load_user(DataConfig(user_files=(str(tmp_path / "nothing" / "*.jsonl"),)))
    assert data.load_user(DataConfig()) is None


def test_oversample_draws_each_row_weight_times():
    frame = pd.DataFrame({"x": range(10)})
    assert len(data.oversample(frame, 2.0, 1)) == 20
    assert len(data.oversample(frame, 1.5, 1)) == 15
    assert data.oversample(frame, 0.5, 1)["x"].is_unique
