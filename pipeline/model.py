"""Model families behind one interface: ``fit``, ``predict_proba``, ``save`` and ``load_classifier``.

- ``tfidf``: word and character n-gram TF-IDF + LogisticRegression (class_weight balanced).
- ``frozen``: mean-pooled sentence embeddings of a frozen encoder + LogisticRegression.
- ``setfit``: the SetFit method: contrastive fine-tuning of the encoder on sentence pairs, then the head.
- ``finetune``: full fine-tuning of ``AutoModelForSequenceClassification`` with the HF ``Trainer``.

A saved model is a folder with ``meta.json`` (family, task, ``id2label``, encoder, max_length, and the
temperature and ``uncertain`` threshold fitted on validation: see ``calibration``) and the family's
weights; ``load_classifier(folder)`` restores any of them for scoring, calibrated.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.utils.class_weight import compute_class_weight

from pipeline import calibration, encoders
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


# ---------------------------------------------------------------- tf-idf baseline


class TfidfClassifier(Classifier):
    family = "tfidf"

    def fit(self, train_texts, train_y, val_texts, val_y, training, on_metrics=None):
        features = FeatureUnion([
            ("word", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True,
                                     max_features=self.model_cfg.tfidf_max_features)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True,
                                     max_features=self.model_cfg.tfidf_max_features)),
        ])
        head = LogisticRegression(C=self.model_cfg.tfidf_C, max_iter=2000,
                                  class_weight="balanced" if training.class_weights else None,
                                  random_state=training.seed)
        self.pipeline = make_pipeline(features, head)
        self.pipeline.fit(train_texts, train_y)
        return {}

    def raw_proba(self, texts, batch_size=64):
        head = self.pipeline[-1]
        return full_probabilities(self.pipeline.predict_proba(list(texts)), head.classes_, len(self.id2label))

    def save(self, folder):
        super().save(folder)
        joblib.dump(self.pipeline, folder / "pipeline.joblib")

    def _load(self, folder: Path) -> None:
        self.pipeline = joblib.load(folder / "pipeline.joblib")


# ---------------------------------------------------------------- encoder families


class SentenceEncoder:
    """Mean-pooled, L2-normalised sentence embeddings from a transformer encoder."""

    def __init__(self, name_or_path: str, max_length: int):
        from transformers import AutoModel, AutoTokenizer

        path = encoders.resolve(name_or_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path)
        self.max_length = max_length
        # Training turns this on: the learning curve and the split evaluations re-embed the same
        # sentences. Off for scoring, where memory must stay flat however many articles pass.
        self.cache: dict[tuple[str, bool], np.ndarray] | None = None

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        batch = self.tokenizer(list(texts), padding=True, truncation=True, max_length=self.max_length,
                               return_tensors="pt")
        hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)

    def encode(self, texts: Sequence[str], batch_size: int = 64, bf16: bool = True) -> np.ndarray:
        self.model.eval()
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        cached = self.cache if self.cache is not None else {}
        missing = [i for i, text in enumerate(texts) if (text, bf16) not in cached]
        with torch.inference_mode(), autocast(bf16):
            for idx in length_sorted_batches([texts[i] for i in missing], batch_size):
                rows = [missing[i] for i in idx]
                out[rows] = self.forward([texts[i] for i in rows]).float().numpy()
        for i, text in enumerate(texts):
            if (text, bf16) in cached:
                out[i] = cached[(text, bf16)]
        if self.cache is not None:
            self.cache.update({(texts[i], bf16): out[i] for i in missing})
        return out


def _fit_head(embeddings: np.ndarray, y: np.ndarray, c: float, balanced: bool, seed: int) -> LogisticRegression:
    head = LogisticRegression(C=c, max_iter=3000, class_weight="balanced" if balanced else None,
                              random_state=seed)
    return head.fit(embeddings, y)


class FrozenClassifier(Classifier):
    family = "frozen"
    encoder: SentenceEncoder

    def _encoder(self) -> SentenceEncoder:
        if not hasattr(self, "encoder"):
            self.encoder = SentenceEncoder(self.model_cfg.encoder, self.model_cfg.max_length)
        return self.encoder

    def fit(self, train_texts, train_y, val_texts, val_y, training, on_metrics=None):
        set_seed(training.seed)
        if self._encoder().cache is None:
            self._encoder().cache = {}
        embeddings = self._encoder().encode(train_texts, training.eval_batch_size, training.bf16)
        self.head = _fit_head(embeddings, train_y, self.model_cfg.head_C, training.class_weights, training.seed)
        return {}

    def raw_proba(self, texts, batch_size=64):
        embeddings = self._encoder().encode(list(texts), batch_size, self.inference_bf16)
        return full_probabilities(self.head.predict_proba(embeddings), self.head.classes_, len(self.id2label))

    def torch_module(self):
        return self._encoder().model

    def save(self, folder):
        super().save(folder)
        joblib.dump(self.head, folder / "head.joblib")
        if self.model_cfg.encoder not in PACKAGED_ENCODERS:
            # A packaged encoder is re-resolved from its package; anything else travels with the model.
            self._encoder().model.save_pretrained(folder / "encoder")
            self._encoder().tokenizer.save_pretrained(folder / "encoder")

    def _load(self, folder: Path) -> None:
        self.head = joblib.load(folder / "head.joblib")
        if (folder / "encoder").is_dir():
            self.model_cfg.encoder = str(folder / "encoder")


class SetFitClassifier(FrozenClassifier):
    """SetFit: contrastive pairs (same label -> cosine 1, different -> 0) tune the encoder, then the head."""

    family = "setfit"

    def _pairs(self, y: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int, float]]:
        by_label = {label: np.flatnonzero(y == label) for label in np.unique(y)}
        pairs = []
        for i, label in enumerate(y):
            for k in range(self.model_cfg.setfit_pairs_per_sentence):
                if k % 2 == 0:
                    pairs.append((i, int(rng.choice(by_label[label])), 1.0))
                else:
                    other = rng.choice([lab for lab in by_label if lab != label])
                    pairs.append((i, int(rng.choice(by_label[other])), 0.0))
        rng.shuffle(pairs)
        return pairs

    def fit(self, train_texts, train_y, val_texts, val_y, training, on_metrics=None):
        from tqdm.auto import tqdm
        from transformers import get_linear_schedule_with_warmup

        set_seed(training.seed)
        encoder = self._encoder()
        rng = np.random.default_rng(training.seed)
        pairs = self._pairs(np.asarray(train_y), rng)
        steps = math.ceil(len(pairs) / training.batch_size) * self.model_cfg.setfit_epochs
        optimizer = torch.optim.AdamW(encoder.model.parameters(), lr=training.learning_rate,
                                      weight_decay=training.weight_decay)
        schedule = get_linear_schedule_with_warmup(optimizer, int(training.warmup_ratio * steps), steps)
        encoder.model.train()
        step = 0
        with tqdm(total=steps, desc="setfit pairs", unit="batch") as bar:
            for _ in range(self.model_cfg.setfit_epochs):
                for start in range(0, len(pairs), training.batch_size):
                    chunk = pairs[start : start + training.batch_size]
                    with autocast(training.bf16):
                        a = encoder.forward([train_texts[i] for i, _, _ in chunk])
                        b = encoder.forward([train_texts[j] for _, j, _ in chunk])
                        cosine = (a * b).sum(-1).float()
                    target = torch.tensor([t for _, _, t in chunk])
                    loss = torch.nn.functional.mse_loss(cosine, target)
                    loss.backward()
                    optimizer.step()
                    schedule.step()
                    optimizer.zero_grad()
                    step += 1
                    bar.update(1)
                    if on_metrics and step % 20 == 0:
                        on_metrics({"train/pair_loss": float(loss)}, step)
        return super().fit(train_texts, train_y, val_texts, val_y, training, on_metrics)

    def save(self, folder):
        Classifier.save(self, folder)
        joblib.dump(self.head, folder / "head.joblib")
        self._encoder().model.save_pretrained(folder / "encoder")
        self._encoder().tokenizer.save_pretrained(folder / "encoder")


# ---------------------------------------------------------------- full fine-tuning


def _layerwise_param_groups(model: torch.nn.Module, lr: float, decay: float, weight_decay: float,
                            freeze_layers: int) -> list[dict[str, Any]]:
    """Lower layers learn more slowly (lr * decay**depth); the lowest ``freeze_layers`` do not learn."""
    n_layers = model.config.num_hidden_layers
    groups: dict[tuple[float, float], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if ".layer." in name:
            layer = int(name.split(".layer.")[1].split(".")[0])
            depth = n_layers - layer
        elif "embeddings" in name:
            layer, depth = -1, n_layers + 1
        else:  # pooler, classifier head, relative attention bias
            layer, depth = n_layers, 0
        if layer < freeze_layers:
            param.requires_grad = False
            continue
        no_decay = name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name
        key = (lr * decay**depth, 0.0 if no_decay else weight_decay)
        groups.setdefault(key, []).append(param)
    return [{"params": params, "lr": g_lr, "weight_decay": wd} for (g_lr, wd), params in groups.items()]


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
        from transformers import (
            DataCollatorWithPadding,
            EarlyStoppingCallback,
            Trainer,
            TrainerCallback,
            TrainingArguments,
        )

        set_seed(training.seed)
        self._load_pretrained(encoders.resolve(self.model_cfg.encoder))
        tokenize = lambda batch: self.tokenizer(batch["text"], truncation=True,  # noqa: E731
                                                max_length=self.model_cfg.max_length)
        train_ds = Dataset.from_dict({"text": train_texts, "labels": list(map(int, train_y))}).map(
            tokenize, batched=True, remove_columns=["text"])
        val_ds = Dataset.from_dict({"text": val_texts, "labels": list(map(int, val_y))}).map(
            tokenize, batched=True, remove_columns=["text"])
        weights = None
        if training.class_weights:
            classes = np.arange(len(self.id2label))
            present = np.unique(train_y)
            balanced = compute_class_weight("balanced", classes=present, y=np.asarray(train_y))
            full = np.ones(len(classes))
            full[present] = balanced
            weights = torch.tensor(full, dtype=torch.float32)

        world = int(os.environ.get("WORLD_SIZE", "1"))
        steps_per_epoch = max(1, math.ceil(len(train_texts) / (training.batch_size * world)))
        eval_steps = max(1, steps_per_epoch // max(1, training.evals_per_epoch))
        args = TrainingArguments(
            output_dir=training.output_dir, num_train_epochs=training.epochs,
            per_device_train_batch_size=training.batch_size, per_device_eval_batch_size=training.eval_batch_size,
            learning_rate=training.learning_rate, weight_decay=training.weight_decay,
            warmup_steps=int(training.warmup_ratio * steps_per_epoch * training.epochs),
            lr_scheduler_type="linear", eval_strategy="steps", eval_steps=eval_steps,
            save_strategy="steps", save_steps=eval_steps, save_total_limit=1,
            load_best_model_at_end=True, metric_for_best_model="macro_f1", greater_is_better=True,
            logging_steps=max(1, eval_steps // 2), report_to=[], seed=training.seed, use_cpu=training.use_cpu,
            bf16=training.bf16, dataloader_num_workers=0,
            train_sampling_strategy="group_by_length" if training.group_by_length else "random",
            ddp_backend="gloo" if world > 1 and training.use_cpu else None, disable_tqdm=False,
        )
        optimizer = torch.optim.AdamW(_layerwise_param_groups(
            self.model, training.learning_rate, training.layerwise_lr_decay, training.weight_decay,
            self.model_cfg.freeze_layers))

        class WeightedTrainer(Trainer):
            def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
                labels = inputs.pop("labels")
                outputs = model(**inputs)
                loss = torch.nn.functional.cross_entropy(
                    outputs.logits.float(), labels, weight=None if weights is None else weights)
                return (loss, outputs) if return_outputs else loss

        class ForwardMetrics(TrainerCallback):
            def on_log(self, args, state, control, logs=None, **kwargs):
                if on_metrics and logs and state.is_world_process_zero:
                    renamed = {}
                    for key, value in logs.items():
                        if key.startswith("eval_"):
                            renamed[f"val/{key[5:]}"] = value
                        elif key in ("loss", "learning_rate", "grad_norm"):
                            renamed[f"train/{key}"] = value
                    renamed["epoch"] = logs.get("epoch", state.epoch or 0.0)
                    on_metrics({k: float(v) for k, v in renamed.items() if isinstance(v, int | float)},
                               state.global_step)

        def compute_metrics(prediction) -> dict[str, float]:
            predicted = prediction.predictions.argmax(-1)
            return {"macro_f1": f1_score(prediction.label_ids, predicted, average="macro"),
                    "accuracy": float((predicted == prediction.label_ids).mean())}

        trainer = WeightedTrainer(
            model=self.model, args=args, train_dataset=train_ds, eval_dataset=val_ds,
            data_collator=DataCollatorWithPadding(self.tokenizer), compute_metrics=compute_metrics,
            optimizers=(optimizer, None),
            callbacks=[EarlyStoppingCallback(training.early_stopping_patience), ForwardMetrics()],
        )
        started = time.time()
        trainer.train(resume_from_checkpoint=training.resume_from_checkpoint or None)
        self.model = trainer.model.to("cpu")  # prediction and scoring run on the CPU
        self.is_main_process = trainer.is_world_process_zero()
        if not training.keep_checkpoints and self.is_main_process:
            # The best checkpoint is loaded; what this run saved (weights plus optimizer state) goes.
            for checkpoint in Path(training.output_dir).glob("checkpoint-*"):
                if checkpoint.is_dir() and checkpoint.stat().st_mtime >= started:
                    shutil.rmtree(checkpoint)
        return {"best_val_macro_f1": trainer.state.best_metric, "best_checkpoint": trainer.state.best_model_checkpoint,
                "global_step": trainer.state.global_step}

    def torch_module(self):
        return self.model

    def raw_proba(self, texts, batch_size=64):
        self.model.eval()
        texts = list(texts)
        out = np.zeros((len(texts), len(self.id2label)), dtype=np.float32)
        with torch.inference_mode(), autocast(self.inference_bf16):
            for idx in length_sorted_batches(texts, batch_size):
                batch = self.tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                                       max_length=self.model_cfg.max_length, return_tensors="pt")
                out[idx] = torch.softmax(self.model(**batch).logits.float(), -1).numpy()
        return out

    def save(self, folder):
        super().save(folder)
        self.model.save_pretrained(folder / "hf_model")
        self.tokenizer.save_pretrained(folder / "hf_model")

    def _load(self, folder: Path) -> None:
        self._load_pretrained(str(folder / "hf_model"))


FAMILIES: dict[str, type[Classifier]] = {
    cls.family: cls for cls in (TfidfClassifier, FrozenClassifier, SetFitClassifier, FinetuneClassifier)
}


def build_classifier(task: str, id2label: dict[int, str], model_cfg: ModelConfig) -> Classifier:
    return FAMILIES[model_cfg.family](task, id2label, model_cfg)


def load_classifier(folder: str | Path) -> Classifier:
    """Restores a saved classifier of any family from its folder (``meta.json`` says which)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder} is not a saved model: meta.json is missing")
    meta = json.loads(meta_path.read_text())
    model_cfg = ModelConfig(family=meta["family"], encoder=meta["encoder"], max_length=meta["max_length"])
    classifier = FAMILIES[meta["family"]](meta["task"], meta["id2label"], model_cfg)
    classifier._load(folder)
    classifier.temperature = float(meta.get("temperature", 1.0))
    classifier.uncertain_threshold = meta.get("uncertain_threshold")
    return classifier

