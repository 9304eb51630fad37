"""Compare stage: a table of a task's tracked training runs, per-class F1 bars across runs, and a
side-by-side page of the chosen runs (per-class F1, confusion matrices, learning curves)."""

from __future__ import annotations

import base64
import dataclasses
import html
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from pipeline import borders, tracking
from pipeline.config import TASK_LABELS
from pipeline.errors import PipelineError


@dataclasses.dataclass
class CompareConfig:
    task: str = "stance"
    out: str = "outputs/compare"
    tracking_uri: str = ""
    runs: list[str] = dataclasses.field(default_factory=list)  # run names or ids; default: the best `top`
    top: int = 4


@dataclasses.dataclass
class CompareResult:
    table: pd.DataFrame
    chart: Path | None
    html: Path | None
    side_by_side: Path | None = None


class CompareError(PipelineError, ValueError):
    """The runs asked for are not in the store; the message names them and what to do."""


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs.columns else pd.Series([np.nan] * len(runs), index=runs.index)


def run(cfg: CompareConfig) -> CompareResult:
    runs = tracking.search_runs(cfg.task, cfg.tracking_uri)
    if runs.empty:
        return CompareResult(pd.DataFrame(), None, None)
    runs = runs[runs["status"] == "FINISHED"]
    labels = TASK_LABELS[cfg.task]
    table = pd.DataFrame({
        "run_id": runs["run_id"],
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
    chosen = _chosen(table, cfg)
    side = out / f"{cfg.task}_side_by_side.html"
    side.write_text(_side_by_side(chosen, labels, cfg.task), encoding="utf-8")
    return CompareResult(table, chart, page, side)


def _chosen(table: pd.DataFrame, cfg: CompareConfig) -> pd.DataFrame:
    if not cfg.runs:
        return table.head(cfg.top)
    picked = [table[(table["run"] == name) | (table["run_id"] == name)].head(1) for name in cfg.runs]
    missing = [name for name, rows in zip(cfg.runs, picked, strict=True) if rows.empty]
    if missing:
        raise CompareError(f"no finished {cfg.task} run named or with id {', '.join(map(repr, missing))}; "
                           f"`make compare` lists the runs (names are in the `run` column)")
    return pd.concat(picked)


def _image(path: Path | None) -> str:
    """An artifact image inlined as a data URI, so the page opens offline and can be mailed as one file."""
    if path is None:
        return "<p><em>not logged by this run</em></p>"
    return f"<img src='data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}' width='100%'>"


def _side_by_side(chosen: pd.DataFrame, labels: list[str], task: str) -> str:
    """One column per run: headline metrics, per-class test F1 as bars, confusion matrix, learning curves."""
    names = [html.escape(str(r)) for r in chosen["run"]]
    head = "".join(f"<th>{n}</th>" for n in names)

    def row(title: str, cells: list[str]) -> str:
        return f"<tr><th>{title}</th>{''.join(f'<td>{c}</td>' for c in cells)}</tr>"

    def bars(record: pd.Series) -> str:
        lines = []
        for i, lab in enumerate(labels):
            value = record[f"F1 {lab}"]
            width = 0 if pd.isna(value) else 180 * float(value)
            lines.append(f"<text x='0' y='{16 * i + 12}' font-size='11'>{html.escape(lab)}</text>"
                         f"<rect x='80' y='{16 * i + 2}' width='{width:.1f}' height='12' fill='#4a7fc1'/>"
                         f"<text x='{84 + width:.1f}' y='{16 * i + 12}' font-size='11'>"
                         f"{'n/a' if pd.isna(value) else f'{value:.2f}'}</text>")
        return f"<svg viewBox='0 0 300 {16 * len(labels) + 4}' width='100%'>{''.join(lines)}</svg>"

    with tempfile.TemporaryDirectory() as tmp:
        confusion, curves = [], []
        for i, run_id in enumerate(chosen["run_id"]):
            folder = Path(tmp) / str(i)
            confusion.append(_image(tracking.run_artifact(run_id, "eval/confusion_matrix_test.png", folder)))
            curves.append(_image(tracking.run_artifact(run_id, "eval/learning_curves.png", folder)))
    records = [r for _, r in chosen.iterrows()]
    body = "".join([
        row("model", [html.escape(str(r["model"])) for r in records]),
        row("best val macro-F1", [f"<b>{r['best val F1']}</b>" for r in records]),
        row("test macro-F1", [str(r["test F1"]) for r in records]),
        row("train s", [str(r["train s"]) for r in records]),
        row("boundary suite (docs/labels.md)", [str(r["suite"]) for r in records]),
        row("suite: minimal pairs both right", [str(r["suite pairs"]) for r in records]),
        *(row(f"suite {rule}", [str(r[f"suite {rule}"]) for r in records]) for rule in borders.RULES),
        row("per-class test F1", [bars(r) for r in records]),
        row("confusion matrix (test)", confusion),
        row("learning curves", curves),
    ])
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{task} runs side by side</title>"
            "<style>body{font-family:sans-serif;margin:1em} table{border-collapse:collapse;table-layout:fixed;"
            "width:100%} td,th{border:1px solid #ccc;padding:4px;vertical-align:top;text-align:left}"
            "</style></head><body>"
            f"<h1>{task}: {len(records)} runs side by side</h1><table id='side-by-side'><tr><th></th>{head}</tr>"
            f"{body}</table></body></html>")
