import json
from pathlib import Path

import pytest

from pipeline import data
from pipeline.config import DataConfig


def relaxed(corpus_dir: Path) -> DataConfig:
    return DataConfig(corpus_dir=str(corpus_dir), min_sentences_per_stance=1, min_articles=1, min_domains=1,
                      max_domain_share=1.0, min_registers=1)


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
