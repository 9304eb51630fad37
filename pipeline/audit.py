"""Label audit: agreement with a blind second labeling pass, and confident learning over out-of-fold
predictions (cleanlab) to list likely label errors for review."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import cohen_kappa_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import FeatureUnion, make_pipeline

from pipeline import borders, paths
from pipeline.config import TASK_LABELS
from pipeline.data import load_split, read_jsonl
from pipeline.errors import PipelineError


class AuditError(PipelineError, ValueError):
    """The audit files are missing or malformed; the message names the file and the line."""


@dataclasses.dataclass
class AuditConfig:
    corpus_dir: str = str(paths.DATA / "corpus")
    second_pass: str = str(paths.DATA / "audit" / "second_pass.jsonl")
    out: str = str(paths.OUTPUTS / "audit")
    folds: int = 5


@dataclasses.dataclass
class AuditResult:
    summary: dict[str, Any]
    disagreements: pd.DataFrame
    label_issues: pd.DataFrame


def corpus_frame(corpus_dir: str) -> pd.DataFrame:
    frames = [load_split(corpus_dir, s).assign(split=s) for s in ("train", "val", "test")]
    return pd.concat(frames, ignore_index=True)


# Label changes made after the writers' first pass, in the order they were made.
CHANGE_FILES = ("adjudication.jsonl", "cleanlab_review.jsonl", "relabel.jsonl", "round3_check.jsonl",
                "round4_check.jsonl", "round5_check.jsonl")
# Blind checks with one row per sentence and task (the relabel schema), and the prefix of their summary keys:
# the second round's border relabel of the first-round corpus, the third round's check of its new writing,
# the fourth round's relabel of denials and counter-charges under the sharpened B3 test (and its new writing),
# the fifth round's relabel of questions and sarcasm under the sharpened B6 test (and its new writing).
BLIND_CHECKS = {"relabel.jsonl": "relabel", "round3_check.jsonl": "round3", "round4_check.jsonl": "round4",
                "round5_check.jsonl": "round5"}


def _recorded_changes(folder: Path) -> list[dict[str, Any]]:
    """Label changes made by the audit (adjudication, cleanlab review, border relabel), oldest first."""
    changes = []
    for name in CHANGE_FILES:
        if (folder / name).is_file():
            rows, errors = read_jsonl(folder / name)
            if errors:
                raise AuditError("\n".join(errors))
            changes += [r for r in rows if r.get("corpus_changed")]
    return changes


def first_pass_labels(corpus: pd.DataFrame, changes: list[dict[str, Any]]) -> pd.DataFrame:
    """The corpus as its writers labeled it, before the audit's changes were applied."""
    first = corpus.copy()
    position = {(a, i): n for n, (a, i) in enumerate(zip(first.article_id, first.sentence_index, strict=True))}
    for change in reversed(changes):  # newest first, so a label changed twice ends at its first value
        first.loc[position[(change["article_id"], change["sentence_index"])], change["task"]] = \
            change["corpus_label_before"]
    return first


def _kappas(merged: pd.DataFrame, prefix: str) -> dict[str, float]:
    out = {}
    for task in ("stance", "sentiment"):
        out[f"{prefix}kappa_{task}"] = round(float(cohen_kappa_score(merged[task], merged[f"{task}_second"])), 3)
        out[f"{prefix}raw_agreement_{task}"] = round(float((merged[task] == merged[f"{task}_second"]).mean()), 3)
    return out


def agreement(corpus: pd.DataFrame, second_pass_path: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    """Cohen's kappa of the writers' labels (before any audit change) against the blind second pass."""
    if not second_pass_path.is_file():
        raise AuditError(f"{second_pass_path}: second-pass file not found")
    rows, errors = read_jsonl(second_pass_path)
    for row in rows:
        for key in ("article_id", "sentence_index", "stance", "sentiment"):
            if key not in row:
                errors.append(f"{row['_file']}:{row['_line']}: missing key {key!r}")
    if errors:
        raise AuditError("\n".join(errors))
    second = pd.DataFrame(rows).drop(columns=["_file", "_line"])
    first = first_pass_labels(corpus, _recorded_changes(second_pass_path.parent))
    merged = second.merge(first, on=["article_id", "sentence_index"], suffixes=("_second", ""), how="left")
    unmatched = merged[merged["text"].isna()]
    if len(unmatched):
        row = unmatched.iloc[0]
        raise AuditError(f"{second_pass_path}: {len(unmatched)} rows name no corpus sentence "
                         f"(first: {row.article_id} #{row.sentence_index})")
    summary = {"second_pass_sentences": len(merged), **_kappas(merged, "")}
    after = second.merge(corpus, on=["article_id", "sentence_index"], suffixes=("_second", ""))
    summary |= _kappas(after, "after_adjudication_")
    disagreements = merged[(merged.stance != merged.stance_second) | (merged.sentiment != merged.sentiment_second)]
    return summary, disagreements[["article_id", "sentence_index", "text", "stance", "stance_second", "sentiment",
                                   "sentiment_second"]]


def border_candidates(corpus_dir: str, out: Path) -> int:
    """Writes the sentences a border rule touches, blind (no labels), with their context, for a relabel
    pass by annotators who did not write them (``docs/data.md``, relabel pass). Returns the count."""
    corpus = corpus_frame(corpus_dir)
    found = borders.candidates(corpus)
    text = corpus.set_index(["article_id", "sentence_index"])["text"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as handle:
        for row in found.itertuples():
            item = {"article_id": row.article_id, "sentence_index": int(row.sentence_index), "title": row.title,
                    "previous": text.get((row.article_id, row.sentence_index - 1), ""), "text": row.text,
                    "next": text.get((row.article_id, row.sentence_index + 1), ""), "rules_to_check": row.rules}
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
    return len(found)


def relabel_summary(corpus: pd.DataFrame, relabel_path: Path, prefix: str = "relabel") -> dict[str, Any]:
    """A blind relabel pass: agreement of the blind labels with the labels they checked, and the label
    changes per border rule and per writer (``data/audit/relabel.jsonl``, ``round3_check.jsonl``, ..., one
    row per sentence and task); keys start with ``prefix``."""
    rows, errors = read_jsonl(relabel_path)
    if errors:
        raise AuditError("\n".join(errors))
    frame = pd.DataFrame(rows)
    writers = corpus.set_index(["article_id", "sentence_index"])["writer"]
    frame["writer"] = [writers.get((a, i), "?") for a, i in zip(frame.article_id, frame.sentence_index, strict=True)]
    summary: dict[str, Any] = {f"{prefix}_sentences": int(frame[["article_id", "sentence_index"]].drop_duplicates()
                                                         .shape[0])}
    for task, group in frame.groupby("task"):
        summary[f"{prefix}_kappa_{task}"] = round(float(cohen_kappa_score(group.corpus_label_before,
                                                                         group.relabel)), 3)
        summary[f"{prefix}_adjudicated_{task}"] = int(group.adjudicated.sum())
        changed = group[group.corpus_changed]
        summary[f"{prefix}_changed_{task}"] = len(changed)
        per_rule = changed.explode("rules").rules.value_counts()
        summary[f"{prefix}_changed_{task}_per_rule"] = {str(k): int(v) for k, v in per_rule.items()}
        summary[f"{prefix}_changed_{task}_per_writer"] = {str(k): int(v)
                                                         for k, v in changed.writer.value_counts().items()}
        moves = changed.groupby(["corpus_label_before", "final"]).size().sort_values(ascending=False)
        summary[f"{prefix}_moves_{task}"] = {f"{a} -> {b}": int(n) for (a, b), n in moves.items()}
    return summary


def out_of_fold_probabilities(corpus: pd.DataFrame, task: str, folds: int) -> np.ndarray:
    """Each sentence predicted by a model that never saw its article (GroupKFold by article)."""
    labels = list(TASK_LABELS[task])
    y = corpus[task].map({lab: i for i, lab in enumerate(labels)}).to_numpy()
    model = make_pipeline(
        FeatureUnion([("word", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
                      ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2,
                                               sublinear_tf=True))]),
        LogisticRegression(C=4.0, max_iter=2000, class_weight="balanced"))
    return cross_val_predict(model, corpus["text"], y, groups=corpus["article_id"], cv=GroupKFold(folds),
                             method="predict_proba")


def label_issues(corpus: pd.DataFrame, task: str, folds: int) -> pd.DataFrame:
    from cleanlab.filter import find_label_issues

    labels = list(TASK_LABELS[task])
    y = corpus[task].map({lab: i for i, lab in enumerate(labels)}).to_numpy()
    probabilities = out_of_fold_probabilities(corpus, task, folds)
    ranked = find_label_issues(y, probabilities, return_indices_ranked_by="self_confidence")
    issues = corpus.iloc[ranked][["article_id", "sentence_index", "split", "text", task]].copy()
    issues["suggested"] = [labels[i] for i in probabilities[ranked].argmax(1)]
    issues["given_label_probability"] = probabilities[ranked, y[ranked]].round(3)
    issues.insert(0, "task", task)
    return issues.rename(columns={task: "label"})


def run(cfg: AuditConfig) -> AuditResult:
    corpus = corpus_frame(cfg.corpus_dir)
    summary, disagreements = agreement(corpus, Path(cfg.second_pass))
    adjudication = Path(cfg.second_pass).with_name("adjudication.jsonl")
    if adjudication.is_file():
        decided, _ = read_jsonl(adjudication)
        summary["disagreements_adjudicated"] = len(decided)
        summary["adjudication_changed_corpus_label"] = sum(bool(r.get("corpus_changed")) for r in decided)
    for name, prefix in BLIND_CHECKS.items():
        if (path := Path(cfg.second_pass).with_name(name)).is_file():
            summary |= relabel_summary(corpus, path, prefix)
    issues = pd.concat([label_issues(corpus, task, cfg.folds) for task in ("stance", "sentiment")],
                       ignore_index=True)
    summary["cleanlab_flagged_stance"] = int((issues.task == "stance").sum())
    summary["cleanlab_flagged_sentiment"] = int((issues.task == "sentiment").sum())
    review = Path(cfg.second_pass).with_name("cleanlab_review.jsonl")
    if review.is_file():
        reviewed, _ = read_jsonl(review)
        summary["cleanlab_reviewed"] = len(reviewed)
        summary["cleanlab_fixed"] = sum(bool(r.get("corpus_changed")) for r in reviewed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    disagreements.to_csv(out / "disagreements.csv", index=False)
    issues.to_csv(out / "label_issues.csv", index=False)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    return AuditResult(summary, disagreements, issues)
