"""Scoring stage: ``run(cfg, inputs, out) -> ScoreResult`` labels every sentence of every article.

Articles stream through in chunks of ``chunk_articles``. Each chunk is written as a part (a Parquet
file of sentences, then a JSON file of article summaries and input errors that marks it complete),
each write atomic. A rerun on the same folder skips the articles of completed parts, so an
interrupted run resumes without duplicating or losing a row. Each part records what scored it (the
model versions the URIs resolved to, the uncertain threshold (the stance model's own, chosen on
validation, unless the config sets one), the fast path, the package version); a rerun with anything
different stops and names what changed, and ``fresh=True`` starts over. The final
files are assembled from the parts at the end: ``sentences.parquet``, ``sentences.csv``,
``articles.json``, ``errors.jsonl``, ``collection.json`` (the collection overview) and ``report.html``.
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

import pipeline
from pipeline import attribution, report, segment, tracking
from pipeline.config import ScoreConfig
from pipeline.errors import PipelineError
from pipeline.inputs import Article, InputError, InputProblem, check_tables, read_articles

UNCERTAIN = "uncertain"
# The fixed threshold of stance models saved before calibration (they carry no threshold of their own).
LEGACY_UNCERTAIN_THRESHOLD = 0.4
NO_STANCE = ("neutral", UNCERTAIN)
# Optional article metadata from the input (empty when it has none), kept on every sentence and summary.
ARTICLE_FIELDS = ("title", "outlet", "date")


class ScoreError(PipelineError, RuntimeError):
    """Scoring cannot start or go on; the message says why and what to do."""


@dataclasses.dataclass
class ScoreResult:
    out: Path
    articles: int
    sentences: int
    errors: int
    skipped: int
    seconds: float
    stance_counts: dict[str, int]
    run_id: str | None = None
    load_seconds: float = 0.0  # loading the models, before the first article

    def summary(self) -> dict[str, Any]:
        return {"articles": self.articles, "sentences": self.sentences, "errors": self.errors,
                "resumed (skipped)": self.skipped, "seconds": round(self.seconds, 1),
                "sentences/s": round(self.sentences / max(self.seconds, 1e-9), 1), "out": str(self.out)}


class Engine(Protocol):
    stance_labels: list[str]
    sentiment_labels: list[str]

    def classify(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]: ...


class LocalEngine:
    """Both classifiers in this process, with the configured fast path."""

    def __init__(self, cfg: ScoreConfig):
        self.batch_size = cfg.batch_size
        self.multitask = None
        if cfg.models == "multitask":
            self.multitask = tracking.load_model(cfg.multitask_model)
            if self.multitask.family != "multitask":
                raise ScoreError(f"multitask_model {cfg.multitask_model} is a {self.multitask.family} "
                                 f"{self.multitask.task} model, not a multitask one; pass a news-classifier URI")
            self.multitask.set_prediction(cfg.fast_path, cfg.batch_tokens, cfg.fixed_shapes)
            self.stance_labels = self.multitask.heads["stance"].labels
            self.sentiment_labels = self.multitask.heads["sentiment"].labels
            return
        self.stance = tracking.load_model(cfg.stance_model)
        self.sentiment = tracking.load_model(cfg.sentiment_model)
        for classifier, task in ((self.stance, "stance"), (self.sentiment, "sentiment")):
            if classifier.task != task:
                raise ScoreError(f"the {task} model is a {classifier.task} model; pass the right URI")
            classifier.set_prediction(cfg.fast_path, cfg.batch_tokens, cfg.fixed_shapes)
        self.stance_labels, self.sentiment_labels = self.stance.labels, self.sentiment.labels

    def classify(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        if self.multitask is not None:  # one encoder pass for both tasks
            both = self.multitask.predict_tasks(texts, self.batch_size)
            return both["stance"], both["sentiment"]
        return (self.stance.predict_proba(texts, self.batch_size),
                self.sentiment.predict_proba(texts, self.batch_size))


class SparkEngine:
    """Both classifiers as ``mlflow.pyfunc.spark_udf`` columns over a Spark DataFrame of sentences."""

    def __init__(self, cfg: ScoreConfig):
        try:
            from pyspark.sql import SparkSession
        except ImportError as err:
            raise ScoreError("the spark engine needs pyspark: run `make setup-spark` "
                             "(pip install -e '.[spark]')") from err

        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        # Workers must run this environment's Python (with pandas, torch and this package), not the system one.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        self.spark = (SparkSession.builder.master(cfg.spark_master).appName("newsstance-score")
                      .config("spark.driver.host", "127.0.0.1").config("spark.ui.enabled", "false")
                      .getOrCreate())
        self.multitask_udf = None
        if cfg.models == "multitask":
            self.stance_labels = tracking.model_labels(cfg.multitask_model, "stance")
            self.sentiment_labels = tracking.model_labels(cfg.multitask_model, "sentiment")
            self.multitask_udf = tracking.spark_udf(self.spark, cfg.multitask_model, tracking.output_columns(
                tracking.model_meta(cfg.multitask_model)))
            return
        self.stance_labels = tracking.model_labels(cfg.stance_model)
        self.sentiment_labels = tracking.model_labels(cfg.sentiment_model)
        self.stance_udf = tracking.spark_udf(self.spark, cfg.stance_model, tracking.output_columns(
            tracking.model_meta(cfg.stance_model)))
        self.sentiment_udf = tracking.spark_udf(self.spark, cfg.sentiment_model, tracking.output_columns(
            tracking.model_meta(cfg.sentiment_model)))

    def classify(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        frame = self.spark.createDataFrame(pd.DataFrame({"row": range(len(texts)), "text": texts}))
        if self.multitask_udf is not None:  # one UDF, one encoder pass, both tasks' columns
            result = frame.select("row", self.multitask_udf("text").alias("both")).toPandas().sort_values("row")
            return tuple(np.array([[r[f"{task}_prob_{lab}"] for lab in labels] for r in result["both"]])
                         for task, labels in (("stance", self.stance_labels), ("sentiment", self.sentiment_labels)))
        scored = frame.select("row", self.stance_udf("text").alias("st"), self.sentiment_udf("text").alias("se"))
        result = scored.toPandas().sort_values("row")
        stance = np.array([[r[f"prob_{lab}"] for lab in self.stance_labels] for r in result["st"]])
        sentiment = np.array([[r[f"prob_{lab}"] for lab in self.sentiment_labels] for r in result["se"]])
        return stance, sentiment


# glibc's malloc_trim among the symbols the process already has; None on other C libraries (macOS, musl).
_MALLOC_TRIM = getattr(ctypes.CDLL(None), "malloc_trim", None)


def return_freed_memory() -> None:
    """Hands the C allocator's free pages back to the system, once per chunk. Every batch frees activation
    buffers of a new size and glibc keeps such pages in its heaps: a probe that predicted 800 varied
    sentences 12 times grew by 580 MB without this and by 195 MB with it."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _chunks(items: Iterator[Article | InputProblem], size: int, skip: set[str]
            ) -> Iterator[tuple[list[Article], list[InputProblem], int]]:
    articles, problems, skipped, seen = [], [], 0, set(skip)
    for item in items:
        if item.id in skip:
            skipped += 1
            continue
        if item.id in seen:
            problems.append(InputProblem(item.id, item.source, f"duplicate article id {item.id!r}; ids must be unique"))
        elif isinstance(item, InputProblem):
            problems.append(item)
        else:
            articles.append(item)
        seen.add(item.id)
        if len(articles) + len(problems) >= size:
            yield articles, problems, skipped
            articles, problems, skipped = [], [], 0
    if articles or problems or skipped:
        yield articles, problems, skipped


def summarize_article(rows: pd.DataFrame) -> dict[str, Any]:
    """Counts per stance, and per stakeholder the dominant stance with the sentence indices as evidence.

    Stakeholders are grouped by their normalised name, so "the Treasury Department" and "Treasury
    Department" are one key; the longest form seen names it.
    """
    stances, confidences = rows["stance"].tolist(), rows["stance_confidence"].tolist()
    names, indices = rows["stakeholder"].tolist(), rows["sentence_index"].tolist()
    held: dict[str, list[int]] = {}  # normalised name -> row positions, in order of first mention
    for row, (name, stance) in enumerate(zip(names, stances, strict=True)):
        if name and stance not in NO_STANCE:
            held.setdefault(attribution.normalize(name), []).append(row)
    stakeholders: dict[str, dict[str, Any]] = {}
    for group in held.values():
        counts = collections.Counter(stances[r] for r in group)
        weight = {stance: sum(confidences[r] for r in group if stances[r] == stance) for stance in counts}
        # Most sentences first, then the highest summed confidence, then the label's name.
        dominant = min(counts, key=lambda stance: (-counts[stance], -weight[stance], stance))
        stakeholders[max((names[r] for r in group), key=len)] = {
            "dominant_stance": dominant,
            "evidence": [int(indices[r]) for r in group if stances[r] == dominant],
            "stances": dict(counts.most_common()),
        }
    return {"sentences": len(rows), "stance_counts": dict(collections.Counter(stances).most_common()),
            "stakeholders": stakeholders}


def score_articles(articles: list[Article], engine: Engine, threshold: float) -> pd.DataFrame:
    sentences = [(article, s) for article in articles for s in segment.split(article.text)]
    columns = ["article_id", "sentence_index", "char_start", "char_end", "text", "stance", "stance_confidence",
               *(f"prob_{lab}" for lab in engine.stance_labels), "sentiment", "sentiment_confidence",
               "stakeholder", *ARTICLE_FIELDS]
    if not sentences:
        return pd.DataFrame(columns=columns)
    texts = [s.text for _, s in sentences]
    stance_p, sentiment_p = engine.classify(texts)
    stance = [engine.stance_labels[i] for i in stance_p.argmax(1)]
    stance_conf = stance_p.max(1)
    stance = [UNCERTAIN if c < threshold else label for label, c in zip(stance, stance_conf, strict=True)]
    frame = pd.DataFrame({
        "article_id": [a.id for a, _ in sentences],
        "sentence_index": [s.index for _, s in sentences],
        "char_start": [s.start for _, s in sentences],
        "char_end": [s.end for _, s in sentences],
        "text": texts,
        "stance": stance,
        "stance_confidence": stance_conf.astype(float),
    })
    for i, label in enumerate(engine.stance_labels):
        frame[f"prob_{label}"] = stance_p[:, i].astype(float)
    frame["sentiment"] = [engine.sentiment_labels[i] for i in sentiment_p.argmax(1)]
    frame["sentiment_confidence"] = sentiment_p.max(1).astype(float)
    holders = []
    for _, group in frame.groupby("article_id", sort=False):
        holders += attribution.attribute(group["text"].tolist(), (~group["stance"].isin(NO_STANCE)).tolist())
    frame["stakeholder"] = holders
    for field in ARTICLE_FIELDS:
        frame[field] = [getattr(a, field) for a, _ in sentences]
    return frame[columns]


def _completed_parts(parts_dir: Path) -> list[tuple[Path, dict[str, Any]]]:
    done = []
    for meta_path in sorted(parts_dir.glob("part-*.json")):
        done.append((meta_path.with_suffix(".parquet"), json.loads(meta_path.read_text())))
    return done


def _assemble(out: Path, parts: list[tuple[Path, dict[str, Any]]], cfg: ScoreConfig) -> dict[str, Any]:
    """Joins the parts into the final files, streaming the sentences part by part."""
    sentences_pq, sentences_csv = out / "sentences.parquet", out / "sentences.csv"
    articles: dict[str, Any] = {}
    errors: list[dict[str, str]] = []
    stance_counts: collections.Counter = collections.Counter()
    total = 0

    def write_tables(tmp_pq: Path) -> None:
        nonlocal total
        tmp_csv = sentences_csv.with_name(f".{sentences_csv.name}.tmp")
        writer = None
        with tmp_csv.open("w", encoding="utf-8", newline="") as csv_handle:
            for index, (part, meta) in enumerate(parts):
                table = pq.read_table(part)
                if table.num_rows:
                    writer = writer or pq.ParquetWriter(tmp_pq, table.schema)
                    writer.write_table(table)
                    frame = table.to_pandas()
                    frame.to_csv(csv_handle, index=False, header=index == 0 or total == 0)
                    stance_counts.update(frame["stance"])
                    total += len(frame)
                articles.update(meta["articles"])
                errors.extend(meta["errors"])
            if writer is None:  # nothing scored: still leave a valid, empty table
                pq.write_table(pa.table({"article_id": pa.array([], pa.string())}), tmp_pq)
            else:
                writer.close()
        os.replace(tmp_csv, sentences_csv)

    _atomic_write(sentences_pq, write_tables)
    _atomic_write(out / "articles.json", lambda p: p.write_text(json.dumps(articles, indent=1, ensure_ascii=False)))
    _atomic_write(out / "errors.jsonl", lambda p: p.write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in errors)))
    totals = {"articles": len(articles), "sentences": total, "errors": len(errors),
              "stance_counts": dict(stance_counts)}
    overview = report.collection(sentences_pq, articles, totals)
    _atomic_write(out / "collection.json", lambda p: p.write_text(json.dumps(overview, indent=1, ensure_ascii=False)))
    _atomic_write(out / "report.html", lambda p: report.write(p, sentences_pq, articles, errors, totals,
                                                              cfg.uncertain_threshold, overview))
    return totals


def uncertain_threshold(cfg: ScoreConfig, stance_uri: str) -> float:
    """The configured threshold when one is given, else the one chosen on validation and saved with the
    stance model (a multi-task model's stance head), else (a model saved before calibration)
    ``LEGACY_UNCERTAIN_THRESHOLD``."""
    if cfg.uncertain_threshold is not None:
        return cfg.uncertain_threshold
    meta = tracking.model_meta(stance_uri)
    saved = (meta["heads"]["stance"] if "heads" in meta else meta).get("uncertain_threshold")
    return LEGACY_UNCERTAIN_THRESHOLD if saved is None else float(saved)


def scoring_setup(cfg: ScoreConfig) -> tuple[dict[str, Any], ScoreConfig]:
    """What decides the labels, with the model URIs resolved to versions and the uncertain threshold to a
    number; and ``cfg`` pinned to those. ``models: auto`` becomes ``multitask`` when ``multitask_model``
    resolves (after ``make all``: the news-classifier champion), else ``single``."""
    resolved = None
    if cfg.models == "auto":
        try:
            resolved = tracking.resolve_model(cfg.multitask_model)
        except tracking.ModelLoadError:  # no multi-task model: one model per task
            cfg = dataclasses.replace(cfg, models="single")
        else:
            cfg = dataclasses.replace(cfg, models="multitask")
    if cfg.models == "multitask":  # one model labels both tasks: it is the stance and the sentiment model
        multitask_uri, multitask = resolved or tracking.resolve_model(cfg.multitask_model)
        threshold = uncertain_threshold(cfg, multitask_uri)
        setup = {"stance_model": multitask, "sentiment_model": multitask, "uncertain_threshold": threshold,
                 "fast_path": cfg.fast_path, "package_version": pipeline.__version__}
        return setup, dataclasses.replace(cfg, multitask_model=multitask_uri, uncertain_threshold=threshold)
    stance_uri, stance = tracking.resolve_model(cfg.stance_model)
    sentiment_uri, sentiment = tracking.resolve_model(cfg.sentiment_model)
    threshold = uncertain_threshold(cfg, stance_uri)
    setup = {"stance_model": stance, "sentiment_model": sentiment, "uncertain_threshold": threshold,
             "fast_path": cfg.fast_path, "package_version": pipeline.__version__}
    return setup, dataclasses.replace(cfg, stance_model=stance_uri, sentiment_model=sentiment_uri,
                                      uncertain_threshold=threshold)


def _check_same_setup(out_dir: Path, completed: list[tuple[Path, dict[str, Any]]], setup: dict[str, Any]) -> None:
    for part, meta in completed:
        recorded = meta.get("setup") or {}
        changed = [f"{key} was {recorded.get(key, '(not recorded)')}, now {value}"
                   for key, value in setup.items() if recorded.get(key) != value]
        if changed:
            raise ScoreError(
                f"{out_dir} holds parts scored with a different setup ({part.stem}: {'; '.join(changed)}). "
                "Mixing them would give one output two models' labels: rerun with --fresh to score everything "
                "again, or choose another --out folder")


def run(cfg: ScoreConfig, inputs: list[str], out: str, fresh: bool = False) -> ScoreResult:
    """Scores ``inputs`` into ``out``, resuming from its finished parts; ``fresh`` clears them first."""
    try:
        check_tables(inputs, cfg.id_column, cfg.text_column)  # before loading any model
    except InputError as err:
        raise ScoreError(str(err)) from err
    tracking.setup(cfg.tracking.tracking_uri)
    setup, cfg = scoring_setup(cfg)
    out_dir = Path(out)
    parts_dir = out_dir / "parts"
    if fresh and parts_dir.exists():
        shutil.rmtree(parts_dir)
    parts_dir.mkdir(parents=True, exist_ok=True)
    completed = _completed_parts(parts_dir)
    _check_same_setup(out_dir, completed, setup)
    done_ids = {a for _, meta in completed for a in meta["articles"]} | {
        e["id"] for _, meta in completed for e in meta["errors"]}
    loading = time.perf_counter()
    engine: Engine = SparkEngine(cfg) if cfg.engine == "spark" else LocalEngine(cfg)
    started = time.perf_counter()
    n_articles = n_sentences = n_errors = n_skipped = 0
    next_part = max((int(p.stem.split("-")[1]) for p, _ in completed), default=0) + 1
    try:
        stream = read_articles(inputs, cfg.id_column, cfg.text_column, cfg.max_article_bytes)
        with tqdm(desc="scoring", unit="article") as bar:
            for articles, problems, skipped in _chunks(stream, cfg.chunk_articles, done_ids):
                n_skipped += skipped
                if not articles and not problems:
                    continue
                rows = score_articles(articles, engine, cfg.uncertain_threshold)
                part = parts_dir / f"part-{next_part:05d}.parquet"
                _atomic_write(part, lambda p, r=rows: r.to_parquet(p, index=False))
                by_article = dict(tuple(rows.groupby("article_id", sort=False)))
                summaries = {a.id: {**{f: getattr(a, f) for f in ARTICLE_FIELDS},
                                    **summarize_article(by_article.get(a.id, rows.iloc[:0]))} for a in articles}
                meta = {"setup": setup, "articles": summaries,
                        "errors": [{"id": p.id, "source": p.source, "reason": p.reason} for p in problems]}
                # The JSON marks the part complete: written last, so a crash before it redoes the chunk.
                _atomic_write(part.with_suffix(".json"), lambda p, m=meta: p.write_text(json.dumps(m)))
                next_part += 1
                return_freed_memory()
                n_articles += len(articles)
                n_errors += len(problems)
                n_sentences += len(rows)
                elapsed = max(time.perf_counter() - started, 1e-9)
                bar.update(len(articles) + len(problems))
                bar.set_postfix(articles_s=f"{n_articles / elapsed:.1f}", sentences_s=f"{n_sentences / elapsed:.1f}")
    except InputError as err:
        raise ScoreError(str(err)) from err
    seconds = time.perf_counter() - started
    totals = _assemble(out_dir, _completed_parts(parts_dir), cfg)
    result = ScoreResult(out_dir, totals["articles"], totals["sentences"], totals["errors"], n_skipped, seconds,
                         totals["stance_counts"], load_seconds=started - loading)
    result.run_id = tracking.log_scoring_run(cfg, inputs, out_dir, totals, n_articles, n_sentences, seconds)
    return result
