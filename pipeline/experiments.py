"""Experiment results: mean and spread over seeds, read from the per-seed result files."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd


def summarize(results: Path, name: str | None = None) -> pd.DataFrame:
    rows = []
    for path in sorted(results.glob(f"{name or '*'}-seed*.json")):
        data = json.loads(path.read_text())
        rows.append({"experiment": path.stem.rsplit("-seed", 1)[0], "seed": data["seed"],
                     "val": data["best val macro-F1"], "test": data["test macro-F1"], "train_s": data["train s"]})
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    grouped = frame.groupby("experiment")
    table = pd.DataFrame({
        "seeds": grouped.size(),
        "val macro-F1 (mean ± sd)": grouped["val"].mean().round(3).astype(str) + " ± "
        + grouped["val"].std(ddof=0).round(3).astype(str),
        "test macro-F1 (mean ± sd)": grouped["test"].mean().round(3).astype(str) + " ± "
        + grouped["test"].std(ddof=0).round(3).astype(str),
        "train s (mean)": grouped["train_s"].mean().round(0),
    }).reset_index()
    return table.sort_values("experiment")
