"""Benchmarks (``make bench``): ratios against a baseline measured in the same process, not timed tests.

scoring: sentences/s with both labels and peak memory of (a) one ``transformers.pipeline`` per task, one
sentence at a time, (b) the two single-task models in batches under bf16 autocast, (c) ``pipeline
score`` end to end with the multi-task model on its fast path; an ablation of that fast path; the ratios;
the fraction of this CPU's limit (bf16 GEMM FLOP/s at the model's own shapes over the FLOPs per sentence
counted by ``torch.utils.flop_counter``); and the macro-F1 change on both tasks on the test split.
int8: the multi-task model in int8 (PyTorch dynamic; OpenVINO with NNCF) against its bf16 scoring path:
sentences/s and the macro-F1 change on both tasks, and whether int8 passes the quality gate.
memory: peak resident memory of ``pipeline score`` on a small and on a 100,000-sentence input.
training: wall time and peak memory of training the default stance model, against the TF-IDF baseline.
serve: a bounded loopback load test of ``mlflow models serve``: concurrent clients, requests of 1-32
sentences; errors, p50/p95 latency, sentences/s, and the answer to one payload over the size limit.
"""

from __future__ import annotations

import collections
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
import pandas as pd
import psutil
import pyarrow.parquet as pq
import torch

from pipeline import calibration, config, metrics, paths, segment, servers, tracking
from pipeline.data import label_maps, load_split
from pipeline.errors import PipelineError
from pipeline.models.base import FusedLinear

LINEARS = (torch.nn.Linear, FusedLinear)


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
    startup_seconds: float = 0.0  # a one-off cost left out of ``seconds`` (loading the model)

    @property
    def rate(self) -> float:
        return self.items / self.seconds


def measure(name: str, items: int, work: Callable[[], Any]) -> tuple[Measurement, Any]:
    with PeakMemory() as memory:
        started = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - started
    return Measurement(name, seconds, items, memory.mib), result


def gemm_flops_per_s(model: torch.nn.Module, rows: int, repeats: int = 20) -> float:
    """bf16 FLOP/s of this CPU at the encoder's own GEMM shapes: a ``rows`` x hidden activation through each
    distinct Linear weight shape of the model (attention projections, feed-forward in and out), weighted by
    their FLOPs, each shape timed with ``torch.nn.functional.linear`` and with oneDNN's linear kernel (what
    the ``fused`` fast path runs), whichever is faster. This is the ceiling for the encoder's dense
    layers, which hold almost all its work."""
    shapes = collections.Counter(tuple(m.weight.shape) for m in model.modules() if isinstance(m, LINEARS))
    kernels = (torch.nn.functional.linear, lambda x, w: torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], ""))
    flops = seconds = 0.0
    with torch.inference_mode():
        for (out_features, in_features), count in shapes.items():
            x = torch.randn(rows, in_features, dtype=torch.bfloat16)
            w = torch.randn(out_features, in_features, dtype=torch.bfloat16)
            fastest = float("inf")
            for kernel in kernels:
                kernel(x, w)  # warm-up
                started = time.perf_counter()
                for _ in range(repeats):
                    kernel(x, w)
                fastest = min(fastest, time.perf_counter() - started)
            seconds += count * fastest
            flops += count * 2 * rows * in_features * out_features * repeats
    return flops / seconds


def counted_flops_per_sentence(classifier, texts: list[str], batch_size: int) -> float:
    """The model's FLOPs per sentence, counted by ``torch.utils.flop_counter`` on its real batches of
    ``texts`` (the batching and precision that the classifier is set to)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        _predict(classifier, texts, batch_size)
    return counter.get_total_flops() / len(texts)


def _predict(classifier, texts: list[str], batch_size: int) -> dict[str, np.ndarray]:
    """Calibrated probabilities per task, from a multi-task model or a single-task one."""
    if classifier.family == "multitask":
        return classifier.predict_tasks(texts, batch_size)
    return {classifier.task: classifier.predict_proba(texts, batch_size)}


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


def _load_encoder_model(uri: str, what: str, make_it: str):
    classifier = tracking.load_model(uri)  # a missing model: ModelLoadError says so
    if classifier.torch_module() is None:
        raise BenchError(f"{uri} is a {classifier.family} model, but the scoring benchmark needs an encoder model "
                         f"as {what}: {make_it}, or pass another URI")
    return classifier


def _joined_articles(frames: list[pd.DataFrame]) -> list[tuple[str, str, int]]:
    """(article id, its sentences joined again, how many) for each article of ``frames``."""
    return [(article_id, " ".join(rows.text), len(rows)) for frame in frames
            for article_id, rows in frame.groupby("article_id", sort=False)]


def _write_articles(frames: list[pd.DataFrame], path: Path, n_sentences: int = 0) -> Path:
    """The articles of ``frames`` (``_joined_articles``) as a JSON Lines input for ``pipeline score``:
    each once, or, with ``n_sentences``, repeated under new ids until the input holds that many sentences."""
    articles = _joined_articles(frames)
    written = copy = 0
    with path.open("w") as out:
        while True:
            for article_id, text, size in articles:
                out.write(json.dumps({"id": f"{article_id}-copy{copy}" if copy else article_id, "text": text}) + "\n")
                written += size
                if n_sentences and written >= n_sentences:
                    return path
            if not n_sentences or not articles:
                return path
            copy += 1


def _test_articles(corpus_dir: str, n_sentences: int) -> pd.DataFrame:
    """The test split, or its first whole articles up to the first to reach ``n_sentences`` (0: all)."""
    test = load_split(corpus_dir, "test")
    if n_sentences:
        sizes = test.groupby("article_id", sort=False).size()
        keep = sizes.index[: int(np.searchsorted(sizes.cumsum().to_numpy(), n_sentences)) + 1]
        test = test[test.article_id.isin(keep)]
    return test


def run_scoring(n_sentences: int = 0, naive_sentences: int = 200, batch_tokens: int = 4096,
                max_batch_sentences: int = 128, try_compile: bool = False,
                stance_model: str = "models:/stance-classifier@champion",
                sentiment_model: str = "models:/sentiment-classifier@champion",
                multitask_model: str = "models:/news-classifier@champion",
                fast_model: str = "models:/news-classifier-fast@champion",
                corpus_dir: str = str(paths.DATA / "corpus"), rounds: int = 3) -> dict[str, Any]:
    """Sentences/s with both labels, on the test split's sentences (``n_sentences`` of them; 0 = all):
    (a) one ``transformers.pipeline`` per task (the single-task champions), one sentence at a time, on the
    first ``naive_sentences``; (b) the two single-task champions, bf16 autocast, batches of 32 (the path
    before the multi-task model); (c) ``pipeline score`` end to end with the multi-task champion (segmenting,
    attribution, summaries and files included) on the same articles. An ablation of the multi-task model's
    prediction alone (fp32, autocast, bf16 weights, token budget, compile) shows what each step buys; the
    limit is this CPU's bf16 GEMM FLOP/s at the model's own shapes over its counted FLOPs per sentence. The
    model on the fast path and (c) run ``rounds`` times, each between two probes of the limit.
    When ``fast_model`` (the distilled tier) is registered, (d) is ``pipeline score`` with it, and its
    macro-F1 is measured on the same path (bf16 weights, token budget)."""
    tracking.setup()
    stance = _load_encoder_model(stance_model, "the stance model",
                                 "make train TASK=stance MODEL=finetune ARGS='--set model.encoder=mpnet'")
    sentiment = _load_encoder_model(sentiment_model, "the sentiment model",
                                    "make train TASK=sentiment MODEL=finetune ARGS='--set model.encoder=mpnet'")
    multitask = _load_encoder_model(multitask_model, "the multi-task model", "make train-multitask")
    if multitask.family != "multitask":
        raise BenchError(f"{multitask_model} is a {multitask.family} model, not a multitask one")
    test = _test_articles(corpus_dir, n_sentences)
    texts = test.text.tolist()
    truth = {task: test[task].map(label_maps(task)[0]).to_numpy() for task in ("stance", "sentiment")}
    f1: dict[str, dict[str, float]] = {}

    def score_f1(name: str, predicted: dict[str, np.ndarray]) -> None:
        labels = {"stance": stance.labels, "sentiment": sentiment.labels}
        f1[name] = {task: metrics.compute(truth[task], p, labels[task])["macro_f1"] for task, p in predicted.items()}

    # The work a sentence needs, counted before the ablation fuses the Linear layers (flop_counter does not
    # count oneDNN's fused kernel) on batches padded only to their longest sentence, so the padding that
    # fixed shapes add counts against the fraction of the limit, not for it. (c) scores the sentences that
    # segmenting the articles gives (fewer and longer than the split's), so its own are counted for it.
    multitask.batch_tokens, multitask.fixed_shapes = batch_tokens, False
    per_sentence = counted_flops_per_sentence(multitask, texts, max_batch_sentences)
    scored_texts = [s.text for _, text, _ in _joined_articles([test]) for s in segment.split(text)]
    per_scored_sentence = counted_flops_per_sentence(multitask, scored_texts, max_batch_sentences)
    rows: list[Measurement] = []
    naive = texts[:naive_sentences]
    m, _ = measure("(a) transformers.pipeline per task, one sentence at a time", len(naive),
                   lambda: (_one_at_a_time(stance, naive), _one_at_a_time(sentiment, naive)))
    rows.append(m)
    # Each timed path runs once untimed on a slice first: the CPU kernels for new shapes are built then,
    # as they would be early in a long scoring job (without it the first path measured pays for them).
    warm = texts[:256]
    stance.predict_proba(warm, 32), sentiment.predict_proba(warm, 32)
    m, (p_stance, p_sentiment) = measure("(b) two single-task models, bf16 autocast, 32 per batch", len(texts),
                                         lambda: (stance.predict_proba(texts, 32), sentiment.predict_proba(texts, 32)))
    rows.append(m)
    score_f1("b", {"stance": p_stance, "sentiment": p_sentiment})

    ablation = [("fp32", "none", 0, 32, False), ("bf16 autocast", "autocast", 0, 32, False),
                ("bf16 weights", "bf16", 0, 32, False),
                (f"bf16 weights, token budget {batch_tokens}", "bf16", batch_tokens, max_batch_sentences, False),
                (f"bf16 weights, token budget {batch_tokens}, fixed shapes", "bf16", batch_tokens,
                 max_batch_sentences, True),
                (f"fused Linear layers, token budget {batch_tokens}, fixed shapes", "fused", batch_tokens,
                 max_batch_sentences, True)]
    module = multitask.torch_module()
    lengths = [len(ids) for ids in multitask.tokenizer(texts, truncation=True,
                                                        max_length=multitask.model_cfg.max_length)["input_ids"]]
    gemm_rows = batch_tokens or 32 * int(np.mean(lengths))
    *steps, (fast_name, *fast_setting) = ablation
    for name, mode, tokens, size, fixed in steps:
        _set_path(multitask, mode, tokens, fixed, size, warm)
        m, predicted = measure(f"multi-task model: {name}", len(texts),
                               lambda size=size: multitask.predict_tasks(texts, size))
        rows.append(m)
        score_f1(name, predicted)

    # This VM's speed changes within seconds (CPU steal: GEMM probes seconds apart have differed 1.8x), so the
    # model on the fast path and (c) run in rounds, each right after and before a probe of the limit; a path's
    # fraction of the limit is the median over rounds of its rate against the mean of the probes around it,
    # and its row keeps its median round.
    _set_path(multitask, *fast_setting, warm)
    gemm_probes = [gemm_flops_per_s(module, gemm_rows)]
    model_rounds: list[tuple[float, Measurement]] = []
    c_rounds: list[tuple[float, Measurement]] = []
    with tempfile.TemporaryDirectory() as tmp:
        inputs = _write_articles([test], Path(tmp) / "articles.jsonl")
        for _ in range(rounds):
            m, predicted = measure(f"multi-task model: {fast_name}", len(texts),
                                   lambda: multitask.predict_tasks(texts, max_batch_sentences))
            gemm_probes.append(gemm_flops_per_s(module, gemm_rows))
            model_rounds.append((m.rate * per_sentence / np.mean(gemm_probes[-2:]), m))
            m = _timed_score("(c) pipeline score, multi-task model, fused bf16, token budget, fixed shapes "
                             "(end to end, model loading apart)",
                             multitask_model, inputs, batch_tokens, max_batch_sentences)
            gemm_probes.append(gemm_flops_per_s(module, gemm_rows))
            c_rounds.append((m.rate * per_scored_sentence / np.mean(gemm_probes[-2:]), m))
        score_f1(fast_name, predicted)
        fast_rate = _fast_tier(fast_model, inputs, texts, warm, batch_tokens, max_batch_sentences, score_f1)
    model_fraction, model_row = _median_round(model_rounds)
    c_fraction, c_row = _median_round(c_rounds)
    rows.append(model_row)
    compiled_rate = None
    if try_compile:
        multitask.model = torch.compile(multitask.model, dynamic=True)
        m_warm, _ = measure("multi-task model: torch.compile (first call: compiling)", len(texts[:64]),
                            lambda: multitask.predict_tasks(texts[:64], max_batch_sentences))
        m, predicted = measure("multi-task model: + torch.compile (inductor)", len(texts),
                               lambda: multitask.predict_tasks(texts, max_batch_sentences))
        rows += [m_warm, m]
        compiled_rate = m.rate
        score_f1("compile", predicted)
    rows.append(c_row)

    gemm = float(np.median(gemm_probes))
    limit, scored_limit = gemm / per_sentence, gemm / per_scored_sentence
    a, b, c = rows[0], rows[1], rows[-1]
    report = {
        "stance_model": stance_model, "sentiment_model": sentiment_model, "multitask_model": multitask_model,
        "sentences": len(texts), "naive_sentences": len(naive), "c_sentences": c.items,
        "mean_tokens": round(float(np.mean(lengths)), 1), "threads": torch.get_num_threads(),
        "a_sentences_per_s": round(a.rate, 2), "b_sentences_per_s": round(b.rate, 2),
        "c_sentences_per_s": round(c.rate, 2), "c_peak_mib": round(c.peak_mib, 1),
        "c_model_load_seconds": round(c.startup_seconds, 1),
        "c_with_load_sentences_per_s": round(c.items / (c.seconds + c.startup_seconds), 2),
        "c_over_a": round(c.rate / a.rate, 2), "c_over_b": round(c.rate / b.rate, 2),
        **{f"ablation_{i}_sentences_per_s": round(r.rate, 2) for i, r in enumerate(rows[2:2 + len(ablation)])},
        "rounds": rounds,
        "bf16_gemm_gflops_at_model_shapes": float(f"{gemm / 1e9:.4g}"),
        "gemm_probes_gflops": [float(f"{g / 1e9:.4g}") for g in gemm_probes],
        "counted_gflops_per_sentence": float(f"{per_sentence / 1e9:.4g}"),
        "limit_sentences_per_s": round(limit, 1),
        "model_fraction_of_limit": float(f"{model_fraction:.4g}"),
        "model_fractions_by_round": [float(f"{f:.4g}") for f, _ in model_rounds],
        "c_counted_gflops_per_sentence": float(f"{per_scored_sentence / 1e9:.4g}"),
        "c_limit_sentences_per_s": round(scored_limit, 1),
        "c_fraction_of_limit": float(f"{c_fraction:.4g}"),
        "c_fractions_by_round": [float(f"{f:.4g}") for f, _ in c_rounds],
        **({"compiled_sentences_per_s": round(compiled_rate, 2)} if compiled_rate else {}),
        **({"fast_model": fast_model, "d_sentences_per_s": round(fast_rate.rate, 2),
            "d_over_c": round(fast_rate.rate / c.rate, 2),
            **{f"{task}_test_macro_f1_d": round(f1["fast"][task], 4) for task in ("stance", "sentiment")}}
           if fast_rate else {}),
        **{f"{task}_test_macro_f1_b": round(f1["b"][task], 4) for task in ("stance", "sentiment")},
        **{f"{task}_test_macro_f1_c": round(f1[fast_name][task], 4) for task in ("stance", "sentiment")},
        **{f"{task}_macro_f1_change_points": round(100 * (f1[fast_name][task] - f1["b"][task]), 2)
           for task in ("stance", "sentiment")},
        **{f"{task}_fast_path_change_points": round(100 * (f1[fast_name][task] - f1["fp32"][task]), 2)
           for task in ("stance", "sentiment")},
    }
    tracking.log_benchmark("scoring", report)
    return {"measurements": rows + ([fast_rate] if fast_rate else []), "report": report}


def _set_path(classifier, mode: str, batch_tokens: int, fixed_shapes: bool, size: int, warm: list[str]) -> None:
    """Puts the multi-task model on a fast path and batching, and runs it once untimed on ``warm``."""
    classifier.set_prediction(mode, batch_tokens, fixed_shapes)
    classifier.predict_tasks(warm, size)


def _median_round(rounds: list[tuple[float, Measurement]]) -> tuple[float, Measurement]:
    """The median fraction of the limit over the rounds, and the round with the median rate."""
    by_rate = sorted(rounds, key=lambda r: r[1].rate)
    return float(np.median([fraction for fraction, _ in rounds])), by_rate[len(by_rate) // 2][1]


def _timed_score(name: str, multitask_model: str, inputs: Path, batch_tokens: int,
                 max_batch_sentences: int) -> Measurement:
    """``pipeline score`` of ``inputs`` with a multi-task model on the fast path, timed end to end (reading,
    segmenting, predicting, attribution, summaries, every output file, the MLflow run) except the one-off
    loading of the model, which the measurement keeps apart as ``startup_seconds``: a day's scoring job
    loads it once, a benchmark of 1,651 sentences would pay it in every sentence."""
    from pipeline import score

    cfg = config.load(config.ScoreConfig, [], ["models=multitask", f"multitask_model={multitask_model}",
                                               "fast_path=fused", f"batch_tokens={batch_tokens}",
                                               f"batch_size={max_batch_sentences}"])
    with tempfile.TemporaryDirectory() as out:
        m, result = measure(name, 0, lambda: score.run(cfg, [str(inputs)], out, fresh=True))
    m.items, m.seconds, m.startup_seconds = result.sentences, m.seconds - result.load_seconds, result.load_seconds
    return m


def _fast_tier(uri: str, inputs: Path, texts: list[str], warm: list[str], batch_tokens: int,
               max_batch_sentences: int, score_f1) -> Measurement | None:
    """(d): ``pipeline score`` end to end with the distilled tier, and its macro-F1 (via ``score_f1``) on
    the same fast path; None when no fast tier is registered."""
    try:
        fast = tracking.load_model(uri)
    except tracking.ModelLoadError:
        return None
    fast.set_fast_path(config.ScoreConfig().fast_path)
    fast.batch_tokens = batch_tokens
    fast.predict_tasks(warm, max_batch_sentences)
    score_f1("fast", fast.predict_tasks(texts, max_batch_sentences))
    return _timed_score("(d) pipeline score, the fast tier (distilled MiniLM), same path (model loading apart)",
                        uri, inputs, batch_tokens, max_batch_sentences)


# run_int8's rows: report key prefix -> row name.
INT8_ROWS = {
    "bf16": "multi-task model, bf16 weights, fused Linear layers, token budget (the scoring path)",
    "torch_int8": "PyTorch dynamic int8, per-tensor weights (fast_path: int8)",
    "openvino_bf16": "OpenVINO, bf16",
    "openvino_int8": "OpenVINO + NNCF int8, per-channel weights, the rest bf16",
    "openvino_int8_keep_ffn": "OpenVINO + NNCF int8, feed-forward output layers kept in bf16",
}
# ... and, when an int8 model is registered (pipeline quantize), pipeline score end to end with each.
INT8_SCORE_ROWS = {
    "score_bf16": "pipeline score, the multi-task model, fused bf16 (end to end, model loading apart)",
    "score_int8": "pipeline score --model int8, the registered int8 model (end to end, model loading apart)",
}


def run_int8(n_sentences: int = 0, calibration_sentences: int = 300, batch_tokens: int = 4096,
             max_batch_sentences: int = 128, multitask_model: str = "models:/news-classifier@champion",
             max_loss_points: float = 0.5, rounds: int = 3,
             int8_model: str = "models:/news-classifier-int8@champion",
             corpus_dir: str = str(paths.DATA / "corpus")) -> dict[str, Any]:
    """Int8 against the scoring path, in one process on the test split's sentences (``n_sentences``; 0 =
    all): the multi-task model with bf16 weights (what ``pipeline score`` runs: the baseline), PyTorch's
    dynamic int8, OpenVINO in bf16, and OpenVINO with NNCF int8 (calibrated on ``calibration_sentences``
    training sentences), with every Linear layer quantised and with the feed-forward output layers kept in
    bf16. All paths are built first and run once untimed; then ``rounds`` rounds time each path in turn and
    a row keeps its median round, so that a slow spell of a shared machine hits every path alike. Per row:
    sentences/s, ratio to the baseline, macro-F1 on both tasks and its change in points. An int8 row passes
    when it is faster than the baseline and loses at most ``max_loss_points`` on either task. When
    ``int8_model`` is registered, the rounds also time ``pipeline score`` end to end with the multi-task
    model and with it (``score_int8_over_bf16``)."""
    from pipeline import int8

    if rounds < 1:
        raise BenchError(f"rounds must be at least 1, found {rounds}: pass --rounds 3")
    tracking.setup()
    classifier = _load_encoder_model(multitask_model, "the multi-task model", "make train-multitask")
    if classifier.family != "multitask":
        raise BenchError(f"{multitask_model} is a {classifier.family} model, not a multitask one")
    test = _test_articles(corpus_dir, n_sentences)
    texts = test.text.tolist()
    train_texts = load_split(corpus_dir, "train").text
    calibration = train_texts.sample(min(calibration_sentences, len(train_texts)), random_state=0).tolist()

    # OpenVINO first: conversion needs the fp32 weights that the bf16 fast path replaces.
    compiled = {"openvino_bf16": int8.OpenVinoModel(int8.convert(classifier), classifier)}
    quantizing = []
    for key, keep in (("openvino_int8", ()), ("openvino_int8_keep_ffn", (int8.FEED_FORWARD_OUTPUTS,))):
        m, quantized = measure(f"NNCF quantisation for: {INT8_ROWS[key]}", len(calibration),
                               lambda keep=keep: int8.quantize(int8.convert(classifier), classifier, calibration,
                                                               keep, batch_tokens))
        quantizing.append(m)
        compiled[key] = int8.OpenVinoModel(quantized, classifier)
    dynamic = tracking.load_model(multitask_model)
    dynamic.set_fast_path("int8")
    classifier.set_fast_path(config.ScoreConfig().fast_path)
    for model in (dynamic, classifier):
        model.batch_tokens = batch_tokens
    predict: dict[str, Callable[[list[str]], dict[str, np.ndarray]]] = {
        "bf16": lambda t: classifier.raw_proba_tasks(t, max_batch_sentences),
        "torch_int8": lambda t: dynamic.raw_proba_tasks(t, max_batch_sentences),
        **{key: lambda t, m=model: m.raw_proba_tasks(t, max_batch_sentences, batch_tokens)
           for key, model in compiled.items()}}

    f1: dict[str, dict[str, float]] = {}
    for key, run in predict.items():
        f1[key] = {task: metrics.compute(test[task].map(label_maps(task)[0]).to_numpy(), p,
                                         classifier.heads[task].labels)["macro_f1"] for task, p in run(texts).items()}
    timings: dict[str, list[Measurement]] = {key: [] for key in INT8_ROWS}
    scored = {"score_bf16": multitask_model, "score_int8": int8_model} if _registered(int8_model) else {}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = _write_articles([test], Path(tmp) / "articles.jsonl")
        timings |= {key: [] for key in scored}
        for _ in range(rounds):
            for key in INT8_ROWS:
                timings[key].append(measure(INT8_ROWS[key], len(texts), lambda run=predict[key]: run(texts))[0])
            for key, uri in scored.items():
                timings[key].append(_timed_score(INT8_SCORE_ROWS[key], uri, inputs, batch_tokens,
                                                 max_batch_sentences))
    rows = {key: sorted(ms, key=lambda m: m.seconds)[len(ms) // 2] for key, ms in timings.items()}

    base = rows["bf16"].rate
    report: dict[str, Any] = {"multitask_model": multitask_model, "sentences": len(texts),
                              "calibration_sentences": len(calibration), "threads": torch.get_num_threads(),
                              "rounds": rounds, "max_loss_points": max_loss_points}
    for key in INT8_ROWS:
        change = {task: 100 * (f1[key][task] - f1["bf16"][task]) for task in f1[key]}
        report |= {f"{key}_sentences_per_s": round(rows[key].rate, 2),
                   f"{key}_over_bf16": round(rows[key].rate / base, 3),
                   f"{key}_rounds_sentences_per_s": ", ".join(f"{m.rate:.1f}" for m in timings[key]),
                   **{f"{key}_{task}_test_macro_f1": round(f1[key][task], 4) for task in f1[key]},
                   **({f"{key}_{task}_change_points": round(c, 2) for task, c in change.items()}
                      if key != "bf16" else {})}
        if "int8" in key:
            report[f"{key}_passes"] = bool(rows[key].rate > base and min(change.values()) >= -max_loss_points)
        if key in compiled:
            report[f"{key}_int8_matmuls"] = compiled[key].int8_matmuls()
    report["int8_passes"] = any(report[f"{key}_passes"] for key in INT8_ROWS if "int8" in key)
    if scored:
        report |= {"int8_model": int8_model, **{f"{key}_sentences_per_s": round(rows[key].rate, 2) for key in scored},
                   **{f"{key}_rounds_sentences_per_s": ", ".join(f"{m.rate:.1f}" for m in timings[key])
                      for key in scored},
                   "score_int8_over_bf16": round(rows["score_int8"].rate / rows["score_bf16"].rate, 3)}
    tracking.log_benchmark("int8", {k: int(v) if isinstance(v, bool) else v for k, v in report.items()})
    return {"measurements": [*quantizing, *(rows[key] for key in [*INT8_ROWS, *scored])], "report": report}


def _registered(uri: str) -> bool:
    """Whether a models:/ URI resolves in the store (a registered name with that alias or version)."""
    try:
        tracking.resolve_model(uri)
    except tracking.ModelLoadError:
        return False
    return True


def _score_in_subprocess(inputs: Path, out: Path, overrides: list[str]) -> tuple[float, float]:
    """Runs ``python -m pipeline score`` on ``inputs``; returns its wall seconds and the peak resident
    memory (MiB) of its process tree, sampled every 0.2 s."""
    command = [sys.executable, "-m", "pipeline", "score", str(inputs), "--out", str(out), "--fresh",
               *[arg for o in overrides for arg in ("--set", o)]]
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking.tracking_uri()}
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while process.poll() is None:
        try:
            peak = max(peak, _server_rss_mib(process))
        except psutil.NoSuchProcess:  # it ended between poll() and the sample
            break
        time.sleep(0.2)
    stderr = process.stderr.read() if process.stderr else ""
    if process.returncode != 0:  # its last stderr line is the CLI's one-line error
        last = next((line for line in reversed(stderr.splitlines()) if line.strip()), "(no output)")
        raise BenchError(f"pipeline score exited with {process.returncode} on {inputs}: {last}")
    return time.perf_counter() - started, peak


def run_memory(n_sentences: int = 100_000, small_sentences: int = 5_000, overrides: list[str] | None = None,
               corpus_dir: str = str(paths.DATA / "corpus")) -> dict[str, Any]:
    """Peak resident memory of ``pipeline score`` (a separate process, with the scoring defaults and
    ``overrides``) on ``small_sentences`` and on ``n_sentences`` sentences: flat memory means the two
    peaks are about equal however large the input (goal: at most 1.5 GB)."""
    tracking.setup()
    overrides = overrides or []
    measurements, report = [], {"overrides": " ".join(overrides), "goal_mib": 1536}
    with tempfile.TemporaryDirectory() as tmp:
        frames = [load_split(corpus_dir, split) for split in ("train", "val", "test")]
        for label, n in (("small", small_sentences), ("large", n_sentences)):
            inputs = _write_articles(frames, Path(tmp) / f"articles-{n}.jsonl", n)
            seconds, peak = _score_in_subprocess(inputs, Path(tmp) / f"out-{n}", overrides)
            sentences = pq.read_metadata(Path(tmp) / f"out-{n}" / "sentences.parquet").num_rows
            measurements.append(Measurement(f"pipeline score, {sentences:,} sentences (peak RSS of the process)",
                                            seconds, sentences, peak))
            report |= {f"{label}_sentences": sentences, f"{label}_seconds": round(seconds, 1),
                       f"{label}_peak_rss_mib": round(peak, 1)}
    report["peak_ratio_large_to_small"] = round(report["large_peak_rss_mib"] / report["small_peak_rss_mib"], 3)
    report["within_goal"] = report["large_peak_rss_mib"] <= report["goal_mib"]
    tracking.log_benchmark("memory", report)
    return {"measurements": measurements, "report": report}


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
