"""Evaluation stage: ``run(cfg) -> EvaluateResult`` scores any model on any labeled table and logs it.

With ``suite=True`` the table is the boundary suite (``data/boundary/suite.jsonl``): one border rule of
``docs/labels.md`` per sentence, minimal pairs tagged. The result is accuracy per rule (``suite/B1``...),
overall, and the share of minimal pairs with both sides right (``suite/pairs_both_right``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import borders, metrics, tracking
from pipeline.config import EvaluateConfig
from pipeline.data import DataError, read_suite, read_table
from pipeline.models import Classifier


@dataclasses.dataclass
class EvaluateResult:
    run_id: str
    task: str
    metrics: dict[str, float]
    n_rows: int


def suite_metrics(classifier: Classifier, suite: pd.DataFrame, batch_size: int = 64
                  ) -> tuple[dict[str, float], pd.DataFrame]:
    """Accuracy of the classifier's task per border rule, overall, and on minimal pairs crossing its border.

    A pair counts for a task only when its two sides differ in that task's label (a sentiment pair
    of S1 keeps the same stance, so it tests the sentiment model only).
    """
    task = classifier.task
    probabilities = classifier.predict_proba(suite["text"].tolist(), batch_size)
    predicted = suite.assign(predicted=[classifier.labels[i] for i in np.asarray(probabilities).argmax(1)])
    predicted["correct"] = predicted["predicted"] == predicted[task]
    result = {f"suite/{rule}": float(group["correct"].mean())
              for rule, group in predicted.groupby("rule") if rule in borders.RULES}
    result["suite/overall"] = float(predicted["correct"].mean())
    paired = predicted[predicted["pair"] != ""]
    crossing = [group for _, group in paired.groupby("pair") if group[task].nunique() == 2]
    if crossing:
        result["suite/pairs_both_right"] = float(np.mean([group["correct"].all() for group in crossing]))
        result["suite/pairs"] = float(len(crossing))
    return result, predicted


@contextlib.contextmanager
def _evaluation_run(cfg: EvaluateConfig, classifier: Classifier, name: str, kind: str, n_rows: int
                    ) -> Iterator[tracking.Run]:
    tags = {"task": classifier.task, "model_family": classifier.family, "model_uri": cfg.model,
            "eval_data": str(cfg.data), "kind": kind}
    with tracking.start_run(f"{classifier.task}-evaluation", name, tags, cfg.tracking_uri) as run:
        run.params({"model_uri": cfg.model, "data": cfg.data, "n_rows": n_rows})
        yield run


def _run_suite(cfg: EvaluateConfig, classifier: Classifier) -> EvaluateResult:
    suite, errors = read_suite(cfg.data)
    if errors:
        raise DataError("\n".join(errors[:20]))
    result, predicted = suite_metrics(classifier, suite, cfg.batch_size)
    with _evaluation_run(cfg, classifier, f"suite-{classifier.task}-{classifier.family}", "suite",
                         len(suite)) as run, tempfile.TemporaryDirectory() as tmp:
        run.metrics(result)
        wrong = predicted[~predicted["correct"]][["id", "rule", "pair", "text", classifier.task, "predicted"]]
        wrong.to_csv(Path(tmp) / "suite_errors.csv", index=False)
        run.artifact(Path(tmp) / "suite_errors.csv", "eval")
        return EvaluateResult(run.id, classifier.task, result, len(suite))


def run(cfg: EvaluateConfig) -> EvaluateResult:
    tracking.setup(cfg.tracking_uri)
    classifier = tracking.load_model(cfg.model)
    if hasattr(classifier, "heads"):  # a multi-task model: the label column names the head to evaluate
        if cfg.label_column not in classifier.heads:
            raise DataError(f"{cfg.model} is a multi-task model: choose the head with --label-column "
                            f"{' or '.join(classifier.heads)}")
        classifier = classifier.heads[cfg.label_column]
    if cfg.suite:
        return _run_suite(cfg, classifier)
    frame = read_table(cfg.data)
    label_column = cfg.label_column or classifier.task
    for column in (cfg.text_column, label_column):
        if column not in frame.columns:
            raise DataError(f"{cfg.data}: no column {column!r}; columns are {list(frame.columns)} "
                            "(choose with --text-column / --label-column)")
    labels = classifier.labels
    unknown = sorted(set(frame[label_column].astype(str)) - set(labels))
    if unknown:
        raise DataError(f"{cfg.data}: column {label_column!r} holds labels the model does not know: "
                        f"{unknown}; the model ({classifier.task}) knows {labels}")
    y = frame[label_column].astype(str).map({name: i for i, name in enumerate(labels)}).to_numpy()
    texts = frame[cfg.text_column].astype(str).tolist()
    probabilities = classifier.predict_proba(texts, cfg.batch_size)
    result = metrics.compute(y, probabilities, labels)
    name = f"eval-{classifier.task}-{classifier.family}-{Path(cfg.data).stem}"
    with _evaluation_run(cfg, classifier, name, "evaluation", len(frame)) as run, tempfile.TemporaryDirectory() as tmp:
        run.metrics({f"test/{k}": v for k, v in result.items()})
        predicted = np.asarray(probabilities).argmax(1)
        run.text(metrics.report_text(y, predicted, labels), "eval/classification_report.txt")
        run.artifact(metrics.plot_confusion(y, predicted, labels, Path(tmp) / "confusion_matrix.png", name),
                     "eval")
        return EvaluateResult(run.id, classifier.task, result, len(frame))
