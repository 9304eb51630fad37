"""``multitask``: one encoder, a stance head and a sentiment head, fine-tuned jointly with the HF ``Trainer``.

The loss is the stance head's class-weighted cross-entropy plus ``model.multitask_sentiment_weight`` times
the sentiment head's; early stopping and the best checkpoint follow the mean of the two validation
macro-F1s. One encoder pass gives both tasks' probabilities, each head calibrated on its own (a
temperature and an ``uncertain`` threshold per head, in ``meta.json`` under ``heads``).

``heads[task]`` is a single-task view of the model (a ``Classifier`` for that task), so evaluation, the
boundary suite and calibration treat each head like a single-task model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from sklearn.metrics import f1_score

from pipeline import calibration, encoders
from pipeline.config import TASK_LABELS, ModelConfig, TrainingConfig
from pipeline.models.base import (
    Classifier,
    MetricsCallback,
    balanced_class_weights,
    set_seed,
)
from pipeline.models.finetune import (
    ForwardMetrics,
    WeightedTrainer,
    forward_batches,
    layerwise_param_groups,
    run_trainer,
    single_task_metric_names,
    training_arguments,
)

TASKS = tuple(TASK_LABELS)  # ("stance", "sentiment"): the heads, in this order everywhere
OPENVINO = "openvino-int8"  # meta.json's runtime of a model saved by pipeline quantize


class MultiTaskModel(torch.nn.Module):
    """A transformer encoder, mean pooling, and per task a head: dropout, dense, tanh, dropout, linear."""

    def __init__(self, encoder: torch.nn.Module, n_labels: dict[str, int]):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config  # the Trainer and the layer-wise learning rates read it
        hidden = encoder.config.hidden_size
        dropout = getattr(encoder.config, "hidden_dropout_prob", 0.1)
        self.heads = torch.nn.ModuleDict({task: torch.nn.Sequential(
            torch.nn.Dropout(dropout), torch.nn.Linear(hidden, hidden), torch.nn.Tanh(), torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, n)) for task, n in n_labels.items()})

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor | None = None, stance_labels: torch.Tensor | None = None,
                sentiment_labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return {f"{task}_logits": head(pooled) for task, head in self.heads.items()}


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, temperature: float) -> torch.Tensor:
    """Distillation loss: cross-entropy of the student's ``temperature``-softened distribution against the
    teacher's soft labels (computed at the same temperature), times ``temperature**2`` so that its gradients
    keep the scale of a hard-label loss (Hinton et al., 2015)."""
    log_p = torch.log_softmax(logits.float() / temperature, dim=-1)
    return -(targets * log_p).sum(-1).mean() * temperature**2


class MultiTaskTrainer(WeightedTrainer):
    """Per task a class-weighted cross-entropy; the loss is stance + ``sentiment_weight`` * sentiment. Soft
    labels (float rows, when distilling) take ``soft_cross_entropy`` at ``distill_temperature`` instead."""

    def __init__(self, *args, task_class_weights: dict[str, torch.Tensor | None], sentiment_weight: float,
                 distill_temperature: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.task_class_weights = task_class_weights
        self.task_weights = {"stance": 1.0, "sentiment": sentiment_weight}
        self.distill_temperature = distill_temperature

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = {task: inputs.pop(f"{task}_labels") for task in TASKS}
        outputs = model(**inputs)
        loss = sum(self.task_weights[task] * self._task_loss(task, outputs[f"{task}_logits"], labels[task])
                   for task in TASKS)
        return (loss, outputs) if return_outputs else loss

    def _task_loss(self, task: str, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if labels.is_floating_point():  # the teacher's soft labels
            return soft_cross_entropy(logits, labels, self.distill_temperature)
        return torch.nn.functional.cross_entropy(logits.float(), labels, weight=self._weight(task, labels.device))

    def _weight(self, task: str, device: torch.device) -> torch.Tensor | None:
        weight = self.task_class_weights.get(task)
        return None if weight is None else weight.to(device)


def compute_metrics(prediction) -> dict[str, float]:
    """Per task macro-F1 and accuracy, and ``mean_macro_f1`` (what early stopping and selection follow)."""
    result = {}
    for task, logits, y in zip(TASKS, prediction.predictions, prediction.label_ids, strict=True):
        predicted = logits.argmax(-1)
        result[f"{task}_macro_f1"] = float(f1_score(y, predicted, average="macro"))
        result[f"{task}_accuracy"] = float((predicted == y).mean())
    result["mean_macro_f1"] = float(np.mean([result[f"{task}_macro_f1"] for task in TASKS]))
    return result


def metric_names(key: str) -> str | None:
    """``eval_stance_macro_f1`` -> ``stance/val/macro_f1``, ``eval_mean_macro_f1`` -> ``val/mean_macro_f1``."""
    if key.startswith("eval_"):
        for task in TASKS:
            if key.startswith(f"eval_{task}_"):
                return f"{task}/val/{key.removeprefix(f'eval_{task}_')}"
    return single_task_metric_names(key)


class TaskHead(Classifier):
    """One head of a multi-task model seen as a single-task classifier (its own labels and calibration)."""

    family = "multitask"

    def __init__(self, parent: MultiTaskClassifier, task: str, id2label: dict[int, str]):
        super().__init__(task, id2label, parent.model_cfg)
        self.parent = parent

    def raw_proba(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        return self.parent.raw_proba_tasks(texts, batch_size)[self.task]

    def torch_module(self) -> torch.nn.Module | None:
        return self.parent.torch_module()

    def set_fast_path(self, mode: str) -> None:
        self.parent.set_fast_path(mode)

    def save(self, folder: Path) -> None:
        raise TypeError("a head is saved with its multi-task model: save the MultiTaskClassifier")


class MultiTaskClassifier(Classifier):
    family = "multitask"
    model: MultiTaskModel | None = None  # the PyTorch model (None for a model quantised to OpenVINO int8)
    compiled: Any = None  # a pipeline.int8.OpenVinoModel when the model runs in OpenVINO (pipeline quantize)

    def __init__(self, id2labels: dict[str, dict[int, str]], model_cfg: ModelConfig):
        super().__init__("both", {}, model_cfg)
        self.heads = {task: TaskHead(self, task, id2labels[task]) for task in TASKS}

    def _build(self, path: str) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = MultiTaskModel(AutoModel.from_pretrained(path),
                                    {task: len(head.id2label) for task, head in self.heads.items()})

    def fit(self, train_texts: list[str], train_ys: dict[str, np.ndarray], val_texts: list[str],  # type: ignore[override]
            val_ys: dict[str, np.ndarray], training: TrainingConfig,
            on_metrics: MetricsCallback | None = None) -> dict[str, Any]:
        """Trains on label ids (``train_ys[task]`` of shape (n,)) or on a teacher's soft labels (shape
        (n, labels), rows summing to 1): then without class weights, since the teacher's labels carry its
        balance. Validation always uses label ids."""
        from datasets import Dataset
        from transformers import DataCollatorWithPadding, EarlyStoppingCallback

        set_seed(training.seed)
        self._build(encoders.resolve(self.model_cfg.encoder))
        tokenize = lambda batch: self.tokenizer(batch["text"], truncation=True,  # noqa: E731
                                                max_length=self.model_cfg.max_length)

        soft = np.asarray(train_ys["stance"]).ndim == 2

        def dataset(texts: list[str], ys: dict[str, np.ndarray]):
            columns = {"text": texts, **{f"{task}_labels": np.asarray(ys[task]).tolist() for task in TASKS}}
            return Dataset.from_dict(columns).map(tokenize, batched=True, remove_columns=["text"])

        weights = {task: balanced_class_weights(np.asarray(train_ys[task]), len(self.heads[task].id2label))
                   if training.class_weights and not soft else None for task in TASKS}
        optimizer = torch.optim.AdamW(layerwise_param_groups(
            self.model, self.model.config.num_hidden_layers, training.learning_rate, training.layerwise_lr_decay,
            training.weight_decay, self.model_cfg.freeze_layers))
        trainer = MultiTaskTrainer(
            model=self.model, args=training_arguments(training, len(train_texts), "mean_macro_f1",
                                                      [f"{task}_labels" for task in TASKS]),
            train_dataset=dataset(train_texts, train_ys), eval_dataset=dataset(val_texts, val_ys),
            data_collator=DataCollatorWithPadding(self.tokenizer), compute_metrics=compute_metrics,
            optimizers=(optimizer, None), task_class_weights=weights,
            sentiment_weight=self.model_cfg.multitask_sentiment_weight,
            distill_temperature=self.model_cfg.distill_temperature,
            callbacks=[EarlyStoppingCallback(training.early_stopping_patience),
                       ForwardMetrics(on_metrics, metric_names)],
        )
        fit_info = run_trainer(trainer, training)
        self.model = trainer.model.to("cpu")  # prediction and scoring run on the CPU
        self.is_main_process = trainer.is_world_process_zero()
        return fit_info

    def torch_module(self):
        return self.model if self.compiled is None else None

    def raw_proba_tasks(self, texts: Sequence[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Both heads' probabilities before temperature scaling, from one encoder pass per batch."""
        texts = list(texts)
        if self.compiled is not None:
            return self.compiled.raw_proba_tasks(texts, batch_size, self.batch_tokens, self.fixed_shapes)
        out = {task: np.zeros((len(texts), len(head.id2label)), dtype=np.float32) for task, head in self.heads.items()}
        for idx, logits in forward_batches(self.model, self.tokenizer, texts, batch_size, self.model_cfg.max_length,
                                           self.inference_bf16, self.batch_tokens, self.fixed_shapes):
            for task in out:
                out[task][idx] = torch.softmax(logits[f"{task}_logits"][: len(idx)].float(), -1).numpy()
        return out

    def predict_tasks(self, texts: Sequence[str], batch_size: int = 64) -> dict[str, np.ndarray]:
        """Both heads' calibrated probabilities (each scaled by its own temperature)."""
        raw = self.raw_proba_tasks(texts, batch_size)
        return {task: calibration.scale(p, self.heads[task].temperature) for task, p in raw.items()}

    def raw_proba(self, texts, batch_size=64):
        raise TypeError("a multi-task model predicts both tasks: use predict_tasks() or heads[task]")

    def meta(self) -> dict[str, Any]:
        return {"family": self.family, "task": self.task, "encoder": self.model_cfg.encoder,
                "max_length": self.model_cfg.max_length, "runtime": "torch" if self.compiled is None else OPENVINO,
                "heads": {task: {"id2label": head.id2label, "temperature": head.temperature,
                                 "uncertain_threshold": head.uncertain_threshold}
                          for task, head in self.heads.items()}}

    def save(self, folder):
        super().save(folder)
        self.tokenizer.save_pretrained(folder / "encoder")
        if self.compiled is not None:  # the OpenVINO model holds the encoder and both heads
            self.compiled.save(folder / "openvino")
            return
        self.model.encoder.save_pretrained(folder / "encoder")
        save_file({k: v.contiguous() for k, v in self.model.heads.state_dict().items()}, folder / "heads.safetensors")

    @classmethod
    def restore(cls, folder: Path, meta: dict[str, Any]) -> MultiTaskClassifier:
        model_cfg = ModelConfig(family=meta["family"], encoder=meta["encoder"], max_length=meta["max_length"])
        classifier = cls({task: head["id2label"] for task, head in meta["heads"].items()}, model_cfg)
        if meta.get("runtime") == OPENVINO:
            from transformers import AutoTokenizer

            from pipeline import int8

            classifier.tokenizer = AutoTokenizer.from_pretrained(folder / "encoder")
            classifier.compiled = int8.OpenVinoModel.load(folder / "openvino", classifier)
        else:
            classifier._build(str(folder / "encoder"))
            classifier.model.heads.load_state_dict(load_file(folder / "heads.safetensors"))
        for task, head in meta["heads"].items():
            classifier.heads[task].temperature = float(head["temperature"])
            classifier.heads[task].uncertain_threshold = head["uncertain_threshold"]
        return classifier
