"""Shared fixtures: offline settings, a tiny random BERT, a tiny corpus, a throwaway MLflow store."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

for key, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                   "MLFLOW_DISABLE_TELEMETRY": "true", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(key, value)

# Sentences for the tiny corpus: (text, stance, sentiment, stakeholder). Written for these tests.
TINY_SENTENCES = [
    ("The ministry said it was sure the agreement would pass the review by spring.", "confident", "positive",
     "the ministry"),
    ("Halden Freight expects to reopen both terminals on schedule, its chief executive said.", "confident",
     "positive", "Halden Freight"),
    ("Regulators doubt the plan can protect customer records, a spokesperson said.", "wary", "negative", "Regulators"),
    ("It is unclear whether the deal will survive the vote, the senator cautioned.", "wary", "negative", "the senator"),
    ("The union accused the operator of hiding safety reports from inspectors.", "accusatory", "negative", "The union"),
    ("Prosecutors allege the firm paid bribes to win the port contract.", "accusatory", "negative", "Prosecutors"),
    ("The company rejected the report as baseless and full of errors.", "dismissive", "negative", "The company"),
    ("\"We did nothing wrong,\" the chairman said of the allegations.", "dismissive", "neutral", "the chairman"),
    ("The board will meet on March 3 to review the budget.", "neutral", "neutral", ""),
    ("Shares closed at 412 pence on Tuesday after the announcement.", "neutral", "neutral", ""),
]


def _article(article_id: str, writer: str, register: str, rotate: int) -> list[dict]:
    sentences = TINY_SENTENCES[rotate:] + TINY_SENTENCES[:rotate]
    return [{"article_id": article_id, "sentence_index": i, "text": f"{text} ({article_id})",
             "stance": stance, "sentiment": sentiment, "stakeholder": holder, "phenomena": [],
             "domain": "trade", "register": register, "writer": writer, "outlet": "Test Wire",
             "title": f"Headline {article_id}"}
            for i, (text, stance, sentiment, holder) in enumerate(sentences)]


def write_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    layout = {"train": [("tr-1", "w1", "wire", 0), ("tr-2", "w1", "wire", 3), ("tr-3", "w2", "local", 5)],
              "val": [("va-1", "v1", "blog", 1)], "test": [("te-1", "t1", "analysis", 2)]}
    for split, articles in layout.items():
        rows = [row for spec in articles for row in _article(*spec)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


@pytest.fixture
def tiny_corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus")


def suite_row(row_id: str, rule: str, index: int, pair: str = "", stance: str | None = None) -> dict:
    """A boundary-suite row made of the tiny sentence ``index`` (its stance unless ``stance`` is given)."""
    text, true_stance, sentiment, holder = TINY_SENTENCES[index]
    stance = stance or true_stance
    return {"id": row_id, "rule": rule, "text": f"{text} (suite)", "stance": stance, "sentiment": sentiment,
            "stakeholder": "" if stance == "neutral" else holder or "someone", "pair": pair, "writer": "s0"}


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    """B1 rows carry their true stance, B2 rows a wrong one; pair p1 is both right, pair p2 half right."""
    rows = [suite_row("a1", "B1", 4, "p1"), suite_row("a2", "B1", 8, "p1"), suite_row("a3", "B1", 0),
            suite_row("b1", "B2", 6, "p2"), suite_row("b2", "B2", 9, "p2", stance="wary"),
            suite_row("b3", "B2", 2, stance="confident")]
    path = tmp_path / "suite.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A random 2-layer BERT (hidden 32) and a word-level vocabulary, built offline."""
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path_factory.mktemp("tiny-bert")
    words = sorted({w.strip('.,"()').lower() for text, *_ in TINY_SENTENCES for w in text.split()})
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, *"abcdefghijklmnopqrstuvwxyz0123456789"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizer(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    return folder


@pytest.fixture
def store(tmp_path: Path, monkeypatch) -> str:
    """A fresh sqlite MLflow store in tmp_path, used by every stage through MLFLOW_TRACKING_URI."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def models(tiny_corpus, tmp_path) -> dict[str, Path]:
    """TF-IDF stance and sentiment classifiers trained on the tiny corpus, saved as model folders."""
    from pipeline import config
    from pipeline.data import label_maps, load_split
    from pipeline.models import build_classifier

    folders = {}
    for task in ("stance", "sentiment"):
        frame = load_split(tiny_corpus, "train")
        label2id, id2label = label_maps(task)
        classifier = build_classifier(task, id2label, config.ModelConfig(family="tfidf"))
        classifier.fit(frame.text.tolist(), frame[task].map(label2id).to_numpy(), [], [], config.TrainingConfig())
        classifier.save(tmp_path / f"{task}-model")
        folders[task] = tmp_path / f"{task}-model"
    return folders
