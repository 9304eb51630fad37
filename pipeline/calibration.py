"""Confidence calibration: temperature scaling fitted on validation, and the ``uncertain`` threshold.

A classifier's probabilities ``p`` become ``softmax(log p / T)``. For a softmax head this is the textbook
temperature scaling of its logits (log p differs from the logits by a per-row constant); for the
logistic-regression heads it scales their decision values the same way. ``T`` is fitted on the
validation split by minimising the negative log-likelihood; ``T < 1`` sharpens an under-confident
model, ``T > 1`` softens an over-confident one. The argmax (the predicted label) never changes.

The ``uncertain`` threshold is chosen on the same validation predictions for a stated trade-off: the
lowest confidence at which the sentences at or above it reach a target accuracy (0.95 by default).
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax

# Search range of the temperature; a fit that lands on either end says the model is far off, not that T is.
TEMPERATURE_RANGE = (0.02, 50.0)
# Confidences closer than this are one tie: a re-prediction in other batches (other padding) moves a
# confidence by float noise well under it, so the threshold sits in a gap at least this wide and the
# same sentences fall on the same side of it every time.
TIE_TOLERANCE = 1e-5


def _log_probabilities(probabilities: np.ndarray) -> np.ndarray:
    """log p with -inf where p is 0 (a label the head cannot predict stays at 0 after scaling)."""
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(probabilities, dtype=np.float64))


def scale(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` row by row; ``T == 1`` returns the probabilities unchanged (as float64)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if temperature == 1.0 or len(probabilities) == 0:
        return probabilities
    return np.exp(log_softmax(_log_probabilities(probabilities) / temperature, axis=1))


def negative_log_likelihood(probabilities: np.ndarray, y_true: np.ndarray, temperature: float) -> float:
    """Mean NLL of the true labels under the scaled probabilities, over rows where the label is possible."""
    log_p = _log_probabilities(probabilities)
    rows = np.arange(len(y_true))
    # A true label the head gives probability 0 costs infinity at every T: it cannot move the optimum.
    usable = np.isfinite(log_p[rows, y_true])
    scaled = log_softmax(log_p[usable] / temperature, axis=1)
    return float(-scaled[np.arange(usable.sum()), np.asarray(y_true)[usable]].mean())


def fit_temperature(probabilities: np.ndarray, y_true: np.ndarray) -> float:
    """The temperature minimising the validation NLL (a bounded search over log T)."""
    y_true = np.asarray(y_true)
    if len(y_true) == 0:
        raise ValueError("fitting a temperature needs at least one validation prediction")
    low, high = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    found = minimize_scalar(lambda log_t: negative_log_likelihood(probabilities, y_true, float(np.exp(log_t))),
                            bounds=(low, high), method="bounded", options={"xatol": 1e-4})
    return float(np.exp(found.x))


@dataclasses.dataclass
class Threshold:
    """The chosen ``uncertain`` threshold with what it keeps on the predictions it was chosen on."""

    threshold: float  # confidence below this is reported as uncertain
    coverage: float  # share of sentences at or above it
    covered_accuracy: float  # accuracy of those sentences (nan when none)
    reached: bool  # whether any confidence reached the target accuracy


def coverage_at(probabilities: np.ndarray, y_true: np.ndarray, threshold: float) -> tuple[float, float]:
    """Share of rows with confidence >= ``threshold`` and their accuracy (nan when there are none)."""
    confidence = probabilities.max(1)
    kept = confidence >= threshold
    correct = probabilities.argmax(1) == np.asarray(y_true)
    return float(kept.mean()), float(correct[kept].mean()) if kept.any() else float("nan")


def choose_threshold(probabilities: np.ndarray, y_true: np.ndarray, target_accuracy: float) -> Threshold:
    """The lowest confidence at which the accuracy of the rows at or above it is at least the target.

    Most coverage for the target accuracy. When no confidence reaches the target, the threshold is 1.0
    (every sentence below certainty is uncertain) and ``reached`` is False, so the run says so.
    """
    confidence = probabilities.max(1)
    correct = (probabilities.argmax(1) == np.asarray(y_true)).astype(np.float64)
    order = np.argsort(-confidence, kind="stable")
    confidence, correct = confidence[order], correct[order]
    # Accuracy of the top-k rows, for every k; ties in confidence (within TIE_TOLERANCE) go in or out together.
    accuracy = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    last_of_tie = np.r_[confidence[:-1] - confidence[1:] > TIE_TOLERANCE, True]
    meets = np.flatnonzero(last_of_tie & (accuracy >= target_accuracy))
    if len(meets) == 0:
        return Threshold(1.0, *coverage_at(probabilities, y_true, 1.0), reached=False)
    # Half the tolerance below the lowest kept confidence: the nearest left-out one is at least as far below.
    threshold = float(confidence[meets[-1]]) - TIE_TOLERANCE / 2
    return Threshold(threshold, *coverage_at(probabilities, y_true, threshold), reached=True)


def reliability_bins(probabilities: np.ndarray, y_true: np.ndarray, bins: int = 10
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width confidence bin: mean confidence, accuracy and count (nan where a bin is empty)."""
    confidence = probabilities.max(1)
    correct = probabilities.argmax(1) == np.asarray(y_true)
    mean_conf, accuracy, counts = np.full(bins, np.nan), np.full(bins, np.nan), np.zeros(bins)
    for i, (low, high) in enumerate(itertools.pairwise(np.linspace(0.0, 1.0, bins + 1))):
        in_bin = (confidence > low) & (confidence <= high)
        counts[i] = in_bin.sum()
        if in_bin.any():
            mean_conf[i], accuracy[i] = confidence[in_bin].mean(), correct[in_bin].mean()
    return mean_conf, accuracy, counts


def plot_reliability(panels: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]], path: Path, title: str,
                     temperature: float) -> Path:
    """One panel per split: accuracy against confidence before and after scaling, with the diagonal.

    ``panels`` maps a split name to (uncalibrated probabilities, calibrated probabilities, true labels).
    """
    # Here, not at the top: scoring and serving import this module and draw nothing.
    import matplotlib.pyplot as plt

    from pipeline.metrics import expected_calibration_error  # its import selects the Agg backend
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4.6), squeeze=False)
    for ax, (split, (before, after, y_true)) in zip(axes[0], panels.items(), strict=True):
        ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
        for name, probabilities, color in (("before", before, "tab:red"), (f"after (T={temperature:.3g})", after,
                                                                             "tab:blue")):
            conf, acc, counts = reliability_bins(probabilities, y_true)
            shown = counts > 0
            ece = expected_calibration_error(probabilities, y_true)
            ax.plot(conf[shown], acc[shown], marker="o", color=color, label=f"{name}: ECE {ece:.3f}")
            ax.scatter(conf[shown], acc[shown], s=8 + 200 * counts[shown] / counts.sum(), color=color, alpha=0.3)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("confidence (mean per bin)")
        ax.set_ylabel("accuracy")
        ax.set_title(f"{split} ({len(y_true)} sentences)")
        ax.grid(alpha=0.3)
        ax.legend(loc="upper left", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
