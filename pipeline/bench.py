"""Benchmarks (``make bench``): ratios against a baseline measured in the same process, not timed tests.

scoring: sentences/s and peak memory of (a) ``transformers.pipeline`` one sentence at a time, (b) the
scorer in fp32, (c) the fast path; the ratios to (a); the fraction of this CPU's limit that (c)
reaches (a bf16 matrix multiply's FLOP/s divided by the encoder's FLOPs per sentence at the mean
length); and the fast path's macro-F1 change on the test split.
training: wall time and peak memory of training the default stance model, against the TF-IDF baseline.
serve: a bounded loopback load test of ``mlflow models serve``: concurrent clients, requests of 1-32
sentences; errors, p50/p95 latency, sentences/s, and the answer to one payload over the size limit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

from pipeline import calibration, config, metrics, paths, servers, tracking
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
    """The naive baseline: a transformers.pipeline called with one sentence at a time, then the model's
    temperature, as the scorer applies it."""
    return calibration.scale(_pipeline_one_at_a_time(classifier, texts), classifier.temperature)


def _pipeline_one_at_a_time(classifier, texts: list[str]) -> np.ndarray:
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


# ---------------------------------------------------------------- serving under load

LOOPBACK = ("127.0.0.1", "localhost", "::1")


@contextmanager
def served_model(model_uri: str, startup_s: float = 180.0) -> Iterator[tuple[str, subprocess.Popen]]:
    """``mlflow models serve`` of ``model_uri`` on a free 127.0.0.1 port; yields its base URL and process."""
    port = servers.free_port()
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.tracking_uri(),
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}  # it execs uvicorn by name
    command = [str(bin_dir / "mlflow"), "models", "serve", "-m", model_uri, "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port)]
    url = f"http://127.0.0.1:{port}"
    with servers.running(command, env, f"{url}/ping", startup_s) as process:
        yield url, process


def _post(url: str, texts: list[str], timeout: float) -> tuple[int, str]:
    payload = json.dumps({"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}).encode()
    request = urllib.request.Request(f"{url}/invocations", data=payload,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _server_rss_mib(process: subprocess.Popen | None) -> float:
    if process is None:
        return 0.0
    root = psutil.Process(process.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


def load_test(url: str, texts: list[str], clients: int = 8, requests: int = 400, max_sentences: int = 32,
              max_seconds: float = 300.0, seed: int = 0, request_timeout: float = 60.0) -> dict[str, Any]:
    """``requests`` POSTs of 1..``max_sentences`` sentences from ``clients`` threads at once; stops sending
    new ones after ``max_seconds``. An answer other than 200 with one prediction per sentence is an error."""
    host = urllib.parse.urlparse(url).hostname
    if host not in LOOPBACK:
        raise BenchError(f"the load test only runs against a loopback address (127.0.0.1), not {url}")
    rng = random.Random(seed)
    batches = [[rng.choice(texts) for _ in range(rng.randint(1, max_sentences))] for _ in range(requests)]
    deadline = time.monotonic() + max_seconds
    errors: list[str] = []

    def one(batch: list[str]) -> tuple[float, int] | None:
        if time.monotonic() > deadline:
            return None
        started = time.perf_counter()
        try:
            status, body = _post(url, batch, request_timeout)
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            errors.append(f"{type(err).__name__}: {err}")
            return time.perf_counter() - started, 0
        seconds = time.perf_counter() - started
        if status != 200 or len(json.loads(body)["predictions"]) != len(batch):
            errors.append(f"HTTP {status}: {body[:200]}")
            return seconds, 0
        return seconds, len(batch)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        done = [r for r in pool.map(one, batches) if r is not None]
    wall = time.perf_counter() - started
    latencies = np.array([seconds for seconds, _ in done]) * 1000
    sentences = sum(n for _, n in done)
    return {
        "url": url, "clients": clients, "requests_planned": requests, "requests": len(done),
        "errors": len(errors), "first_error": errors[0] if errors else "",
        "sentences": sentences, "seconds": round(wall, 2),
        "sentences_per_s": round(sentences / wall, 1), "requests_per_s": round(len(done) / wall, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else 0.0,
        "p95_ms": round(float(np.percentile(latencies, 95)), 1) if len(latencies) else 0.0,
        "max_ms": round(float(latencies.max()), 1) if len(latencies) else 0.0,
    }


def run_serve(url: str = "", model_uri: str = "models:/stance-classifier@champion", clients: int = 8,
              requests: int = 400, max_sentences: int = 32, max_seconds: float = 300.0,
              corpus_dir: str = "data/corpus") -> dict[str, Any]:
    """Load-tests a running server at ``url`` (loopback only), or serves ``model_uri`` itself for the test."""
    tracking.setup()
    texts = load_split(corpus_dir, "test").text.tolist()
    with served_model(model_uri) if not url else _already_running(url) as (base, process):
        report = load_test(base, texts, clients, requests, max_sentences, max_seconds)
        oversize_rows = int(os.environ.get(tracking.MAX_ROWS_ENV) or tracking.DEFAULT_MAX_ROWS) + 1
        status, body = _post(base, [texts[0]] * oversize_rows, 120.0)
        report |= {"oversize_rows": oversize_rows, "oversize_status": status,
                   "oversize_says_too_large": "payload too large" in body,
                   "server_rss_mib": round(_server_rss_mib(process), 1)}
        alive, _ = _post(base, texts[:2], 60.0)
        report["answers_after_oversize"] = alive == 200
    report["model"] = model_uri if not url else ""
    tracking.log_benchmark("serve", report)
    measurement = Measurement(f"serve: {report['requests']} requests, {clients} clients, 1-{max_sentences} "
                              f"sentences each", report["seconds"], report["sentences"], 0.0)
    return {"measurements": [measurement], "report": report}


@contextmanager
def _already_running(url: str) -> Iterator[tuple[str, None]]:
    yield url.rstrip("/"), None
