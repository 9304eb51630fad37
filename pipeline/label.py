"""Label stage: the active-learning loop through Label Studio.

- ``export_tasks(cfg)``: picks the sentences of a scoring output that the model is least sure of (margin or
  entropy of its stance probabilities, or at random), at most a few per article and no near duplicates, and
  writes Label Studio import JSON: each task's ``data`` (the sentence, its article and index, the sentences
  around it) and ``predictions`` (the model's stance, sentiment and stakeholder, so the annotator starts
  from its guess).
- ``import_labels(cfg)``: reads a Label Studio export (JSON, JSON-MIN or CSV), checks every label against the
  label map, skips skipped tasks, measures agreement where a task has two annotations, and merges the labels
  into ``data/user/NAME.jsonl`` by article and sentence. An existing label is never replaced silently, and
  nothing is written unless the whole export is valid (the file is replaced atomically).
- ``train_user(cfg)``: retrains the champion's family on the corpus plus the user's labels and promotes it
  only if it is better on the user's hold-out without losing more than a point on the corpus validation split.

The labeling interface is ``configs/label-studio.xml``; ``pipeline/label_studio.py`` talks to the server.
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import glob
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import metrics, tracking
from pipeline.config import (
    STANCE_LABELS,
    TASK_LABELS,
    LabelExportConfig,
    LabelImportConfig,
    TrainConfig,
)
from pipeline.data import label_maps, load_split, load_user, read_jsonl, shingles, user_row_errors
from pipeline.errors import PipelineError

FIX_HINT = ("fix the label in Label Studio (the project must use configs/label-studio.xml, whose choices are "
            "the label map) and export again")


SMALL_HOLDOUT = 50


class LabelError(PipelineError, ValueError):
    """A scoring output, a Label Studio export or a user label file that cannot be used; says what to do."""


# ---------------------------------------------------------------- export


@dataclasses.dataclass
class ExportResult:
    out: Path
    tasks: int
    candidates: int  # sentences that could be picked (long enough, not labeled yet)
    already_labeled: int
    near_duplicates: int  # candidates passed over as near duplicates of a picked sentence
    strategy: str
    mean_uncertainty_picked: float
    mean_uncertainty_all: float


def uncertainty(probabilities: np.ndarray, strategy: str, seed: int = 0) -> np.ndarray:
    """Higher is less sure: 1 - (top1 - top2) for margin, normalised entropy, or a seeded random score."""
    if strategy == "random":
        return np.random.default_rng(seed).random(len(probabilities))
    if strategy == "margin":
        top = np.sort(probabilities, axis=1)[:, -2:]
        return 1.0 - (top[:, 1] - top[:, 0])
    if strategy == "entropy":
        p = np.clip(probabilities, 1e-12, 1.0)
        return -(p * np.log(p)).sum(axis=1) / np.log(probabilities.shape[1])
    raise ValueError(f"unknown strategy {strategy!r}: choose margin, entropy or random")


def select(frame: pd.DataFrame, scores: np.ndarray, n: int, max_per_article: int, jaccard: float
           ) -> tuple[list[int], int]:
    """Positions of up to ``n`` rows, highest score first, at most ``max_per_article`` per article and none
    a near duplicate (word 3-gram Jaccard >= ``jaccard``) of one already picked; and how many near
    duplicates were passed over."""
    picked: list[int] = []
    duplicates = 0
    per_article: collections.Counter = collections.Counter()
    picked_shingles: list[set[str]] = []
    articles, texts = frame["article_id"].to_numpy(), frame["text"].to_numpy()
    for position in np.argsort(-scores, kind="stable"):
        if len(picked) == n:
            break
        article = articles[position]
        if per_article[article] >= max_per_article:
            continue
        grams = shingles(texts[position])
        if any(_jaccard(grams, other) >= jaccard for other in picked_shingles):
            duplicates += 1
            continue
        picked.append(int(position))
        per_article[article] += 1
        picked_shingles.append(grams)
    return picked, duplicates


def _jaccard(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    shared = len(a & b)
    return shared / (len(a) + len(b) - shared)


def labeled_keys(patterns: tuple[str, ...]) -> set[tuple[str, int]]:
    """(article_id, sentence_index) of every sentence already in the user label files the globs match."""
    keys = set()
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            rows, errors = read_jsonl(Path(path))
            if errors:
                raise LabelError("\n".join(errors))
            keys |= {(str(r.get("article_id")), r.get("sentence_index")) for r in rows}
    return keys


def _model_version(scores_dir: Path) -> str:
    """What scored the folder, as recorded in its parts (score.py writes the resolved model versions)."""
    for meta_path in sorted((scores_dir / "parts").glob("part-*.json")):
        setup = json.loads(meta_path.read_text()).get("setup") or {}
        if setup:
            return f"stance: {setup.get('stance_model')}; sentiment: {setup.get('sentiment_model')}"
    return "unknown"


def read_scores(scores_dir: Path) -> pd.DataFrame:
    path = scores_dir / "sentences.parquet"
    if not path.is_file():
        raise LabelError(f"{scores_dir} is not a scoring output (no sentences.parquet): score your articles first, "
                         f"e.g. python -m pipeline score ARTICLES --out {scores_dir}")
    frame = pd.read_parquet(path)
    needed = ["article_id", "sentence_index", "text", "stance", "sentiment", "sentiment_confidence",
              *(f"prob_{label}" for label in STANCE_LABELS)]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise LabelError(f"{path} lacks columns {missing}: rescore the folder with this version "
                         "(python -m pipeline score ... --fresh)")
    if frame.empty:
        raise LabelError(f"{path} holds no sentences: score some articles first")
    return frame.sort_values(["article_id", "sentence_index"]).reset_index(drop=True)


def _context(frame: pd.DataFrame, position: int, width: int) -> tuple[str, str]:
    article, index = frame.at[position, "article_id"], frame.at[position, "sentence_index"]
    same = frame[frame["article_id"] == article]
    before = same[(same["sentence_index"] < index) & (same["sentence_index"] >= index - width)]
    after = same[(same["sentence_index"] > index) & (same["sentence_index"] <= index + width)]
    return " ".join(before["text"]), " ".join(after["text"])


def to_task(frame: pd.DataFrame, position: int, context: int, model_version: str, score: float,
            strategy: str) -> dict[str, Any]:
    row = frame.loc[position]
    before, after = _context(frame, position, context)
    # Below the uncertain threshold the score output says "uncertain": the annotator starts from the argmax.
    stance = max(STANCE_LABELS, key=lambda label: row[f"prob_{label}"])
    stance_score = float(row[f"prob_{stance}"])
    result = [
        {"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]},
         "score": stance_score},
        {"from_name": "sentiment", "to_name": "sentence", "type": "choices",
         "value": {"choices": [row["sentiment"]]}, "score": float(row["sentiment_confidence"])},
    ]
    if str(row.get("stakeholder") or "").strip():
        result.append({"from_name": "stakeholder", "to_name": "sentence", "type": "textarea",
                       "value": {"text": [row["stakeholder"]]}})
    data = {"text": row["text"], "article_id": str(row["article_id"]), "sentence_index": int(row["sentence_index"]),
            "context_before": before, "context_after": after, "title": str(row.get("title") or ""),
            "outlet": str(row.get("outlet") or ""), "strategy": strategy, "uncertainty": round(float(score), 4)}
    return {"data": data, "predictions": [{"model_version": model_version, "score": stance_score,
                                           "result": result}]}


def _atomic_write_text(path: Path, text: str) -> None:
    """Writes beside the target, then renames: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_tasks(cfg: LabelExportConfig) -> ExportResult:
    """Writes the ``cfg.n`` sentences most worth labeling as Label Studio tasks with the model's guesses."""
    scores_dir = Path(cfg.scores_dir)
    frame = read_scores(scores_dir)
    probabilities = frame[[f"prob_{label}" for label in STANCE_LABELS]].to_numpy(dtype=float)
    scores = uncertainty(probabilities, cfg.strategy, cfg.seed)
    done = labeled_keys(cfg.skip_labeled)
    keys = list(zip(frame["article_id"].astype(str), frame["sentence_index"].astype(int), strict=True))
    already = np.array([key in done for key in keys])
    long_enough = frame["text"].str.split().str.len().to_numpy() >= cfg.min_words
    eligible = np.flatnonzero(long_enough & ~already)
    if not len(eligible):
        raise LabelError(f"{scores_dir}: no sentence left to label ({int(already.sum())} already labeled, "
                         f"{int((~long_enough).sum())} shorter than {cfg.min_words} words): score more articles")
    candidates = frame.iloc[eligible].reset_index(drop=True)
    picked, duplicates = select(candidates, scores[eligible], cfg.n, cfg.max_per_article, cfg.near_duplicate_jaccard)
    model_version = _model_version(scores_dir)
    tasks = [to_task(frame, int(eligible[p]), cfg.context, model_version, scores[eligible][p], cfg.strategy)
             for p in picked]
    _atomic_write_text(Path(cfg.out), json.dumps(tasks, indent=1, ensure_ascii=False))
    chosen = scores[eligible][picked] if picked else np.array([np.nan])
    return ExportResult(Path(cfg.out), len(tasks), len(eligible), int(already.sum()), duplicates, cfg.strategy,
                        float(np.mean(chosen)), float(np.mean(scores[eligible])))


# ---------------------------------------------------------------- import


@dataclasses.dataclass
class Annotation:
    labels: dict[str, Any]  # stance, sentiment, stakeholder as found in the export
    annotator: str
    order: str  # updated_at (or creation order) for picking the latest of two that disagree
    where: str  # file and task/line of this annotation, for messages


@dataclasses.dataclass
class ExportedTask:
    where: str  # file and task/line, for messages
    task_id: str
    data: dict[str, Any]
    annotations: list[Annotation]
    cancelled: int = 0


@dataclasses.dataclass
class ImportResult:
    out: Path
    tasks: int
    labeled: int
    skipped: int  # tasks whose annotations were all skipped (cancelled)
    unlabeled: int  # tasks with no annotation yet
    added: int
    unchanged: int
    replaced: int
    conflicts: list[str]
    disagreements: list[str]
    agreement: dict[str, float]
    total: int  # labels in the output file afterwards
    format: str


def _choice(value: Any) -> Any:
    """A single choice as a string; JSON-MIN and CSV give a string, or {"choices": [...]} for several."""
    if isinstance(value, dict) and "choices" in value:
        value = value["choices"]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        try:
            return _choice(json.loads(value))
        except json.JSONDecodeError:
            return value
    if isinstance(value, list):
        return value[0] if len(value) == 1 else value
    return value


def _text(value: Any) -> str:
    if isinstance(value, dict) and "text" in value:
        value = value["text"]
    if isinstance(value, list):
        value = " ".join(str(v) for v in value)
    return "" if value is None else str(value).strip()


def _annotator(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("email") or value.get("id") or "")
    return "" if value is None else str(value)


def _read_json_tasks(path: Path, items: list[Any]) -> tuple[list[ExportedTask], str]:
    if items and all(isinstance(i, dict) and "annotations" in i for i in items):
        tasks = []
        for number, item in enumerate(items, 1):
            where = f"{path}: task {item.get('id', '?')} (item {number})"
            annotations, cancelled = [], 0
            for order, annotation in enumerate(item.get("annotations") or []):
                if annotation.get("was_cancelled"):
                    cancelled += 1
                    continue
                labels = {}
                for region in annotation.get("result") or []:
                    name, value = region.get("from_name"), region.get("value") or {}
                    labels[name] = _choice(value) if region.get("type") == "choices" else _text(value)
                annotations.append(Annotation(labels, _annotator(annotation.get("completed_by")),
                                              str(annotation.get("updated_at") or f"{order:06d}"),
                                              f"{where}, annotation {annotation.get('id', order + 1)}"))
            tasks.append(ExportedTask(where, str(item.get("id", "")), dict(item.get("data") or {}), annotations,
                                      cancelled))
        return tasks, "JSON"
    rows = []
    for number, item in enumerate(items, 1):
        if not isinstance(item, dict):
            raise LabelError(f"{path}: item {number} is a {type(item).__name__}, not a task object: export the "
                             "project again as JSON, JSON-MIN or CSV")
        rows.append((f"{path}: task {item.get('id', '?')} (item {number})", item))
    return _flat_tasks(rows), "JSON-MIN"


DATA_FIELDS = ("text", "article_id", "sentence_index", "context_before", "context_after", "title", "outlet")
LABEL_FIELDS = ("stance", "sentiment", "stakeholder")


def _flat_tasks(rows: list[tuple[str, dict[str, Any]]]) -> list[ExportedTask]:
    """JSON-MIN and CSV: one row per annotation (or per task without one), task fields flattened."""
    tasks: dict[str, ExportedTask] = {}
    for order, (where, row) in enumerate(rows):
        task_id = str(row.get("id", where))
        task = tasks.setdefault(task_id, ExportedTask(where, task_id, {k: row[k] for k in DATA_FIELDS if k in row},
                                                      []))
        if row.get("was_cancelled") in (True, "true", "True"):
            task.cancelled += 1
            continue
        labels = {name: _choice(row[name]) if name != "stakeholder" else _text(row[name])
                  for name in LABEL_FIELDS if name in row and row[name] not in ("", None)}
        if labels.get("stance") is None and labels.get("sentiment") is None:
            continue  # a task nobody has annotated yet
        task.annotations.append(Annotation(labels, _annotator(row.get("annotator")),
                                           str(row.get("updated_at") or f"{order:06d}"), where))
    return list(tasks.values())


def read_export(path: Path) -> tuple[list[ExportedTask], str]:
    """The tasks of a Label Studio export in JSON, JSON-MIN (both .json) or CSV."""
    if not path.is_file():
        raise LabelError(f"{path}: export file not found (make label-pull writes one)")
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = [(f"{path}: line {reader.line_num}", dict(row)) for row in reader]
        if rows and not {"text", "article_id", "sentence_index"} <= set(rows[0][1]):
            raise LabelError(f"{path}: no text/article_id/sentence_index columns: these tasks did not come from "
                             "`python -m pipeline label export`")
        for _, row in rows:
            if str(row.get("sentence_index", "")).strip().lstrip("-").isdigit():
                row["sentence_index"] = int(row["sentence_index"])
        return _flat_tasks(rows), "CSV"
    if path.suffix.lower() != ".json":
        raise LabelError(f"{path}: unsupported export format {path.suffix!r}: export as JSON, JSON-MIN or CSV")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise LabelError(f"{path}: not valid JSON (line {err.lineno}: {err.msg}): download the export again") from err
    if not isinstance(items, list):
        raise LabelError(f"{path}: expected a list of tasks, found a {type(items).__name__}: export the project as "
                         "JSON, JSON-MIN or CSV")
    return _read_json_tasks(path, items)


def _resolve(task: ExportedTask) -> tuple[dict[str, Any], bool]:
    """One label per field from a task's annotations: the majority, else the latest; and whether they disagreed."""
    if len(task.annotations) == 1:
        return task.annotations[0].labels, False
    latest = max(task.annotations, key=lambda a: a.order)
    resolved, disagree = {}, False
    for field in LABEL_FIELDS:
        values = [a.labels.get(field, "") for a in task.annotations]
        counts = collections.Counter(json.dumps(v) for v in values)
        top, top_count = counts.most_common(1)[0]
        disagree |= len(counts) > 1
        tied = sum(1 for c in counts.values() if c == top_count) > 1
        resolved[field] = latest.labels.get(field, "") if tied else json.loads(top)
    return resolved, disagree


def _agreement(doubled: list[ExportedTask]) -> dict[str, float]:
    """Raw agreement and Cohen's kappa of the first two annotations, per task, over doubly annotated tasks."""
    from sklearn.metrics import cohen_kappa_score

    if not doubled:
        return {}
    result: dict[str, float] = {"tasks": float(len(doubled))}
    for field in ("stance", "sentiment"):
        first = [str(t.annotations[0].labels.get(field)) for t in doubled]
        second = [str(t.annotations[1].labels.get(field)) for t in doubled]
        result[f"{field}_agreement"] = float(np.mean([a == b for a, b in zip(first, second, strict=True)]))
        result[f"{field}_kappa"] = (float(cohen_kappa_score(first, second))
                                    if len(set(first) | set(second)) > 1 else 1.0)
    return result


def _annotation_errors(annotation: Annotation) -> list[str]:
    """Every annotation's choices are checked, also those that a majority or a later annotation outvotes."""
    errors = []
    for task_name, labels in TASK_LABELS.items():
        value = annotation.labels.get(task_name)
        if value is None:
            errors.append(f"{annotation.where}: no {task_name} chosen; {FIX_HINT}")
        elif isinstance(value, list):
            errors.append(f"{annotation.where}: several {task_name} choices {value}; choose one, then export again")
        elif value not in labels:
            errors.append(f"{annotation.where}: {task_name} {value!r} is not one of {', '.join(labels)}; {FIX_HINT}")
    return errors


def _label_row(task: ExportedTask, labels: dict[str, Any], source: str) -> tuple[dict[str, Any], list[str]]:
    data = task.data
    row = {"article_id": data.get("article_id"), "sentence_index": data.get("sentence_index"),
           "text": data.get("text"), "stance": labels.get("stance"), "sentiment": labels.get("sentiment"),
           "stakeholder": labels.get("stakeholder") or "",
           "annotators": sorted({a.annotator for a in task.annotations if a.annotator}),
           "task_id": task.task_id, "source": source}
    errors = []
    for field in ("article_id", "sentence_index", "text"):
        if row[field] in (None, ""):
            errors.append(f"{task.where}: the task has no data field {field!r}; label only tasks made by "
                          "`python -m pipeline label export`")
    if errors:
        return row, errors
    errors = [e for a in task.annotations for e in _annotation_errors(a)]
    return row, errors or user_row_errors(row, task.where)


def read_user_file(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows, errors = read_jsonl(path)
    if errors:
        raise LabelError(f"{path} is damaged, so nothing was merged into it: " + "; ".join(errors[:5]))
    for row in rows:
        row.pop("_file"), row.pop("_line")
    return rows


def import_labels(cfg: LabelImportConfig) -> ImportResult:
    """Checks a Label Studio export whole, then merges its labels into ``cfg.out`` (atomically)."""
    if not cfg.export:
        raise LabelError("label import needs the export file: python -m pipeline label import EXPORT --out FILE")
    export, out = Path(cfg.export), Path(cfg.out)
    tasks, kind = read_export(export)
    if not tasks:
        raise LabelError(f"{export}: the export holds no tasks: annotate some in Label Studio, then export again")
    existing = read_user_file(out)  # read first: a damaged file stops the import before anything changes
    labeled = [t for t in tasks if t.annotations]
    skipped = sum(1 for t in tasks if not t.annotations and t.cancelled)
    unlabeled = sum(1 for t in tasks if not t.annotations and not t.cancelled)
    rows, errors, disagreements = [], [], []
    for task in labeled:
        labels, disagree = _resolve(task)
        row, row_errors = _label_row(task, labels, export.name)
        errors += row_errors
        if disagree and not row_errors:
            disagreements.append(f"{task.where}: annotators disagree ("
                                 + " vs ".join(f"{a.labels.get('stance')}/{a.labels.get('sentiment')}"
                                               for a in task.annotations)
                                 + f"); kept {row['stance']}/{row['sentiment']}")
        rows.append(row)
    if errors:
        raise LabelError(f"{export}: {len(errors)} problem(s); nothing was written to {out}:\n" + "\n".join(errors))

    merged = {(r["article_id"], r["sentence_index"]): r for r in existing}
    added = unchanged = replaced = 0
    conflicts = []
    for row in rows:
        key = (row["article_id"], row["sentence_index"])
        old = merged.get(key)
        if old is None:
            merged[key] = row
            added += 1
            continue
        changed = [f for f in ("text", *LABEL_FIELDS) if str(old.get(f, "")).strip() != str(row[f]).strip()]
        if not changed:
            unchanged += 1
            continue
        what = ", ".join(f"{f} {old.get(f, '')!r} -> {row[f]!r}" for f in changed if f != "text")
        what = what or "the sentence text differs"
        if cfg.overwrite:
            merged[key] = row
            replaced += 1
            conflicts.append(f"article {key[0]} sentence {key[1]}: {what} (replaced)")
        else:
            conflicts.append(f"article {key[0]} sentence {key[1]}: {what} (kept the existing label)")
    ordered = sorted(merged.values(), key=lambda r: (str(r["article_id"]), int(r["sentence_index"])))
    _atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered))
    agreement = _agreement([t for t in labeled if len(t.annotations) >= 2])
    return ImportResult(out, len(tasks), len(labeled), skipped, unlabeled, added, unchanged, replaced, conflicts,
                        disagreements, agreement, len(ordered), kind)


# ---------------------------------------------------------------- retrain on the user's labels


@dataclasses.dataclass
class TrainUserResult:
    task: str
    run_id: str
    family: str
    champion_version: str
    candidate_version: str | None
    champion_user_f1: float
    candidate_user_f1: float
    champion_val_f1: float
    candidate_val_f1: float
    n_user_train: int
    n_user_holdout: int
    promoted: bool
    reason: str


def champion_model(task: str, tracking_uri: str = "") -> dict[str, str]:
    """The task's champion: registered version, run id, family and encoder (what ``make train-user`` retrains)."""
    tracking.setup(tracking_uri)
    name = tracking.REGISTERED_NAMES[task]
    found = tracking.champion_info(name)
    if found is None:
        raise LabelError(f"no {name} champion to retrain: train one first (make all, or make train TASK={task})")
    return found


def _val_macro_f1(classifier, cfg: TrainConfig) -> float:
    val = load_split(cfg.data.corpus_dir, "val")
    label2id, _ = label_maps(cfg.task)
    probabilities = classifier.predict_proba(val[cfg.text_column].tolist(), cfg.training.eval_batch_size)
    return metrics.compute(val[cfg.task].map(label2id).to_numpy(), probabilities, classifier.labels)["macro_f1"]


def decide(candidate_user: float, champion_user: float, candidate_val: float, champion_val: float,
           max_val_drop: float) -> tuple[bool, str]:
    """Promote only when better on the user's hold-out and at most ``max_val_drop`` worse on corpus val."""
    figures = (f"user hold-out macro-F1 {candidate_user:.3f} vs champion {champion_user:.3f}; corpus val macro-F1 "
               f"{candidate_val:.3f} vs {champion_val:.3f} (allowed drop {max_val_drop:.3f})")
    if candidate_user <= champion_user:
        return False, f"not better on the user hold-out: {figures}"
    if candidate_val < champion_val - max_val_drop:
        return False, f"better on the user hold-out but loses more than allowed on corpus val: {figures}"
    return True, f"better on the user hold-out and holds on corpus val: {figures}"


def train_user(cfg: TrainConfig, max_val_drop: float = 0.01) -> TrainUserResult:
    """Trains ``cfg`` (the champion's family, ``data.user_files`` set) and moves the champion alias to it only
    if its user hold-out macro-F1 beats the champion's and its corpus validation macro-F1 is at most
    ``max_val_drop`` below the champion's, both measured now on the same rows."""
    from pipeline import train

    user = load_user(cfg.data)
    if user is None:
        raise LabelError("no user labels: set data.user_files (make train-user USER_FILES='data/user/*.jsonl')")
    if not len(user.holdout):
        raise LabelError(f"the user hold-out is empty ({len(user.train)} labels, all from one article): label "
                         "sentences of more articles, so that some can be held out")
    champion = champion_model(cfg.task, cfg.tracking.tracking_uri)
    name = tracking.REGISTERED_NAMES[cfg.task]
    current = tracking.load_model(f"models:/{name}/{champion['version']}")
    champion_user = train.user_holdout_metrics(current, cfg, user)["macro_f1"]
    champion_val = _val_macro_f1(current, cfg)
    cfg = dataclasses.replace(cfg, tracking=dataclasses.replace(cfg.tracking, register=True, promote=False,
                                                                auto_promote=False))
    result = train.run(cfg)
    candidate_user, candidate_val = result.test_user["macro_f1"], result.val["macro_f1"]
    promoted, why = decide(candidate_user, champion_user, candidate_val, champion_val, max_val_drop)
    promoted = promoted and bool(result.registered_version)
    if promoted:
        tracking.set_champion(name, result.registered_version)
    version = result.registered_version if promoted else champion["version"]
    reason = (f"{'promoted' if promoted else 'kept'} version {version}: {why} (user hold-out: "
              f"{len(user.holdout)} sentences)")
    if len(user.holdout) < SMALL_HOLDOUT:
        reason += (f"; a hold-out under {SMALL_HOLDOUT} sentences moves by whole points with one sentence: label "
                   "more articles before trusting the difference")
    tracking.annotate_run(result.run_id, {"user_promotion": "promoted" if promoted else "kept",
                                          "user_promotion_reason": reason[:4000]},
                          {"test_user/champion_macro_f1": champion_user, "val/champion_macro_f1": champion_val})
    return TrainUserResult(cfg.task, result.run_id, cfg.model.family, champion["version"], result.registered_version,
                           champion_user, candidate_user, champion_val, candidate_val, len(user.train),
                           len(user.holdout), promoted, reason)

