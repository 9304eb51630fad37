"""Compare stage: a table of a task's tracked training runs and per-class F1 bars across runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipeline import borders, tracking
from pipeline.config import TASK_LABELS


@dataclasses.dataclass
class CompareConfig:
    task: str = "stance"
    out: str = "outputs/compare"
    tracking_uri: str = ""


@dataclasses.dataclass
class CompareResult:
    table: pd.DataFrame
    chart: Path | None
    html: Path | None


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs.columns else pd.Series([np.nan] * len(runs), index=runs.index)


def run(cfg: CompareConfig) -> CompareResult:
    runs = tracking.search_runs(cfg.task, cfg.tracking_uri)
    if runs.empty:
        return CompareResult(pd.DataFrame(), None, None)
    runs = runs[runs["status"] == "FINISHED"]
    labels = TASK_LABELS[cfg.task]
    table = pd.DataFrame({
        "run": _column(runs, "tags.mlflow.runName"),
        "model": _column(runs, "tags.model"),
        "data": _column(runs, "tags.data_version"),
        "best val F1": _column(runs, f"metrics.{tracking.SELECTION_METRIC}").round(3),
        "test F1": _column(runs, "metrics.test/macro_f1").round(3),
        **{f"F1 {lab}": _column(runs, f"metrics.test/f1_{lab}").round(3) for lab in labels},
        "train s": _column(runs, "metrics.train/seconds").round(0),
        "suite": _column(runs, "metrics.suite/overall").round(3),
        "suite pairs": _column(runs, "metrics.suite/pairs_both_right").round(3),
        **{f"suite {rule}": _column(runs, f"metrics.suite/{rule}").round(3) for rule in borders.RULES},
    }).sort_values("best val F1", ascending=False)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    chart = out / f"{cfg.task}_per_class_f1.png"
    shown = table.head(8)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(labels) + 2), 4.5))
    width = 0.8 / max(len(shown), 1)
    for i, (_, row) in enumerate(shown.iterrows()):
        ax.bar(np.arange(len(labels)) + i * width, [row[f"F1 {lab}"] for lab in labels], width, label=row["run"])
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels)
    ax.set_ylabel("test F1")
    ax.set_ylim(0, 1)
    ax.set_title(f"{cfg.task}: per-class test F1 across runs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(chart, dpi=110)
    plt.close(fig)
    page = out / f"{cfg.task}_compare.html"
    page.write_text(f"<!doctype html><meta charset='utf-8'><title>{cfg.task} runs</title>"
                    f"<h1>{cfg.task} runs</h1>{table.to_html(index=False)}<img src='{chart.name}'>",
                    encoding="utf-8")
    return CompareResult(table, chart, page)
