"""Evaluation stage: ``run(cfg) -> EvaluateResult`` scores any model on any labeled table and logs it."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from pipeline import metrics, tracking
from pipeline.config import EvaluateConfig
from pipeline.data import DataError, read_table


@dataclasses.dataclass
class EvaluateResult:
    run_id: str
    task: str
    metrics: dict[str, float]
    n_rows: int


def run(cfg: EvaluateConfig) -> EvaluateResult:
    tracking.setup(cfg.tracking_uri)
    classifier = tracking.load_model(cfg.model)
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
    tags = {"task": classifier.task, "model_family": classifier.family, "model_uri": cfg.model,
            "eval_data": str(cfg.data), "kind": "evaluation"}
    with tracking.start_run(f"{classifier.task}-evaluation", name, tags, cfg.tracking_uri) as run, \
            tempfile.TemporaryDirectory() as tmp:
        run.params({"model_uri": cfg.model, "data": cfg.data, "n_rows": len(frame)})
        run.metrics({f"test/{k}": v for k, v in result.items()})
        predicted = np.asarray(probabilities).argmax(1)
        run.text(metrics.report_text(y, predicted, labels), "eval/classification_report.txt")
        run.artifact(metrics.plot_confusion(y, predicted, labels, Path(tmp) / "confusion_matrix.png", name),
                     "eval")
        return EvaluateResult(run.id, classifier.task, result, len(frame))
