"""Int8 for the multi-task model with OpenVINO and NNCF, measured by ``python -m pipeline bench int8``.

``convert`` turns the PyTorch model into an OpenVINO model once. ``quantize`` runs NNCF's post-training
quantisation on it: the Linear layers get int8 weights (per output channel, symmetric) and int8 activations
(ranges calibrated on training sentences, SmoothQuant for the transformer's activation outliers). Whatever
stays unquantised, including the layers named in ``keep``, runs in bf16: OpenVINO's inference precision on
a CPU with AMX. ``OpenVinoModel`` predicts both tasks the way the scoring path does (token-budget batches).

``pipeline quantize`` (``pipeline.quantize``) saves a quantised model as ``news-classifier-int8``; a multi-task
model saved that way runs through ``OpenVinoModel`` (``MultiTaskClassifier.compiled``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from pipeline.config import FEED_FORWARD_OUTPUTS, TASK_LABELS
from pipeline.models.finetune import padded_batches

if TYPE_CHECKING:
    from pipeline.models.multitask import MultiTaskClassifier

__all__ = ["FEED_FORWARD_OUTPUTS", "OpenVinoModel", "batches", "convert", "quantize"]
INPUTS = ("input_ids", "attention_mask")
TASKS = tuple(TASK_LABELS)  # the order of the converted model's outputs


class _TaskLogits(torch.nn.Module):
    """The multi-task model with one tensor output per task, in ``TASKS`` order (conversion needs tensors)."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask)
        return tuple(outputs[f"{task}_logits"] for task in TASKS)


def convert(classifier: MultiTaskClassifier) -> Any:
    """The classifier's model as an ``openvino.Model`` with dynamic batch and length; needs fp32 weights."""
    import openvino as ov

    module = classifier.torch_module().eval()
    if any(p.dtype != torch.float32 for p in module.parameters()):
        raise ValueError("convert needs the model's fp32 weights, but a fast path has cast them: load it again")
    example = classifier.tokenizer(["A first example.", "And a second, longer example sentence."],
                                   padding=True, return_tensors="pt")
    with torch.no_grad():
        return ov.convert_model(_TaskLogits(module), example_input=tuple(example[k] for k in INPUTS),
                                input=[(k, ov.PartialShape([-1, -1]), ov.Type.i64) for k in INPUTS])


def batches(classifier: MultiTaskClassifier, texts: Sequence[str], batch_size: int, batch_tokens: int,
            fixed_shapes: bool = False) -> Iterator[tuple[list[int], dict[str, np.ndarray]]]:
    """The scoring path's batches (sorted by length, cut by sentences and padded tokens) as model inputs."""
    for idx, padded in padded_batches(classifier.tokenizer, list(texts), batch_size,
                                      classifier.model_cfg.max_length, batch_tokens, fixed_shapes):
        yield idx, {k: padded[k].numpy() for k in INPUTS}


def quantize(model: Any, classifier: MultiTaskClassifier, calibration_texts: Sequence[str],
             keep: Sequence[str] = (), batch_tokens: int = 4096) -> Any:
    """``model`` (from ``convert``) with int8 Linear layers, calibrated on ``calibration_texts``; the
    layers whose names match a regular expression in ``keep`` stay in bf16."""
    import nncf

    if not calibration_texts:
        raise ValueError("quantize needs calibration sentences: pass some training-split sentences")
    inputs = [batch for _, batch in batches(classifier, calibration_texts, 128, batch_tokens)]
    ignored = nncf.IgnoredScope(patterns=list(keep)) if keep else None
    return nncf.quantize(model, nncf.Dataset(inputs), model_type=nncf.ModelType.TRANSFORMER,
                         subset_size=len(inputs), ignored_scope=ignored)


class OpenVinoModel:
    """An OpenVINO model of a multi-task classifier, compiled for this CPU; predicts both tasks."""

    def __init__(self, model: Any, classifier: MultiTaskClassifier, precision: str = "bf16"):
        import openvino as ov

        self.model = model
        self.classifier = classifier
        self.compiled = ov.Core().compile_model(model, "CPU", {
            "INFERENCE_PRECISION_HINT": precision, "INFERENCE_NUM_THREADS": torch.get_num_threads(),
            "PERFORMANCE_HINT": "LATENCY"})
        self.request = self.compiled.create_infer_request()

    def raw_proba_tasks(self, texts: Sequence[str], batch_size: int = 128, batch_tokens: int = 4096,
                        fixed_shapes: bool = False) -> dict[str, np.ndarray]:
        """Both heads' probabilities before temperature scaling (rows in the order of ``texts``)."""
        out = {task: np.zeros((len(texts), len(self.classifier.heads[task].id2label)), dtype=np.float32)
               for task in TASKS}
        for idx, inputs in batches(self.classifier, texts, batch_size, batch_tokens, fixed_shapes):
            logits = self.request.infer(inputs)
            for i, task in enumerate(TASKS):
                out[task][idx] = torch.softmax(torch.from_numpy(np.asarray(logits[i][: len(idx)], dtype=np.float32)),
                                               -1).numpy()
        return out

    def save(self, folder: Path) -> None:
        """``model.xml`` and ``model.bin`` in ``folder``; weights kept as they are (no fp16 compression)."""
        import openvino as ov

        folder.mkdir(parents=True, exist_ok=True)
        ov.save_model(self.model, folder / "model.xml", compress_to_fp16=False)

    @classmethod
    def load(cls, folder: Path, classifier: MultiTaskClassifier) -> OpenVinoModel:
        import openvino as ov

        return cls(ov.Core().read_model(folder / "model.xml"), classifier)

    def int8_matmuls(self) -> int:
        """How many of the compiled model's matrix multiplications run in int8 (u8 or i8) on this CPU."""
        count = 0
        for op in self.compiled.get_runtime_model().get_ops():
            info = op.get_rt_info()
            kind = info["layerType"].astype(str) if "layerType" in info else ""
            precision = info["runtimePrecision"].astype(str) if "runtimePrecision" in info else ""
            count += ("FullyConnected" in kind or "MatMul" in kind) and precision.lower() in ("u8", "i8")
        return count
