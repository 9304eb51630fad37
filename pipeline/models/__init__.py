"""Model families behind one interface (``pipeline.models.base.Classifier``), one module per family.

- ``tfidf``: word and character n-gram TF-IDF + LogisticRegression (class_weight balanced).
- ``frozen``: mean-pooled sentence embeddings of a frozen encoder + LogisticRegression.
- ``setfit``: the SetFit method: contrastive fine-tuning of the encoder on sentence pairs, then the head.
- ``finetune``: full fine-tuning of ``AutoModelForSequenceClassification`` with the HF ``Trainer``.
- ``multitask``: one fine-tuned encoder with a stance head and a sentiment head, trained jointly.

A family's module is imported when it is first used, so that scoring with a TF-IDF model does not load
the transformers Trainer.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

from pipeline.config import ModelConfig
from pipeline.models.base import Classifier

# family -> (module under pipeline.models, class)
FAMILIES: dict[str, tuple[str, str]] = {
    "tfidf": ("tfidf", "TfidfClassifier"),
    "frozen": ("frozen", "FrozenClassifier"),
    "setfit": ("setfit", "SetFitClassifier"),
    "finetune": ("finetune", "FinetuneClassifier"),
    "multitask": ("multitask", "MultiTaskClassifier"),
}


def family_class(family: str) -> type[Classifier]:
    if family not in FAMILIES:
        raise ValueError(f"unknown model family {family!r}: choose one of {', '.join(FAMILIES)}")
    module, name = FAMILIES[family]
    return getattr(importlib.import_module(f"pipeline.models.{module}"), name)


def build_classifier(task: str, id2label: dict[int, str], model_cfg: ModelConfig) -> Classifier:
    """A new, untrained single-task classifier of ``model_cfg.family`` (the multitask family is built with
    ``build_multitask``)."""
    return family_class(model_cfg.family)(task, id2label, model_cfg)


def build_multitask(id2labels: dict[str, dict[int, str]], model_cfg: ModelConfig) -> Classifier:
    """A new, untrained multi-task classifier with one head per task of ``id2labels``."""
    return family_class("multitask")(id2labels, model_cfg)


def load_classifier(folder: str | Path) -> Classifier:
    """Restores a saved classifier of any family from its folder (``meta.json`` says which)."""
    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{folder} is not a saved model: meta.json is missing")
    meta = json.loads(meta_path.read_text())
    return family_class(meta["family"]).restore(folder, meta)


__all__ = ["FAMILIES", "Classifier", "build_classifier", "build_multitask", "family_class", "load_classifier"]
