"""Classification metrics (scikit-learn) and the plots logged with every training and evaluation."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)


def expected_calibration_error(probabilities: np.ndarray, y_true: np.ndarray, bins: int = 10) -> float:
    """Mean gap between confidence and accuracy over equal-width confidence bins, weighted by bin size."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    ece = 0.0
    for low, high in itertools.pairwise(edges):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(correct[in_bin].mean() - confidence[in_bin].mean())
    return float(ece)


def compute(y_true: np.ndarray, probabilities: np.ndarray, labels: list[str]) -> dict[str, float]:
    """Headline macro-F1, accuracy, ECE and per-class precision, recall and F1, as flat names."""
    y_pred = probabilities.argmax(1)
    ids = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, y_pred, labels=ids, zero_division=0)
    result = {
        "macro_f1": float(f1_score(y_true, y_pred, labels=ids, average="macro", zero_division=0)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "ece": expected_calibration_error(probabilities, y_true),
    }
    for i, label in enumerate(labels):
        result[f"precision_{label}"] = float(precision[i])
        result[f"recall_{label}"] = float(recall[i])
        result[f"f1_{label}"] = float(f1[i])
        result[f"support_{label}"] = float(support[i])
    return result


def report_text(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str]) -> str:
    return classification_report(y_true, y_pred, labels=list(range(len(labels))), target_names=labels,
                                 digits=3, zero_division=0)


def plot_confusion(y_true: np.ndarray, y_pred: np.ndarray, labels: list[str], path: Path, title: str) -> Path:
    matrix = confusion_matrix(y_true, y_pred, labels=list(range(len(labels))))
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=35, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center",
                    color="white" if matrix[i, j] > matrix.max() / 2 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_curves(history: dict[str, list[tuple[float, float]]], path: Path, title: str, xlabel: str) -> Path:
    """One line per series of (x, value) points: per-epoch losses and F1, or F1 by training size."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, points in history.items():
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker="o", label=name)
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
