"""Label simulation stage (``make label-sim``): does labeling your own sentences pay, and which to label?

One corpus writer plays the user's domain: the model never trains on the writer's articles except those
the simulated user labels. The writer's articles are split (by a hash of the article id) into a pool to
label from and a hold-out to measure on. For each strategy, the loop labels the pool in rounds up to
each budget (50, 100, 200, 400 sentences): the current model scores what is left of the pool, the
strategy picks the next sentences (at most a few per article, like ``label export``), their gold labels
(which the corpus already has) join the training set with the user weight, and the model is retrained.
The cheap TF-IDF family draws the curves; ``finetune_encoder`` adds one fine-tuned point per strategy.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline import metrics, tracking
from pipeline.config import LabelSimConfig, ModelConfig, TrainingConfig
from pipeline.data import DataError, in_user_holdout, label_maps, load_split, oversample
from pipeline.label import select, uncertainty
from pipeline.models import Classifier, build_classifier

NEAR_DUPLICATE_JACCARD = 0.8


@dataclasses.dataclass
class SimResult:
    table: pd.DataFrame  # strategy, seed, labels, macro_f1 (family tfidf, or finetune for the extra points)
    figure: Path
    table_file: Path
    run_id: str
    verdict: str
    baseline: float  # hold-out macro-F1 with no user labels
    all_pool: float  # ... with every pool sentence labeled


def split_writer(train: pd.DataFrame, writer: str, share: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The corpus without the writer, the writer's pool and the writer's hold-out (split by article)."""
    writers = sorted(train["writer"].unique())
    if writer not in writers:
        raise DataError(f"writer {writer!r} writes no training article; choose one of {', '.join(writers)} "
                        "(--set writer=...)")
    own = train[train["writer"] == writer]
    held = own["article_id"].map(lambda a: in_user_holdout(a, share))
    if held.all() or not held.any():
        raise DataError(f"holdout_share {share} leaves writer {writer}'s pool or hold-out empty; choose another")
    return (train[train["writer"] != writer].reset_index(drop=True), own[~held].reset_index(drop=True),
            own[held].reset_index(drop=True))


class Simulation:
    def __init__(self, cfg: LabelSimConfig, base: pd.DataFrame, pool: pd.DataFrame, holdout: pd.DataFrame,
                 val: pd.DataFrame):
        self.cfg, self.base, self.pool, self.holdout, self.val = cfg, base, pool, holdout, val
        self.label2id, self.id2label = label_maps(cfg.task)

    def y(self, frame: pd.DataFrame) -> np.ndarray:
        return frame[self.cfg.task].map(self.label2id).to_numpy()

    def fit(self, labeled: pd.DataFrame, seed: int, model_cfg: ModelConfig | None = None,
            training: TrainingConfig | None = None) -> Classifier:
        extra = oversample(labeled, self.cfg.user_weight, seed)
        frame = pd.concat([self.base, extra], ignore_index=True)
        classifier = build_classifier(self.cfg.task, self.id2label, model_cfg or ModelConfig(family="tfidf"))
        training = training or TrainingConfig(seed=seed)
        # The corpus val split (other writers) serves early stopping; the hold-out is only ever measured on.
        classifier.fit(frame["text"].tolist(), self.y(frame), self.val["text"].tolist(), self.y(self.val), training)
        return classifier

    def score(self, classifier: Classifier) -> float:
        probabilities = classifier.predict_proba(self.holdout["text"].tolist())
        return metrics.compute(self.y(self.holdout), probabilities, classifier.labels)["macro_f1"]

    def loop(self, strategy: str, seed: int, baseline: Classifier) -> tuple[list[tuple[int, float]], dict[int, list]]:
        """Labels the pool in rounds up to each budget; (labels, macro-F1) per round and the labeled rows."""
        labeled: list[int] = []
        classifier, points, chosen = baseline, [], {}
        for budget in sorted(b for b in self.cfg.budgets):
            remaining = self.pool.drop(index=labeled)
            need = min(budget, len(self.pool)) - len(labeled)
            if need <= 0 or remaining.empty:
                break
            probabilities = classifier.predict_proba(remaining["text"].tolist())
            scores = uncertainty(probabilities, strategy, seed * 1000 + budget)
            # The per-article cap of `label export`, raised when a round needs more than the cap allows.
            cap = max(self.cfg.max_per_article, math.ceil(need / remaining["article_id"].nunique()))
            picked, _ = select(remaining.reset_index(drop=True), scores, need, cap, NEAR_DUPLICATE_JACCARD)
            labeled += remaining.index[picked].tolist()
            classifier = self.fit(self.pool.loc[labeled], seed)
            points.append((len(labeled), self.score(classifier)))
            chosen[len(labeled)] = list(labeled)
        return points, chosen


def _plot(curves: dict[str, dict[int, list[float]]], baseline: float, all_pool: float, n_pool: int,
          extra: dict[str, tuple[int, float]], title: str, path: Path) -> Path:
    from pipeline.metrics import plt

    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    for strategy, by_budget in curves.items():
        xs = sorted(by_budget)
        means = [float(np.mean(by_budget[x])) for x in xs]
        label = strategy if all(len(by_budget[x]) == 1 for x in xs) else f"{strategy} (mean of {len(by_budget[xs[0]])})"
        line, = ax.plot(xs, means, marker="o", label=label)
        if any(len(by_budget[x]) > 1 for x in xs):
            ax.fill_between(xs, [min(by_budget[x]) for x in xs], [max(by_budget[x]) for x in xs],
                            color=line.get_color(), alpha=0.15)
    ax.axhline(baseline, color="grey", linestyle="--", label=f"no user labels ({baseline:.3f})")
    ax.axhline(all_pool, color="black", linestyle=":", label=f"whole pool labeled, {n_pool} ({all_pool:.3f})")
    for name, (x, value) in extra.items():
        ax.scatter([x], [value], marker="*", s=120, zorder=3, label=f"{name} ({value:.3f})")
    ax.set_xlabel("user sentences labeled")
    ax.set_ylabel("macro-F1 on the writer's hold-out")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _verdict(curves: dict[str, dict[int, list[float]]], at: int = 200) -> str:
    if "random" not in curves or at not in curves["random"]:
        return f"no random curve at {at} labels to compare with"
    random_mean = float(np.mean(curves["random"][at]))
    parts = []
    for strategy, by_budget in curves.items():
        if strategy == "random" or at not in by_budget:
            continue
        value = float(np.mean(by_budget[at]))
        side = "at or above" if value >= random_mean else "below"
        parts.append(f"{strategy} {value:.3f} is {side} random {random_mean:.3f} ({value - random_mean:+.3f})")
    return f"at {at} labels: " + "; ".join(parts)


def run(cfg: LabelSimConfig) -> SimResult:
    train = load_split(cfg.corpus_dir, "train")
    base, pool, holdout = split_writer(train, cfg.writer, cfg.holdout_share)
    sim = Simulation(cfg, base, pool, holdout, load_split(cfg.corpus_dir, "val"))
    baseline_model = sim.fit(pool.iloc[:0], 0)
    baseline = sim.score(baseline_model)
    all_pool = sim.score(sim.fit(pool, 0))
    rows: list[dict[str, Any]] = []
    curves: dict[str, dict[int, list[float]]] = {}
    chosen: dict[tuple[str, int], dict[int, list]] = {}
    for strategy in cfg.strategies:
        for seed in (cfg.random_seeds if strategy == "random" else (0,)):
            points, chosen[(strategy, seed)] = sim.loop(strategy, seed, baseline_model)
            for labels, value in points:
                rows.append({"family": "tfidf", "strategy": strategy, "seed": seed, "labels": labels,
                             "macro_f1": round(value, 4)})
                curves.setdefault(strategy, {}).setdefault(labels, []).append(value)
    extra = _finetune_points(cfg, sim, chosen, rows) if cfg.finetune_encoder else {}
    table = pd.DataFrame(rows)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    table_file = out / "label-sim.csv"
    table.to_csv(table_file, index=False)
    title = (f"{cfg.task}, TF-IDF: writer {cfg.writer} as the user's domain\n({len(pool)} sentences to label from, "
             f"{len(holdout)} held out; {len(base)} corpus sentences of other writers)")
    figure = _plot(curves, baseline, all_pool, len(pool), extra, title, Path(cfg.figure))
    verdict = _verdict(curves)
    report = {"task": cfg.task, "writer": cfg.writer, "n_pool": len(pool), "n_holdout": len(holdout),
              "n_base": len(base), "user_weight": cfg.user_weight, "baseline_macro_f1": baseline,
              "all_pool_macro_f1": all_pool, "verdict": verdict,
              "curves": {s: [(x, float(np.mean(v))) for x, v in sorted(c.items())] for s, c in curves.items()}}
    run_id = tracking.log_label_sim(report, figure, table_file, cfg.tracking_uri)
    return SimResult(table, figure, table_file, run_id, verdict, baseline, all_pool)


def _finetune_points(cfg: LabelSimConfig, sim: Simulation, chosen: dict[tuple[str, int], dict[int, list]],
                     rows: list[dict[str, Any]]) -> dict[str, tuple[int, float]]:
    """Fine-tunes ``cfg.finetune_encoder`` once without user labels and once per strategy on the sentences that
    strategy had picked at ``cfg.finetune_budget`` (first seed for random). Slow: minutes per point on CPU."""
    model_cfg = ModelConfig(family="finetune", encoder=cfg.finetune_encoder)
    training = TrainingConfig(seed=0, epochs=1.0, evals_per_epoch=1, output_dir=str(Path(cfg.out) / "finetune"))
    points = {}
    runs = {"finetune, no user labels": []}
    for strategy in cfg.strategies:
        seed = cfg.random_seeds[0] if strategy == "random" else 0
        picked = chosen.get((strategy, seed), {})
        budget = max((b for b in picked if b <= cfg.finetune_budget), default=None)
        if budget is not None:
            runs[f"finetune, {strategy}"] = picked[budget]
    for name, labeled in runs.items():
        classifier = sim.fit(sim.pool.loc[labeled], 0, model_cfg, training)
        value = sim.score(classifier)
        points[name] = (len(labeled), value)
        rows.append({"family": f"finetune-{Path(cfg.finetune_encoder).name}", "strategy": name.split(", ")[1],
                     "seed": 0, "labels": len(labeled), "macro_f1": round(value, 4)})
    return points
