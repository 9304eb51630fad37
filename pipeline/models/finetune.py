"""``finetune``: full fine-tuning of ``AutoModelForSequenceClassification`` with the HF ``Trainer``.

The Trainer pieces here (the class-weighted ``WeightedTrainer``, the ``ForwardMetrics`` callback, the
layer-wise learning rates and the training arguments) are shared with the ``multitask`` family.
"""

from __future__ import annotations

import math
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import f1_score
from transformers import Trainer, TrainerCallback, TrainingArguments

from pipeline import encoders
from pipeline.config import TrainingConfig
from pipeline.models.base import (
    Classifier,
    MetricsCallback,
    autocast,
    balanced_class_weights,
    fixed_shape_batches,
    set_seed,
    token_budget_batches,
)


def layerwise_param_groups(model: torch.nn.Module, n_layers: int, lr: float, decay: float, weight_decay: float,
                           freeze_layers: int) -> list[dict[str, Any]]:
    """Lower layers learn more slowly (lr * decay**depth); the lowest ``freeze_layers`` do not learn."""
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if ".layer." in name:
            layer = int(name.split(".layer.")[1].split(".")[0])
            depth = n_layers - layer
        elif "embeddings" in name:
            layer, depth = -1, n_layers + 1
        else:  # pooler, classifier head(s), relative attention bias
            layer, depth = n_layers, 0
        if layer < freeze_layers:
            param.requires_grad = False
            continue
        no_decay = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
        key = (lr * decay**depth, 0.0 if no_decay else weight_decay)
        groups.setdefault(key, []).append(param)
    return [{"params": params, "lr": g_lr, "weight_decay": wd} for (g_lr, wd), params in groups.items()]


def training_arguments(training: TrainingConfig, n_train: int, metric_for_best_model: str,
                       label_names: list[str] | None = None) -> TrainingArguments:
    """The Trainer's arguments from the config: evaluation (and a checkpoint) ``evals_per_epoch`` times per
    epoch, the best checkpoint by ``metric_for_best_model`` loaded at the end."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    steps_per_epoch = max(1, math.ceil(n_train / (training.batch_size * world)))
    eval_steps = max(1, steps_per_epoch // max(1, training.evals_per_epoch))
    return TrainingArguments(
        output_dir=training.output_dir, num_train_epochs=training.epochs,
        per_device_train_batch_size=training.batch_size, per_device_eval_batch_size=training.eval_batch_size,
        learning_rate=training.learning_rate, weight_decay=training.weight_decay,
        warmup_steps=int(training.warmup_ratio * steps_per_epoch * training.epochs),
        lr_scheduler_type="linear", eval_strategy="steps", eval_steps=eval_steps,
        save_strategy="steps", save_steps=eval_steps, save_total_limit=1,
        load_best_model_at_end=True, metric_for_best_model=metric_for_best_model, greater_is_better=True,
        logging_steps=max(1, eval_steps // 2), report_to=[], seed=training.seed, use_cpu=training.use_cpu,
        bf16=training.bf16, dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if training.group_by_length else "random",
        ddp_backend="gloo" if world > 1 and training.use_cpu else None, disable_tqdm=False,
        label_names=label_names,
    )


def remove_new_checkpoints(output_dir: str, since: float) -> None:
    """Deletes the checkpoint-* folders written after ``since`` (a time.time() stamp): the best one is
    loaded by then, and what they hold (weights plus optimizer state) is not needed again."""
    for checkpoint in Path(output_dir).glob("checkpoint-*"):
        if checkpoint.is_dir() and checkpoint.stat().st_mtime >= since:
            shutil.rmtree(checkpoint)


def run_trainer(trainer: Trainer, training: TrainingConfig) -> dict[str, Any]:
    """Trains (resuming from a checkpoint when asked), deletes this run's checkpoints unless they are to be
    kept, and returns what the fit reports: the best validation score, its checkpoint and the steps run."""
    started = time.time()
    trainer.train(resume_from_checkpoint=training.resume_from_checkpoint or None)
    if not training.keep_checkpoints and trainer.is_world_process_zero():
        remove_new_checkpoints(training.output_dir, started)
    return {"best_val_macro_f1": trainer.state.best_metric, "best_checkpoint": trainer.state.best_model_checkpoint,
            "global_step": trainer.state.global_step}


def forward_batches(model: torch.nn.Module, tokenizer, texts: list[str], batch_size: int, max_length: int,
                    bf16: bool, batch_tokens: int = 0, fixed_shapes: bool = False) -> Iterator[tuple[list[int], Any]]:
    """The model's outputs for batches of ``texts`` of similar token length (eval mode, no gradients), with
    each batch's row numbers in ``texts`` (batches as ``padded_batches`` cuts them; the outputs' first
    ``len(rows)`` rows are theirs)."""
    model.eval()
    with torch.inference_mode(), autocast(bf16):
        for idx, batch in padded_batches(tokenizer, texts, batch_size, max_length, batch_tokens, fixed_shapes):
            yield idx, model(**batch)


def padded_batches(tokenizer, texts: list[str], batch_size: int, max_length: int, batch_tokens: int = 0,
                   fixed_shapes: bool = False) -> Iterator[tuple[list[int], dict[str, torch.Tensor]]]:
    """``texts`` tokenized once, sorted by length and cut into batches of at most ``batch_size`` sentences
    and, when ``batch_tokens`` > 0, at most that many padded tokens: each batch's row numbers in ``texts``
    and its right-padded tensors. With ``fixed_shapes`` (and a token budget) every batch has one of a fixed
    set of shapes (``fixed_shape_batches``): its tensors can have more rows than it has sentences, filled
    up with copies of its first sentence, whose outputs are to be dropped."""
    encoded = tokenizer(texts, truncation=True, max_length=max_length)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    if fixed_shapes and batch_tokens > 0:
        for idx, rows, width in fixed_shape_batches(lengths, batch_size, batch_tokens, max_length):
            yield idx, pad_batch(encoded, idx + idx[:1] * (rows - len(idx)), tokenizer.pad_token_id, width)
        return
    for idx in token_budget_batches(lengths, batch_size, batch_tokens):
        yield idx, pad_batch(encoded, idx, tokenizer.pad_token_id, max(lengths[i] for i in idx))


def pad_batch(encoded, idx: list[int], pad_token_id: int, width: int) -> dict[str, torch.Tensor]:
    """Rows ``idx`` of an unpadded tokenizer output as right-padded tensors, ``width`` tokens wide."""
    batch = {}
    for key in encoded:
        fill = pad_token_id if key == "input_ids" else 0
        tensor = torch.full((len(idx), width), fill, dtype=torch.long)
        for row, i in enumerate(idx):
            values = encoded[key][i]
            tensor[row, : len(values)] = torch.tensor(values, dtype=torch.long)
        batch[key] = tensor
    return batch


def single_task_metric_names(key: str) -> str | None:
    """Trainer log keys as tracked metric names: ``eval_macro_f1`` -> ``val/macro_f1``, ``loss`` -> ``train/loss``."""
    if key.startswith("eval_"):
        return f"val/{key[5:]}"
    if key in ("loss", "learning_rate", "grad_norm"):
        return f"train/{key}"
    return None


class ForwardMetrics(TrainerCallback):
    """Passes the Trainer's logs (renamed by ``rename``; None drops a key) and the epoch to ``on_metrics``."""

    def __init__(self, on_metrics: MetricsCallback | None,
                 rename: Callable[[str], str | None] = single_task_metric_names):
        self.on_metrics = on_metrics
        self.rename = rename

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.on_metrics and logs and state.is_world_process_zero:
            renamed = {}
            for key, value in logs.items():
                name = self.rename(key)
                if name is not None:
                    renamed[name] = value
            renamed["epoch"] = logs.get("epoch", state.epoch or 0.0)
            self.on_metrics({k: float(v) for k, v in renamed.items() if isinstance(v, int | float)},
                            state.global_step)


class WeightedTrainer(Trainer):
    """Cross-entropy with per-label weights (``class_weights``; None: unweighted) on the logits' float32."""

    def __init__(self, *args, class_weights: torch.Tensor | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.class_weights = class_weights

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        loss = torch.nn.functional.cross_entropy(outputs.logits.float(), labels, weight=self.class_weights)
        return (loss, outputs) if return_outputs else loss


def compute_metrics(prediction) -> dict[str, float]:
    predicted = prediction.predictions.argmax(-1)
    return {"macro_f1": f1_score(prediction.label_ids, predicted, average="macro"),
            "accuracy": float((predicted == prediction.label_ids).mean())}


class FinetuneClassifier(Classifier):
    family = "finetune"

    def _load_pretrained(self, path: str) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=len(self.id2label), id2label=self.id2label,
            label2id={v: k for k, v in self.id2label.items()})

    def fit(self, train_texts, train_y, val_texts, val_y, training, on_metrics=None):
        from datasets import Dataset
        from transformers import DataCollatorWithPadding, EarlyStoppingCallback

        set_seed(training.seed)
        self._load_pretrained(encoders.resolve(self.model_cfg.encoder))
        tokenize = lambda batch: self.tokenizer(batch["text"], truncation=True,  # noqa: E731
                                                max_length=self.model_cfg.max_length)
        train_ds = Dataset.from_dict({"text": train_texts, "labels": list(map(int, train_y))}).map(
            tokenize, batched=True, remove_columns=["text"])
        val_ds = Dataset.from_dict({"text": val_texts, "labels": list(map(int, val_y))}).map(
            tokenize, batched=True, remove_columns=["text"])
        weights = balanced_class_weights(np.asarray(train_y), len(self.id2label)) if training.class_weights else None
        optimizer = torch.optim.AdamW(layerwise_param_groups(
            self.model, self.model.config.num_hidden_layers, training.learning_rate, training.layerwise_lr_decay,
            training.weight_decay, self.model_cfg.freeze_layers))
        trainer = WeightedTrainer(
            model=self.model, args=training_arguments(training, len(train_texts), "macro_f1"),
            train_dataset=train_ds, eval_dataset=val_ds, data_collator=DataCollatorWithPadding(self.tokenizer),
            compute_metrics=compute_metrics, optimizers=(optimizer, None), class_weights=weights,
            callbacks=[EarlyStoppingCallback(training.early_stopping_patience), ForwardMetrics(on_metrics)],
        )
        fit_info = run_trainer(trainer, training)
        self.model = trainer.model.to("cpu")  # prediction and scoring run on the CPU
        self.is_main_process = trainer.is_world_process_zero()
        return fit_info

    def torch_module(self):
        return self.model

    def raw_proba(self, texts, batch_size=64):
        texts = list(texts)
        out = np.zeros((len(texts), len(self.id2label)), dtype=np.float32)
        for idx, outputs in forward_batches(self.model, self.tokenizer, texts, batch_size, self.model_cfg.max_length,
                                            self.inference_bf16, self.batch_tokens, self.fixed_shapes):
            out[idx] = torch.softmax(outputs.logits[: len(idx)].float(), -1).numpy()
        return out

    def save(self, folder):
        super().save(folder)
        self.model.save_pretrained(folder / "hf_model")
        self.tokenizer.save_pretrained(folder / "hf_model")

    def _load(self, folder: Path) -> None:
        self._load_pretrained(str(folder / "hf_model"))
