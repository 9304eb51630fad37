"""Benchmarks (``make bench``): ratios against a baseline measured in the same process, not timed tests.

scoring: sentences/s and peak memory of (a) ``transformers.pipeline`` one sentence at a time, (b) the
scorer in fp32, (c) the fast path; the ratios to (a); the fraction of this CPU's limit that (c)
reaches (a bf16 matrix multiply's FLOP/s divided by the encoder's FLOPs per sentence at the mean
length); and the fast path's macro-F1 change on the test split.
training: wall time and peak memory of training the default stance model, against the TF-IDF baseline.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

from pipeline import config, metrics, paths, tracking
from pipeline.data import label_maps, load_split
from pipeline.errors import PipelineError


class BenchError(PipelineError):
    """A benchmark cannot run on what it was given; the message says what to pass instead."""


class PeakMemory:
    """Peak resident memory of this process while the block runs, above what it held at the start."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self.process = psutil.Process()

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)

    @property
    def mib(self) -> float:
        return (self.peak - self.start) / 2**20


@dataclasses.dataclass
class Measurement:
    name: str
    seconds: float
    items: int
    peak_mib: float

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def measure(name: str, items: int, work: Callable[[], Any]) -> tuple[Measurement, Any]:
    with PeakMemory() as memory:
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
    return Measurement(name, seconds, items, memory.mib), result


def bf16_matmul_flops(size: int = 2048, repeats: int = 10) -> float:
    """FLOP/s of a bf16 matrix multiply on this CPU: the ceiling for transformer inference."""
    a = torch.randn(size, size, dtype=torch.bfloat16)
    b = torch.randn(size, size, dtype=torch.bfloat16)
    torch.matmul(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.matmul(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def encoder_flops_per_sentence(model: torch.nn.Module, tokens: float) -> float:
    """2 FLOPs per weight per token for the dense layers, plus attention's T^2 terms."""
    cfg = model.config
    dense = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n and p.dim() == 2)
    attention = 4 * cfg.num_hidden_layers * tokens**2 * cfg.hidden_size
    return 2 * dense * tokens + attention


def _one_at_a_time(classifier, texts: list[str]) -> np.ndarray:
    """The naive baseline: a transformers.pipeline called with one sentence at a time."""
    from transformers import pipeline

    if classifier.family == "finetune":
        pipe = pipeline("text-classification", model=classifier.model, tokenizer=classifier.tokenizer,
                        device=-1, top_k=None)
        rows = []
        for text in texts:
            scores = pipe(text, truncation=True)
            scores = scores[0] if scores and isinstance(scores[0], list) else scores
            by_label = {d["label"]: d["score"] for d in scores}
            rows.append([by_label[label] for label in classifier.labels])
        return np.array(rows)
    encoder = classifier._encoder()
    pipe = pipeline("feature-extraction", model=encoder.model, tokenizer=encoder.tokenizer, device=-1)
    pooled = [np.asarray(pipe(t, truncation=True)[0]).mean(0) for t in texts]
    embeddings = np.stack(pooled)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return classifier.head.predict_proba(embeddings)


def run_scoring(model_uri: str = "", n_sentences: int = 5000, fast_path: str = "bf16",
                batch_size: int = 32) -> dict[str, Any]:
    """``model_uri`` "" takes the stance champion, or the newest registered encoder model if the champion
    is the TF-IDF baseline (which has no encoder to benchmark)."""
    tracking.setup()
    model_uri = model_uri or tracking.encoder_model_uri(tracking.REGISTERED_NAMES["stance"])
    classifier = tracking.load_model(model_uri)
    module = classifier.torch_module()
    if module is None:
        raise BenchError(f"{model_uri} is a {classifier.family} model: the scoring benchmark needs an encoder "
                         "(pass --model with a frozen, setfit or finetune model)")
    frames = [load_split(paths.DATA / "corpus", s) for s in ("train", "val", "test")]
    texts = [t for f in frames for t in f.text.tolist()][:n_sentences]
    test = frames[2]
    label2id, _ = label_maps(classifier.task)
    y_test = test[classifier.task].map(label2id).to_numpy()
    tokenizer = getattr(classifier, "tokenizer", None) or classifier._encoder().tokenizer
    mean_tokens = float(np.mean([len(ids) for ids in tokenizer(texts, truncation=True,
                                                                 max_length=classifier.model_cfg.max_length)["input_ids"]]))
    torch.set_num_threads(torch.get_num_threads())
    results = {}
    classifier.set_fast_path("none")
    results["a"], _ = measure("(a) transformers.pipeline, one sentence at a time", len(texts),
                              lambda: _one_at_a_time(classifier, texts))
    results["b"], _ = measure("(b) scorer fp32, length-sorted batches", len(texts),
                              lambda: classifier.predict_proba(texts, batch_size))
    fp32_f1 = metrics.compute(y_test, classifier.predict_proba(test.text.tolist(), batch_size),
                              classifier.labels)["macro_f1"]
    classifier.set_fast_path(fast_path)
    results["c"], _ = measure(f"(c) scorer fast path ({fast_path})", len(texts),
                              lambda: classifier.predict_proba(texts, batch_size))
    fast_f1 = metrics.compute(y_test, classifier.predict_proba(test.text.tolist(), batch_size),
                              classifier.labels)["macro_f1"]
    matmul = bf16_matmul_flops()
    per_sentence = encoder_flops_per_sentence(module, mean_tokens)
    limit = matmul / per_sentence
    report = {
        "model": model_uri, "family": classifier.family, "encoder": classifier.model_cfg.encoder,
        "sentences": len(texts), "mean_tokens": round(mean_tokens, 1), "threads": torch.get_num_threads(),
        **{f"{k}_sentences_per_s": round(m.rate, 1) for k, m in results.items()},
        **{f"{k}_peak_mib": round(m.peak_mib, 1) for k, m in results.items()},
        "b_over_a": round(results["b"].rate / results["a"].rate, 2),
        "c_over_a": round(results["c"].rate / results["a"].rate, 2),
        "bf16_matmul_gflops": round(matmul / 1e9, 1),
        "gflops_per_sentence": round(per_sentence / 1e9, 3),
        "limit_sentences_per_s": round(limit, 1),
        "c_fraction_of_limit": float(f"{results['c'].rate / limit:.4g}"),
        "test_macro_f1_fp32": round(fp32_f1, 4), f"test_macro_f1_{fast_path}": round(fast_f1, 4),
        "macro_f1_change_points": round(100 * (fast_f1 - fp32_f1), 2),
    }
    tracking.log_benchmark("scoring", report)
    return {"measurements": list(results.values()), "report": report}


def run_training(family: str = "finetune", encoder: str = "mpnet") -> dict[str, Any]:
    from pipeline import train

    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, tracking.temporary_store(f"sqlite:///{Path(tmp) / 'bench.db'}"):
        overrides = ["tracking.register=false", f"training.output_dir={tmp}/out"]
        baseline, _ = measure("TF-IDF baseline", 1, lambda: train.run(config.train_config(
            "stance", "tfidf", overrides=overrides)))
        default, result = measure(f"default stance model ({family}, {encoder})", 1, lambda: train.run(
            config.train_config("stance", family, overrides=[*overrides, f"model.encoder={encoder}"])))
    report = {"family": family, "encoder": encoder, "baseline_seconds": round(baseline.seconds, 1),
              "baseline_peak_mib": round(baseline.peak_mib, 1), "default_seconds": round(default.seconds, 1),
              "default_peak_mib": round(default.peak_mib, 1),
              "time_ratio_to_baseline": round(default.seconds / baseline.seconds, 2),
              "goal_seconds": 1200, "within_goal": default.seconds < 1200,
              "default_test_macro_f1": round(result.test["macro_f1"], 4)}
    tracking.log_benchmark("training", report)
    return {"measurements": [baseline, default], "report": report}
