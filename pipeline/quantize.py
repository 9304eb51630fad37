"""Quantise stage: the multi-task champion in int8 (OpenVINO + NNCF), behind a quality gate.

``run(cfg)`` loads ``cfg.source_model``, converts it to OpenVINO, quantises it with NNCF on
``calibration_sentences`` training sentences (``keep``: layers left in bf16; see ``pipeline.int8``), refits
each head's temperature and ``uncertain`` threshold on validation, and measures both models on validation
and test in the same process: the source on its scoring path (bf16 weights, token-budget batches) and the
int8 model. One MLflow run in the multitask experiment holds it all (``stance/val/macro_f1``,
``stance/val/change_points``, ...). The model is registered as ``news-classifier-int8`` and becomes its
``champion`` only if it loses at most ``max_loss_points`` of validation macro-F1 on each task (the gate);
``pipeline score --model int8`` then scores with it. Speed is measured by ``python -m pipeline bench int8``.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

from pipeline import calibration, int8, metrics, tracking
from pipeline.config import QuantizeConfig, ScoreConfig, to_dict
from pipeline.data import data_version, label_maps, load_split
from pipeline.errors import PipelineError
from pipeline.models.multitask import OPENVINO, TASKS, MultiTaskClassifier
from pipeline.train import MULTITASK_EXPERIMENT, calibrate

SPLITS = ("val", "test")


class QuantizeError(PipelineError):
    """The source model cannot be quantised; the message says which model to pass instead."""


@dataclasses.dataclass
class QuantizeResult:
    run_id: str
    run_name: str
    source: dict[str, dict[str, float]]  # split -> {"stance": macro-F1, "sentiment": macro-F1}
    int8: dict[str, dict[str, float]]
    passes: bool  # within max_loss_points of the source on validation, on both tasks
    registered_version: str | None
    promoted: bool
    quantize_seconds: float

    def change_points(self, split: str) -> dict[str, float]:
        return change_points(self.int8, self.source, split)


def change_points(int8_f1: dict[str, dict[str, float]], source_f1: dict[str, dict[str, float]],
                  split: str) -> dict[str, float]:
    """Per task, the int8 model's macro-F1 minus the source's on ``split``, in points."""
    return {task: 100 * (int8_f1[split][task] - source_f1[split][task]) for task in TASKS}


def _source(uri: str) -> MultiTaskClassifier:
    classifier = tracking.load_model(uri)
    if classifier.family != "multitask" or classifier.torch_module() is None:
        raise QuantizeError(f"{uri} is not a PyTorch multi-task model (family {classifier.family}); pass a "
                            "news-classifier URI (make train-multitask)")
    return classifier


def run(cfg: QuantizeConfig) -> QuantizeResult:
    tracking.setup(cfg.tracking.tracking_uri)
    source = _source(cfg.source_model)
    pinned, described = tracking.resolve_model(cfg.source_model)
    frames = {split: load_split(cfg.corpus_dir, split) for split in ("train", *SPLITS)}
    train_texts = frames["train"].text
    calibration_texts = train_texts.sample(min(cfg.calibration_sentences, len(train_texts)),
                                           random_state=cfg.seed).tolist()
    ys = {task: {split: frames[split][task].map(label_maps(task)[0]).to_numpy() for split in SPLITS}
          for task in TASKS}

    started = time.perf_counter()
    quantized = int8.quantize(int8.convert(source), source, calibration_texts, cfg.keep, cfg.batch_tokens)
    quantize_seconds = time.perf_counter() - started
    model = MultiTaskClassifier({task: head.id2label for task, head in source.heads.items()}, source.model_cfg)
    model.tokenizer, model.batch_tokens = source.tokenizer, cfg.batch_tokens
    model.compiled = int8.OpenVinoModel(quantized, model)

    source.set_fast_path(ScoreConfig().fast_path)  # what pipeline score runs: the figures to hold int8 against
    source.batch_tokens = cfg.batch_tokens
    raw = {name: {split: m.raw_proba_tasks(frames[split].text.tolist(), 128) for split in SPLITS}
           for name, m in (("source", source), ("int8", model))}
    macro = {name: {split: {task: metrics.compute(ys[task][split], raw[name][split][task],
                                                  source.heads[task].labels)["macro_f1"] for task in TASKS}
                    for split in SPLITS} for name in raw}
    change = {split: change_points(macro["int8"], macro["source"], split) for split in SPLITS}
    passes = all(points >= -cfg.max_loss_points for points in change["val"].values())

    run_name = f"int8-{source.model_cfg.encoder}-{uuid.uuid4().hex[:6]}"
    tags = {"task": "both", "model_family": "multitask", "model": f"multitask-{source.model_cfg.encoder}-int8",
            "data_version": data_version(cfg.corpus_dir), "git_commit": tracking.git_commit(),
            "source_model": described, "passes_gate": str(passes).lower()}
    with tracking.start_run(MULTITASK_EXPERIMENT, run_name, tags, cfg.tracking.tracking_uri) as run, \
            tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        run.params({"source_model": pinned, "runtime": OPENVINO, "keep": ",".join(cfg.keep),
                    "calibration_sentences": len(calibration_texts), "batch_tokens": cfg.batch_tokens,
                    "max_loss_points": cfg.max_loss_points, "seed": cfg.seed})
        for task in TASKS:
            head = model.heads[task]
            task_raw = {split: raw["int8"][split][task] for split in SPLITS}
            calibrate(head, cfg.calibration, task_raw, ys[task], run, out / f"{task}_reliability_diagram.png",
                      prefix=f"{task}/")
            for split in SPLITS:
                scaled = calibration.scale(task_raw[split], head.temperature)
                values = metrics.compute(ys[task][split], scaled, head.labels)
                run.metrics({f"{task}/{split}/{k}": v for k, v in values.items()} | {
                    f"{task}/{split}/source_macro_f1": macro["source"][split][task],
                    f"{task}/{split}/change_points": change[split][task]})
        mean_val = float(np.mean([macro["int8"]["val"][task] for task in TASKS]))
        run.metrics({"val/mean_macro_f1": mean_val, tracking.SELECTION_METRIC: mean_val,
                     "quantize/seconds": quantize_seconds, "quantize/passes_gate": float(passes),
                     "quantize/int8_matmuls": float(model.compiled.int8_matmuls())})
        run.dict(to_dict(cfg), "config/resolved.json")

        model_dir = out / "model"
        model.save(model_dir)
        example = frames["test"].text.tolist()[:3]
        example_output = tracking.multitask_predictions_frame(model.predict_tasks(example), {
            task: head.labels for task, head in model.heads.items()})
        name = tracking.REGISTERED_NAMES["int8"] if cfg.tracking.register else None
        version = run.log_model(model_dir, example, example_output, name, metadata={
            "source_model": described, "runtime": OPENVINO, "passes_gate": passes},
            extra_requirements=tracking.INT8_REQUIREMENTS)
        promoted = bool(version) and ((cfg.tracking.auto_promote and passes) or cfg.tracking.promote)
        if promoted:
            tracking.set_champion(name, version)
        run.tags({"champion_at_training": str(promoted).lower()})
        return QuantizeResult(run.id, run_name, macro["source"], macro["int8"], passes, version, promoted,
                              quantize_seconds)
