"""What every model family shares: the ``Classifier`` interface and the small helpers around it.

A saved model is a folder with ``meta.json`` (family, task, ``id2label``, encoder, max_length, and the
temperature and ``uncertain`` threshold fitted on validation: see ``calibration``) and the family's
weights; ``pipeline.models.load_classifier(folder)`` restores any of them for scoring, calibrated.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.class_weight import compute_class_weight

from pipeline import calibration
from pipeline.config import ModelConfig, TrainingConfig

MetricsCallback = Callable[[dict[str, float], int], None]
PACKAGED_ENCODERS = ("minilm", "mpnet")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(enabled: bool):
    """bf16 autocast on CPU where the processor supports it; a no-op context otherwise."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else nullcontext()


def length_sorted_batches(texts: Sequence[str], batch_size: int) -> list[list[int]]:
    """Index batches of similar length: less padding, same results in the original order."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def full_probabilities(probabilities: np.ndarray, classes: np.ndarray, n_labels: int) -> np.ndarray:
    """Columns for every label id, also for labels absent from a (small) training set: those get 0."""
    out = np.zeros((len(probabilities), n_labels), dtype=np.float64)
    out[:, classes] = probabilities
    return out


def balanced_class_weights(y: np.ndarray, n_labels: int) -> torch.Tensor:
    """Loss weights inversely proportional to label frequency; labels absent from ``y`` get 1."""
    present = np.unique(y)
    full = np.ones(n_labels)
    full[present] = compute_class_weight("balanced", classes=present, y=np.asarray(y))
    return torch.tensor(full, dtype=torch.float32)


class Classifier:
    family = ""
    inference_bf16 = True  # bf16 autocast at prediction time; set_fast_path changes it
    temperature = 1.0  # fitted on validation after training (1.0: models saved before calibration)
    uncertain_threshold: float | None = None  # chosen on validation; None: models saved before calibration

    def __init__(self, task: str, id2label: dict[int, str], model_cfg: ModelConfig):
        self.task = task
        self.id2label = {int(k): v for k, v in id2label.items()}
        self.model_cfg = model_cfg

    @property
    def labels(self) -> list[str]:
        return [self.id2label[i] for i in range(len(self.id2label))]

    def meta(self) -> dict[str, Any]:
        return {"family": self.family, "task": self.task, "id2label": self.id2label,
                "encoder": self.model_cfg.encoder, "max_length": self.model_cfg.max_length,
                "temperature": self.temperature, "uncertain_threshold": self.uncertain_threshold}

    def fit(self, train_texts: list[str], train_y: np.ndarray, val_texts: list[str], val_y: np.ndarray,
            training: TrainingConfig, on_metrics: MetricsCallback | None = None) -> dict[str, Any]:
        raise NotImplementedError

    def torch_module(self) -> torch.nn.Module | None:
        """The transformer that runs at prediction time, if the family has one."""
        return None

    def set_fast_path(self, mode: str) -> None:
        """``none`` (fp32), ``bf16`` (autocast) or ``int8`` (dynamic quantisation of Linear layers)."""
        if mode not in ("none", "bf16", "int8"):
            raise ValueError(f"fast path {mode!r} is not one of none, bf16, int8")
        self.inference_bf16 = mode == "bf16"
        module = self.torch_module()
        if mode == "int8" and module is not None:
            torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)

    def raw_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """The family's own probabilities, before temperature scaling."""
        raise NotImplementedError

    def predict_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Calibrated probabilities: the family's, scaled by the temperature fitted on validation."""
        return calibration.scale(self.raw_proba(texts, batch_size), self.temperature)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "meta.json").write_text(json.dumps(self.meta(), indent=2))

    def _load(self, folder: Path) -> None:
        raise NotImplementedError

    @classmethod
    def restore(cls, folder: Path, meta: dict[str, Any]) -> Classifier:
        """The classifier saved in ``folder``, whose ``meta.json`` holds ``meta``."""
        model_cfg = ModelConfig(family=meta["family"], encoder=meta["encoder"], max_length=meta["max_length"])
        classifier = cls(meta["task"], meta["id2label"], model_cfg)
        classifier._load(folder)
        classifier.temperature = float(meta.get("temperature", 1.0))
        classifier.uncertain_threshold = meta.get("uncertain_threshold")
        return classifier


