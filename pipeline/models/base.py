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
# How prediction runs (docs in Classifier.set_fast_path); score.yaml's fast_path picks one.
FAST_PATHS = ("none", "autocast", "bf16", "fused", "int8")


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def autocast(enabled: bool):
    """bf16 autocast on CPU where the processor supports it; a no-op context otherwise."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if enabled else nullcontext()


def fixed_width(length: int) -> int:
    """The padded width of a batch whose longest sentence has ``length`` tokens, from a fixed set: multiples of
    4 up to 64 tokens, of 8 up to 128, then of 32 and of 64 (24 widths up to 128 tokens)."""
    step = 4 if length <= 64 else 8 if length <= 128 else 32 if length <= 256 else 64
    return -(-length // step) * step


def token_budget_batches(lengths: Sequence[int], max_sentences: int, max_tokens: int = 0) -> list[list[int]]:
    """Index batches of similar token length, cut at ``max_sentences`` sentences or, when ``max_tokens`` > 0,
    before the padded batch (sentences x the longest length) would exceed ``max_tokens``: short sentences go
    in large batches and long ones in small batches, so every forward pass does about the same work."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:  # ascending, so the sentence being added is the batch's longest
        full = len(current) >= max_sentences or (max_tokens > 0 and (len(current) + 1) * lengths[i] > max_tokens)
        if current and full:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def fixed_shape_batches(lengths: Sequence[int], max_sentences: int, max_tokens: int,
                        max_width: int) -> list[tuple[list[int], int, int]]:
    """Index batches, each with the (rows, width) shape it is padded to, every shape from a fixed set: per
    width of ``fixed_width`` (at most ``max_width``), as many rows as ``max_tokens`` allows (at most
    ``max_sentences``). A batch with fewer sentences than its rows is filled up with copies of one of them.

    Why: the CPU libraries keep memory for every batch shape they meet (oneDNN's kernel cache, the
    allocator's buffers: about 6 MB per new shape on MPNet), so batches cut freely, whose row counts
    vary, make memory grow with the input; a few dozen shapes keep it flat. The batches are chosen
    over the length-sorted sentences to pad the fewest tokens in all (dynamic programming)."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    if not order:
        return []
    if lengths[order[-1]] > max_width:
        raise ValueError(f"a sentence of {lengths[order[-1]]} tokens is wider than max_width {max_width}: truncate it")
    widths = sorted({min(fixed_width(n), max_width) for n in range(1, max_width + 1)})
    shapes = [(min(max_sentences, max(1, max_tokens // width)), width) for width in widths]
    # padded[i]: fewest padded tokens that cover the i shortest sentences. It never falls as i grows, so each
    # shape takes as many sentences as it holds.
    padded = [0] + [float("inf")] * len(order)
    chosen: list[tuple[int, int]] = [(0, 0)] * (len(order) + 1)
    for i in range(1, len(order) + 1):
        longest = lengths[order[i - 1]]
        for rows, width in shapes:
            cost = padded[max(0, i - rows)] + rows * width
            if width >= longest and cost < padded[i]:
                padded[i], chosen[i] = cost, (rows, width)
    batches = []
    end = len(order)
    while end:
        rows, width = chosen[end]
        start = max(0, end - rows)
        batches.append((order[start:end], rows, width))
        end = start
    return batches[::-1]


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


class FusedLinear(torch.nn.Module):
    """A Linear layer run by oneDNN with its bias, and optionally the exact GELU after it, fused into the
    matrix multiplication (``torch.ops.mkldnn._linear_pointwise``, the kernel inductor uses on CPU).
    ``nn.Linear`` on bf16 first copies the bias into the output (a pass over it) and GELU is one more pass
    over the feed-forward activations; measured on 2 cores at 4,000 tokens, the 768 -> 3,072 layer with
    its GELU took 50 ms as ``nn.Linear`` + GELU and 43 ms fused."""

    def __init__(self, linear: torch.nn.Linear, activation: str = "none"):
        super().__init__()
        self.weight, self.bias = linear.weight, linear.bias
        self.activation = activation  # "none" or "gelu" (exact, erf)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        algorithm = "none" if self.activation == "gelu" else ""
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, self.activation, [], algorithm)


def fuse_linears(module: torch.nn.Module) -> None:
    """Replaces every Linear layer of ``module`` by a ``FusedLinear``; the exact GELU of a feed-forward input
    layer (a block with ``dense`` and ``intermediate_act_fn``, as in BERT and MPNet) moves into it."""
    from transformers.activations import GELUActivation

    for block in list(module.modules()):
        activation = getattr(block, "intermediate_act_fn", None)
        if (isinstance(getattr(block, "dense", None), torch.nn.Linear) and isinstance(activation, GELUActivation)
                and activation.act is torch.nn.functional.gelu):
            block.dense, block.intermediate_act_fn = FusedLinear(block.dense, "gelu"), torch.nn.Identity()
    for block in list(module.modules()):
        for name, child in list(block.named_children()):
            if isinstance(child, torch.nn.Linear):
                setattr(block, name, FusedLinear(child))


class Classifier:
    family = ""
    inference_bf16 = True  # bf16 autocast at prediction time (fast path "autocast", the default until one is set)
    batch_tokens = 0  # > 0: prediction batches cut by padded tokens as well as by sentences (token_budget_batches)
    fixed_shapes = False  # with batch_tokens: batches of a fixed set of shapes (fixed_shape_batches)
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
        """How prediction runs: ``none`` (fp32), ``autocast`` (fp32 weights under bf16 autocast, which casts
        every weight on every call), ``bf16`` (the weights cast to bf16 once), ``fused`` (bf16 weights, and
        every Linear layer run by oneDNN with its bias and GELU fused: ``FusedLinear``) or ``int8`` (dynamic
        quantisation of the Linear layers). ``bf16``, ``fused`` and ``int8`` change the model in place: load
        it again to go back to fp32."""
        if mode not in FAST_PATHS:
            raise ValueError(f"fast path {mode!r} is not one of {', '.join(FAST_PATHS)}")
        module = self.torch_module()
        if module is not None and mode in ("none", "autocast") and self._weights_cast():
            raise ValueError(f"fast path {mode!r} needs fp32 weights, but this model's were cast by an earlier "
                             "fast path: load the model again")
        self.inference_bf16 = mode == "autocast"
        if module is None:
            return
        if mode in ("bf16", "fused"):
            module.to(torch.bfloat16)
        if mode == "fused":
            fuse_linears(module)
        elif mode == "int8":
            torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)

    def set_prediction(self, fast_path: str, batch_tokens: int, fixed_shapes: bool) -> None:
        """How prediction runs, as ``pipeline score`` sets it: the fast path (``set_fast_path``) and the batching
        (a token budget per batch, batches of a fixed set of shapes)."""
        self.set_fast_path(fast_path)
        self.batch_tokens, self.fixed_shapes = batch_tokens, fixed_shapes

    def _weights_cast(self) -> bool:
        module = self.torch_module()
        return any(p.dtype != torch.float32 for p in module.parameters()) or any(
            "quantized" in type(m).__module__ or isinstance(m, FusedLinear) for m in module.modules())

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


