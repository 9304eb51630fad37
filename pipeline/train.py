"""Training stage: ``run(cfg) -> TrainResult`` trains one model family for one task and tracks it.

The multitask family (task ``both``) trains one encoder with a stance and a sentiment head in one run:
per-task metrics are named ``<task>/<split>/...`` and the selection metric is the mean of the two
validation macro-F1s."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from pipeline import calibration, metrics, tracking
from pipeline.config import TASK_LABELS, CalibrationConfig, ConfigError, ScoreConfig, TrainConfig, to_dict
from pipeline.data import (
    DataError,
    UserData,
    data_version,
    label_maps,
    load_split,
    load_unlabeled,
    load_user,
    oversample,
    read_suite,
)
from pipeline.models import Classifier, build_classifier, build_multitask


@dataclasses.dataclass
class TrainResult:
    run_id: str | None
    run_name: str
    val: dict[str, float]
    test: dict[str, float]
    best_val_macro_f1: float
    model_dir: Path
    registered_version: str | None = None
    promoted: bool = False
    train_seconds: float = 0.0
    disk_mib: float = 0.0  # what the run left on disk: its model in the store and any kept checkpoints
    suite: dict[str, float] = dataclasses.field(default_factory=dict)
    test_user: dict[str, float] = dataclasses.field(default_factory=dict)  # the user's hold-out, when configured


def model_label(cfg: TrainConfig) -> str:
    """``tfidf`` or ``<family>-<encoder>``: what a run name and the compare table call the model."""
    if cfg.model.family == "tfidf":
        return "tfidf"
    if cfg.model.distill_from:
        return f"distilled-{Path(cfg.model.encoder).name}"
    return f"{cfg.model.family}-{Path(cfg.model.encoder).name}"


def registered_name(cfg: TrainConfig) -> str:
    """The registry name a run registers under: per task, and the fast tier for a distilled model."""
    return tracking.REGISTERED_NAMES["fast" if cfg.model.distill_from else cfg.task]


def _curated_params(cfg: TrainConfig, sizes: dict[str, int]) -> dict[str, Any]:
    params = {"task": cfg.task, "family": cfg.model.family, "max_length": cfg.model.max_length,
              "class_weights": cfg.training.class_weights, "seed": cfg.training.seed,
              "temperature_scaling": cfg.calibration.temperature_scaling,
              "target_accuracy": cfg.calibration.target_accuracy, **sizes}
    if cfg.model.family == "tfidf":
        params |= {"tfidf_C": cfg.model.tfidf_C, "tfidf_max_features": cfg.model.tfidf_max_features}
    else:
        params |= {"encoder": cfg.model.encoder, "bf16": cfg.training.bf16}
    if cfg.model.family in ("frozen", "setfit"):
        params["head_C"] = cfg.model.head_C
    if cfg.model.family in ("setfit", "finetune", "multitask"):
        params |= {"learning_rate": cfg.training.learning_rate, "batch_size": cfg.training.batch_size,
                   "weight_decay": cfg.training.weight_decay, "warmup_ratio": cfg.training.warmup_ratio}
    if cfg.model.family == "multitask":
        params["multitask_sentiment_weight"] = cfg.model.multitask_sentiment_weight
    if cfg.model.distill_from:
        params |= {"distill_from": cfg.model.distill_from, "distill_temperature": cfg.model.distill_temperature}
    if cfg.model.family in ("finetune", "multitask"):
        params |= {"world_size": int(os.environ.get("WORLD_SIZE", "1")), "epochs": cfg.training.epochs,
                   "layerwise_lr_decay": cfg.training.layerwise_lr_decay, "freeze_layers": cfg.model.freeze_layers,
                   "early_stopping_patience": cfg.training.early_stopping_patience,
                   "group_by_length": cfg.training.group_by_length}
    if cfg.model.family == "setfit":
        params |= {"setfit_pairs_per_sentence": cfg.model.setfit_pairs_per_sentence,
                   "setfit_epochs": cfg.model.setfit_epochs}
    return params


def _load_splits(cfg: TrainConfig) -> dict[str, pd.DataFrame]:
    frames = {split: load_split(cfg.data.corpus_dir, split) for split in ("train", "val", "test")}
    if cfg.training.max_train_rows:
        frames["train"] = frames["train"].sample(
            n=min(cfg.training.max_train_rows, len(frames["train"])), random_state=cfg.training.seed)
    return frames


def _learning_curve(classifier: Classifier, cfg: TrainConfig, texts: list[str], y: np.ndarray,
                    val_texts: list[str], val_y: np.ndarray) -> dict[str, list[tuple[float, float]]]:
    """Validation macro-F1 of the same family refitted on growing shares of the training set."""
    points = []
    rng = np.random.default_rng(cfg.training.seed)
    order = rng.permutation(len(texts))
    for share in (0.25, 0.5):
        subset = order[: max(len(set(y)) * 2, int(share * len(texts)))]
        if len(set(y[subset])) < 2:
            continue
        # SetFit's tuned encoder is reused as it is: only the head is refitted on the smaller share.
        head_only = dataclasses.replace(cfg.model, family="frozen") if cfg.model.family == "setfit" else cfg.model
        smaller = build_classifier(cfg.task, classifier.id2label, head_only)
        if hasattr(classifier, "encoder"):
            smaller.encoder = classifier.encoder  # reuse the loaded encoder, refit the head only
        smaller.fit([texts[i] for i in subset], y[subset], val_texts, val_y, cfg.training)
        probabilities = smaller.predict_proba(val_texts, cfg.training.eval_batch_size)
        points.append((len(subset), metrics.compute(val_y, probabilities, classifier.labels)["macro_f1"]))
    return {"val macro-F1": points}


def _suite(classifier: Classifier, cfg: TrainConfig) -> dict[str, float]:
    """``suite/<rule>`` accuracies on the boundary suite (never trained on), when the project has one."""
    if not cfg.data.suite_file or not Path(cfg.data.suite_file).is_file():
        return {}
    from pipeline.evaluate import suite_metrics

    suite, errors = read_suite(cfg.data.suite_file)
    if errors:
        raise DataError("\n".join(errors[:20]))
    return suite_metrics(classifier, suite, cfg.training.eval_batch_size)[0]


def _log_user_data(run: tracking.Run, cfg: TrainConfig, user: UserData) -> None:
    run.params({"user_files": ",".join(str(f) for f in user.files), "user_weight": cfg.data.user_weight,
                "n_user_train": len(user.train), "n_user_holdout": len(user.holdout),
                "user_holdout_share": cfg.data.user_holdout_share})
    columns = [cfg.text_column, cfg.task, "article_id"]
    source = ",".join(str(f) for f in user.files)
    run.dataset(user.train[columns], source=source, name="user-train", target=cfg.task, context="training")
    if len(user.holdout):
        run.dataset(user.holdout[columns], source=source, name="user-holdout", target=cfg.task, context="test_user")


def user_holdout_metrics(classifier: Classifier, cfg: TrainConfig, user: UserData) -> dict[str, float]:
    """Metrics on the user's held-out articles, reported apart from the corpus splits ({} when none)."""
    if not len(user.holdout):
        return {}
    label2id = {name: i for i, name in enumerate(classifier.labels)}
    probabilities = classifier.predict_proba(user.holdout[cfg.text_column].tolist(), cfg.training.eval_batch_size)
    return metrics.compute(user.holdout[cfg.task].map(label2id).to_numpy(), probabilities, classifier.labels)


def _disk_mib(folders: list[Path], since: float = 0.0) -> float:
    """MiB of the files under ``folders`` (modified after ``since``, a time.time() stamp)."""
    total = 0
    for folder in folders:
        for path in folder.rglob("*") if folder.is_dir() else []:
            if path.is_file() and not path.is_symlink() and path.stat().st_mtime >= since:
                total += path.stat().st_size
    return total / 2**20


TASKS = tuple(TASK_LABELS)  # the multitask family's heads
TRAIN_EVAL_ROWS = 1000  # training sentences predicted after training for the train/ metrics


def _sample_rows(n: int, k: int, seed: int) -> np.ndarray:
    """All ``n`` row numbers when ``n <= k``, else a seeded sample of ``k`` of them, in order."""
    return np.arange(n) if n <= k else np.sort(np.random.default_rng(seed).choice(n, k, replace=False))


def _disk_and_promotion(run: tracking.Run, cfg: TrainConfig, registered_name: str | None, version: str | None,
                        best_val: float, wall_started: float) -> tuple[float, bool]:
    """Logs the disk the run used (new checkpoints plus the stored model) and moves the champion alias
    when allowed and better; returns both."""
    disk_mib = _disk_mib([Path(cfg.training.output_dir)], since=wall_started) + _disk_mib(
        [run.model_dir] if run.model_dir else [])
    run.metrics({"train/disk_mib": disk_mib})
    promoted = bool(version) and (cfg.tracking.promote or cfg.tracking.auto_promote) and \
        tracking.promote_if_better(registered_name, version, best_val, force=cfg.tracking.promote)
    run.tags({"champion_at_training": str(promoted).lower()})
    return disk_mib, promoted


def calibrate(classifier: Classifier, settings: CalibrationConfig, raw: dict[str, np.ndarray],
              ys: dict[str, np.ndarray], run: tracking.Run, diagram: Path, prefix: str = "") -> None:
    """Fits the temperature (when configured) and chooses the uncertain threshold on validation; sets both
    on the classifier (its save keeps them) and logs ECE before and after, the threshold and its coverage
    (metric names start with ``prefix``: ``stance/`` for a multi-task model's stance head)."""
    if settings.temperature_scaling:
        classifier.temperature = calibration.fit_temperature(raw["val"], ys["val"])
    calibrated = {split: calibration.scale(p, classifier.temperature) for split, p in raw.items()}
    chosen = calibration.choose_threshold(calibrated["val"], ys["val"], settings.target_accuracy)
    classifier.uncertain_threshold = chosen.threshold
    values = {"val/temperature": classifier.temperature, "val/uncertain_threshold": chosen.threshold,
              "val/coverage": chosen.coverage, "val/covered_accuracy": chosen.covered_accuracy,
              "val/target_accuracy_reached": float(chosen.reached)}
    for split, p in raw.items():
        values[f"{split}/ece_uncalibrated"] = metrics.expected_calibration_error(p, ys[split])
    for split in ("val", "test"):
        values[f"{split}/nll_uncalibrated"] = calibration.negative_log_likelihood(raw[split], ys[split], 1.0)
        values[f"{split}/nll"] = calibration.negative_log_likelihood(raw[split], ys[split], classifier.temperature)
    values["test/coverage"], values["test/covered_accuracy"] = calibration.coverage_at(
        calibrated["test"], ys["test"], chosen.threshold)
    run.metrics({prefix + name: value for name, value in values.items()})
    panels = {split: (raw[split], calibrated[split], ys[split]) for split in ("val", "test")}
    run.artifact(calibration.plot_reliability(panels, diagram, f"{classifier.task}: reliability before and after "
                                              "temperature scaling", classifier.temperature), "eval")


def run(cfg: TrainConfig) -> TrainResult:
    """Trains, evaluates on val and test, logs everything to MLflow, registers and maybe promotes."""
    if (cfg.model.family == "multitask") != (cfg.task == "both"):
        raise ConfigError(f"task {cfg.task!r} does not go with model family {cfg.model.family!r}: the multitask "
                          "family learns both tasks (task both); stance and sentiment take a single-task family")
    if cfg.model.distill_from and cfg.model.family != "multitask":
        raise ConfigError(f"model.distill_from: only the multitask family distills (found family "
                          f"{cfg.model.family!r}); set model.family=multitask or leave model.distill_from empty")
    if cfg.model.family == "multitask":
        return _run_multitask(cfg)
    label2id, id2label = label_maps(cfg.task)
    frames = _load_splits(cfg)
    texts = {s: f[cfg.text_column].tolist() for s, f in frames.items()}
    ys = {s: f[cfg.task].map(label2id).to_numpy() for s, f in frames.items()}
    user = load_user(cfg.data)
    if user is not None:  # the user's training articles join the corpus's, drawn user_weight times each
        extra = oversample(user.train, cfg.data.user_weight, cfg.training.seed)
        texts["train"] = texts["train"] + extra[cfg.text_column].tolist()
        ys["train"] = np.concatenate([ys["train"], extra[cfg.task].map(label2id).to_numpy()])
    classifier = build_classifier(cfg.task, id2label, cfg.model)
    is_main_process = int(os.environ.get("RANK", "0")) == 0
    run_name = f"{cfg.task}-{model_label(cfg)}-{uuid.uuid4().hex[:6]}"
    if not is_main_process:  # under torchrun, only rank 0 tracks; the others just train
        classifier.fit(texts["train"], ys["train"], texts["val"], ys["val"], cfg.training)
        return TrainResult(None, run_name, {}, {}, float("nan"), Path())

    tags = {"task": cfg.task, "model_family": cfg.model.family, "model": model_label(cfg),
            "data_version": data_version(cfg.data.corpus_dir), "git_commit": tracking.git_commit()}
    if user is not None:
        tags["user_data_version"] = user.version
    with tracking.start_run(cfg.task, run_name, tags, cfg.tracking.tracking_uri) as run, \
            tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run.params(_curated_params(cfg, {f"n_{s}": len(t) for s, t in texts.items()}))
        if user is not None:
            _log_user_data(run, cfg, user)
        for split, frame in frames.items():
            run.dataset(frame[[cfg.text_column, cfg.task, "article_id"]], source=str(
                Path(cfg.data.corpus_dir) / f"{split}.jsonl"), name=f"corpus-{split}", target=cfg.task,
                context="training" if split == "train" else split)
        history: dict[str, list[tuple[float, float]]] = {"train loss": [], "val macro-F1": []}

        def on_metrics(values: dict[str, float], step: int) -> None:
            epoch = values.pop("epoch", None)
            run.metrics(values, step)
            if epoch is not None and "train/loss" in values:
                history["train loss"].append((epoch, values["train/loss"]))
            if epoch is not None and "val/macro_f1" in values:
                history["val macro-F1"].append((epoch, values["val/macro_f1"]))

        started, wall_started = time.perf_counter(), time.time()
        fit_info = classifier.fit(texts["train"], ys["train"], texts["val"], ys["val"], cfg.training, on_metrics)
        train_seconds = time.perf_counter() - started

        results = {}
        # train/ metrics (a fit check) come from a seeded sample: predicting all of a large training split
        # with a transformer costs minutes and says no more.
        eval_rows = {"train": _sample_rows(len(texts["train"]), TRAIN_EVAL_ROWS, cfg.training.seed)}
        eval_rows |= {split: np.arange(len(texts[split])) for split in ("val", "test")}
        eval_ys = {split: ys[split][rows] for split, rows in eval_rows.items()}
        raw = {split: classifier.raw_proba([texts[split][i] for i in rows], cfg.training.eval_batch_size)
               for split, rows in eval_rows.items()}
        run.params({"n_train_evaluated": len(eval_rows["train"])})
        calibrate(classifier, cfg.calibration, raw, eval_ys, run, out / "reliability_diagram.png")
        # What the saved model's predict_proba returns for these sentences (the fitted temperature applied).
        probabilities = {split: calibration.scale(p, classifier.temperature) for split, p in raw.items()}
        for split in ("train", "val", "test"):
            results[split] = metrics.compute(eval_ys[split], probabilities[split], classifier.labels)
            run.metrics({f"{split}/{k}": v for k, v in results[split].items()})
        best_val = max(results["val"]["macro_f1"], fit_info.get("best_val_macro_f1") or 0.0)
        run.metrics({tracking.SELECTION_METRIC: best_val, "train/seconds": train_seconds})
        suite_result = _suite(classifier, cfg)
        run.metrics(suite_result)
        test_user = user_holdout_metrics(classifier, cfg, user) if user is not None else {}
        run.metrics({f"test_user/{k}": v for k, v in test_user.items()})

        labels = classifier.labels
        run.dict(to_dict(cfg), "config/resolved.json")
        run.text(yaml.safe_dump(to_dict(cfg), sort_keys=False), "config/resolved.yaml")
        _log_test_artifacts(run, out, frames["test"], cfg.text_column, cfg.task, probabilities["test"], labels,
                            f"{run_name}: test")
        if not history["val macro-F1"]:
            history = _learning_curve(classifier, cfg, texts["train"], ys["train"], texts["val"], ys["val"])
            history["val macro-F1"].append((len(texts["train"]), results["val"]["macro_f1"]))
            xlabel = "training sentences"
        else:
            xlabel = "epoch"
        run.artifact(metrics.plot_curves(history, out / "learning_curves.png", run_name, xlabel), "eval")

        # Saved in the run's temporary folder: the store keeps the one lasting copy of the model.
        model_dir = out / "model"
        classifier.save(model_dir)
        example = texts["test"][:3]
        example_output = tracking.predictions_frame(probabilities["test"][:3], labels)
        name = registered_name(cfg) if cfg.tracking.register else None
        version = run.log_model(model_dir, example, example_output, name, metadata={
            "temperature": classifier.temperature, "uncertain_threshold": classifier.uncertain_threshold,
            "target_accuracy": cfg.calibration.target_accuracy})
        disk_mib, promoted = _disk_and_promotion(run, cfg, name, version, best_val, wall_started)
        return TrainResult(run.id, run_name, results["val"], results["test"], best_val, run.model_dir or Path(),
                           version, promoted, train_seconds, disk_mib, suite_result, test_user)


MULTITASK_EXPERIMENT = "multitask"


def teacher_soft_labels(cfg: TrainConfig, texts: list[str]) -> tuple[dict[str, np.ndarray], str]:
    """The multi-task teacher's (``model.distill_from``) probabilities on ``texts``, softened by
    ``model.distill_temperature``, per task; and what the teacher URI named when it was read."""
    pinned, description = tracking.resolve_model(cfg.model.distill_from)
    teacher = tracking.load_model(pinned)
    if teacher.family != "multitask":
        raise ConfigError(f"model.distill_from: {cfg.model.distill_from} is a {teacher.family} {teacher.task} "
                          "model; distillation needs a multi-task teacher (models:/news-classifier@champion)")
    teacher.batch_tokens = ScoreConfig().batch_tokens  # the scorer's token budget: even batches
    raw = teacher.raw_proba_tasks(texts, cfg.training.eval_batch_size)
    soft = {task: calibration.scale(p, cfg.model.distill_temperature).astype(np.float32) for task, p in raw.items()}
    return soft, description


def _run_multitask(cfg: TrainConfig) -> TrainResult:
    """The multitask family: one run, both tasks' metrics, registered as ``news-classifier`` (distilled:
    ``news-classifier-fast``)."""
    if cfg.data.user_files:
        raise ConfigError("data.user_files: the multitask family does not train on user labels yet; train a "
                          "single-task family with them (make train-user) or leave data.user_files empty")
    maps = {task: label_maps(task) for task in TASKS}
    frames = _load_splits(cfg)
    texts = {s: f[cfg.text_column].tolist() for s, f in frames.items()}
    ys = {task: {s: f[task].map(maps[task][0]).to_numpy() for s, f in frames.items()} for task in TASKS}
    classifier = build_multitask({task: maps[task][1] for task in TASKS}, cfg.model)
    run_name = f"{model_label(cfg)}-{uuid.uuid4().hex[:6]}"
    split_ys = {split: {task: ys[task][split] for task in TASKS} for split in ("train", "val")}
    fit_texts, fit_ys, distill_params = texts["train"], split_ys["train"], {}
    if cfg.model.distill_from:  # the training texts and the unlabeled ones, with the teacher's soft labels
        unlabeled = load_unlabeled(cfg.data.unlabeled_files, set(texts["val"]) | set(texts["test"]))
        fit_texts = texts["train"] + unlabeled
        fit_ys, teacher = teacher_soft_labels(cfg, fit_texts)
        distill_params = {"teacher": teacher, "n_unlabeled": len(unlabeled), "n_transfer": len(fit_texts)}
    if int(os.environ.get("RANK", "0")) != 0:  # under torchrun, only rank 0 tracks; the others just train
        classifier.fit(fit_texts, fit_ys, texts["val"], split_ys["val"], cfg.training)
        return TrainResult(None, run_name, {}, {}, float("nan"), Path())

    tags = {"task": cfg.task, "model_family": cfg.model.family, "model": model_label(cfg),
            "data_version": data_version(cfg.data.corpus_dir), "git_commit": tracking.git_commit()}
    with tracking.start_run(MULTITASK_EXPERIMENT, run_name, tags, cfg.tracking.tracking_uri) as run, \
            tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run.params(_curated_params(cfg, {f"n_{s}": len(t) for s, t in texts.items()}) | distill_params)
        for split, frame in frames.items():
            run.dataset(frame[[cfg.text_column, *TASKS, "article_id"]], source=str(
                Path(cfg.data.corpus_dir) / f"{split}.jsonl"), name=f"corpus-{split}", target=None,
                context="training" if split == "train" else split)
        curves = {"train/loss": "train loss", "val/mean_macro_f1": "val mean macro-F1",
                  **{f"{task}/val/macro_f1": f"{task} val macro-F1" for task in TASKS}}
        history: dict[str, list[tuple[float, float]]] = {name: [] for name in curves.values()}

        def on_metrics(values: dict[str, float], step: int) -> None:
            epoch = values.pop("epoch", None)
            run.metrics(values, step)
            for key, name in curves.items():
                if epoch is not None and key in values:
                    history[name].append((epoch, values[key]))

        started, wall_started = time.perf_counter(), time.time()
        fit_info = classifier.fit(fit_texts, fit_ys, texts["val"], split_ys["val"], cfg.training, on_metrics)
        train_seconds = time.perf_counter() - started

        eval_rows = {"train": _sample_rows(len(texts["train"]), TRAIN_EVAL_ROWS, cfg.training.seed)}
        eval_rows |= {split: np.arange(len(texts[split])) for split in ("val", "test")}
        run.params({"n_train_evaluated": len(eval_rows["train"])})
        both = {split: classifier.raw_proba_tasks([texts[split][i] for i in rows], cfg.training.eval_batch_size)
                for split, rows in eval_rows.items()}
        results: dict[str, dict[str, dict[str, float]]] = {}
        suite_result: dict[str, float] = {}
        for task in TASKS:
            head = classifier.heads[task]
            raw = {split: both[split][task] for split in eval_rows}
            eval_ys = {split: ys[task][split][rows] for split, rows in eval_rows.items()}
            calibrate(head, cfg.calibration, raw, eval_ys, run, out / f"{task}_reliability_diagram.png",
                      prefix=f"{task}/")
            probabilities = {split: calibration.scale(p, head.temperature) for split, p in raw.items()}
            results[task] = {split: metrics.compute(eval_ys[split], probabilities[split], head.labels)
                             for split in ("train", "val", "test")}
            for split, values in results[task].items():
                run.metrics({f"{task}/{split}/{k}": v for k, v in values.items()})
            suite_result |= {f"{task}/{k}": v for k, v in _suite(head, cfg).items()}
            _log_test_artifacts(run, out, frames["test"], cfg.text_column, task, probabilities["test"], head.labels,
                                f"{run_name}: {task} test", f"{task}_")
        means = {split: float(np.mean([results[task][split]["macro_f1"] for task in TASKS]))
                 for split in ("train", "val", "test")}
        run.metrics({f"{split}/mean_macro_f1": value for split, value in means.items()})
        best_val = max(means["val"], fit_info.get("best_val_macro_f1") or 0.0)
        run.metrics({tracking.SELECTION_METRIC: best_val, "train/seconds": train_seconds})
        run.metrics(suite_result)
        run.dict(to_dict(cfg), "config/resolved.json")
        run.text(yaml.safe_dump(to_dict(cfg), sort_keys=False), "config/resolved.yaml")
        run.artifact(metrics.plot_curves(history, out / "learning_curves.png", run_name, "epoch"), "eval")

        model_dir = out / "model"
        classifier.save(model_dir)
        example = texts["test"][:3]
        example_output = tracking.multitask_predictions_frame(classifier.predict_tasks(example), {
            task: head.labels for task, head in classifier.heads.items()})
        name = registered_name(cfg) if cfg.tracking.register else None
        version = run.log_model(model_dir, example, example_output, name, metadata={
            **{f"{task}_temperature": head.temperature for task, head in classifier.heads.items()},
            **{f"{task}_uncertain_threshold": head.uncertain_threshold for task, head in classifier.heads.items()},
            "target_accuracy": cfg.calibration.target_accuracy})
        disk_mib, promoted = _disk_and_promotion(run, cfg, name, version, best_val, wall_started)
        flat = {split: {"macro_f1": means[split], **{f"{task}/{k}": v for task in TASKS
                                                     for k, v in results[task][split].items()}}
                for split in ("val", "test")}
        return TrainResult(run.id, run_name, flat["val"], flat["test"], best_val, run.model_dir or Path(),
                           version, promoted, train_seconds, disk_mib, suite_result)


def _log_test_artifacts(run: tracking.Run, out: Path, test: pd.DataFrame, text_column: str, task: str,
                        probabilities: np.ndarray, labels: list[str], title: str, prefix: str = "") -> None:
    """The test split's classification report, confusion matrix and misclassified sentences of one task."""
    label2id = {label: i for i, label in enumerate(labels)}
    y = test[task].map(label2id).to_numpy()
    predicted = probabilities.argmax(1)
    run.text(metrics.report_text(y, predicted, labels), f"eval/{prefix}classification_report_test.txt")
    run.artifact(metrics.plot_confusion(y, predicted, labels, out / f"{prefix}confusion_matrix_test.png", title),
                 "eval")
    wrong = test.assign(predicted=[labels[i] for i in predicted], confidence=probabilities.max(1))
    wrong = wrong[wrong["predicted"] != wrong[task]]
    wrong[["article_id", "sentence_index", text_column, task, "predicted", "confidence"]].to_csv(
        out / f"{prefix}misclassified_test.csv", index=False)
    run.artifact(out / f"{prefix}misclassified_test.csv", "eval")
