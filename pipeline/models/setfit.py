"""``setfit``: the SetFit method: contrastive fine-tuning of the encoder on sentence pairs, then the head."""

from __future__ import annotations

import math

import joblib
import numpy as np
import torch

from pipeline.models.base import Classifier, autocast, set_seed
from pipeline.models.frozen import FrozenClassifier


def sample_pairs(y: np.ndarray, per_sentence: int, rng: np.random.Generator) -> list[tuple[int, int, float]]:
    """``per_sentence`` pairs (i, j, target) per sentence i, alternating a same-label partner (target 1)
    and a different-label one (target 0), shuffled."""
    by_label = {label: np.flatnonzero(y == label) for label in np.unique(y)}
    pairs = []
    for i, label in enumerate(y):
        for k in range(per_sentence):
            if k % 2 == 0:
                pairs.append((i, int(rng.choice(by_label[label])), 1.0))
            else:
                other = rng.choice([lab for lab in by_label if lab != label])
                pairs.append((i, int(rng.choice(by_label[other])), 0.0))
    rng.shuffle(pairs)
    return pairs


class SetFitClassifier(FrozenClassifier):
    """SetFit: contrastive pairs (same label -> cosine 1, different -> 0) tune the encoder, then the head."""

    family = "setfit"

    def fit(self, train_texts, train_y, val_texts, val_y, training, on_metrics=None):
        from tqdm.auto import tqdm
        from transformers import get_linear_schedule_with_warmup

        set_seed(training.seed)
        encoder = self._encoder()
        rng = np.random.default_rng(training.seed)
        pairs = sample_pairs(np.asarray(train_y), self.model_cfg.setfit_pairs_per_sentence, rng)
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
