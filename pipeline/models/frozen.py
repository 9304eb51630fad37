"""``frozen``: mean-pooled sentence embeddings of a frozen encoder + LogisticRegression.

``SentenceEncoder`` (the mean-pooled, L2-normalised embeddings) is also what ``setfit`` tunes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from pipeline import encoders
from pipeline.models.base import (
    PACKAGED_ENCODERS,
    Classifier,
    autocast,
    full_probabilities,
    set_seed,
    token_budget_batches,
)


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
            for idx in token_budget_batches([len(texts[i]) for i in missing], batch_size):
                rows = [missing[i] for i in idx]
                out[rows] = self.forward([texts[i] for i in rows]).float().numpy()
        for i, text in enumerate(texts):
            if (text, bf16) in cached:
                out[i] = cached[(text, bf16)]
        if self.cache is not None:
            self.cache.update({(texts[i], bf16): out[i] for i in missing})
        return out


def fit_head(embeddings: np.ndarray, y: np.ndarray, c: float, balanced: bool, seed: int) -> LogisticRegression:
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
        self.head = fit_head(embeddings, train_y, self.model_cfg.head_C, training.class_weights, training.seed)
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
