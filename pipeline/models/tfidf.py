"""``tfidf``: word and character n-gram TF-IDF + LogisticRegression (class_weight balanced)."""

from __future__ import annotations

from pathlib import Path

import joblib
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline

from pipeline.models.base import Classifier, full_probabilities


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
