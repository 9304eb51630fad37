"""What the model families share: batching by token budget and the prediction fast paths."""

import itertools

import numpy as np
import pytest
import torch

from pipeline import config, tracking, train
from pipeline.data import load_split
from pipeline.models.base import FusedLinear, fixed_shape_batches, fixed_width, token_budget_batches
from pipeline.models.finetune import padded_batches


def test_token_budget_batches_cover_every_sentence_once_within_both_limits():
    lengths = [5, 40, 12, 12, 3, 90, 25, 7, 60, 18]
    batches = token_budget_batches(lengths, max_sentences=3, max_tokens=100)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) <= 3
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 100
    assert [lengths[i] for i in batches[-1]] == [90], "a sentence longer than the budget's share gets its own batch"
    # No token budget: fixed-size batches in length order.
    assert [len(b) for b in token_budget_batches(lengths, 4)] == [4, 4, 2]
    assert [lengths[i] for i in token_budget_batches(lengths, 4)[0]] == [3, 5, 7, 12]


def test_fixed_width_rounds_up_to_a_small_set_of_widths():
    lengths = (1, 4, 5, 41, 64, 65, 97, 128, 129, 300)
    assert [fixed_width(n) for n in lengths] == [4, 4, 8, 44, 64, 72, 104, 128, 160, 320]
    assert len({fixed_width(n) for n in range(1, 513)}) == 16 + 8 + 4 + 4


def _fewest_padded_tokens(lengths: list[int], shapes: list[tuple[int, int]]) -> float:
    """Brute force: every way to cut the sorted lengths into consecutive batches, each in its cheapest shape."""
    lengths = sorted(lengths)
    best = float("inf")
    for cuts in itertools.product((False, True), repeat=len(lengths) - 1):
        starts = [0] + [i + 1 for i, cut in enumerate(cuts) if cut] + [len(lengths)]
        total = 0.0
        for a, b in itertools.pairwise(starts):
            total += min((r * w for r, w in shapes if r >= b - a and w >= lengths[b - 1]), default=float("inf"))
        best = min(best, total)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_fixed_shape_batches_take_shapes_from_a_fixed_set_and_pad_the_fewest_tokens(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 27, size=9).tolist()
    batches = fixed_shape_batches(lengths, max_sentences=4, max_tokens=48, max_width=26)
    shapes = [(min(4, max(1, 48 // w)), w) for w in sorted({min(fixed_width(n), 26) for n in range(1, 30)})]
    assert sorted(i for idx, _, _ in batches for i in idx) == list(range(len(lengths)))
    for idx, rows, width in batches:
        assert (rows, width) in shapes
        assert len(idx) <= rows and max(lengths[i] for i in idx) <= width <= 26
    assert sum(rows * width for _, rows, width in batches) == _fewest_padded_tokens(lengths, shapes)


def test_fixed_shape_batches_meet_few_shapes_however_many_sentences():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(20):  # chunks of varied sentences, as scoring meets them
        lengths = rng.integers(3, 129, size=int(rng.integers(1, 400))).tolist()
        seen |= {(rows, width) for _, rows, width in fixed_shape_batches(lengths, 128, 4096, 128)}
    assert len(seen) <= 24  # one shape per width up to 128 tokens
    assert fixed_shape_batches([], 128, 4096, 128) == []
    with pytest.raises(ValueError, match="a sentence of 130 tokens is wider than max_width 128: truncate it"):
        fixed_shape_batches([12, 130], 128, 4096, 128)


def test_fixed_shapes_pad_batches_to_few_shapes_filled_with_copies(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = [" ".join(["word"] * n) for n in range(1, 60)]
    fixed = list(padded_batches(tokenizer, texts, 16, 128, batch_tokens=256, fixed_shapes=True))
    assert sorted(i for idx, _ in fixed for i in idx) == list(range(len(texts)))
    encoded = tokenizer(texts)
    for idx, batch in fixed:
        rows, width = batch["input_ids"].shape
        assert width == fixed_width(width) and rows == min(16, 256 // width)
        for row in range(rows):  # its sentences, then copies of the first
            ids = encoded["input_ids"][idx[row] if row < len(idx) else idx[0]]
            assert batch["input_ids"][row, : len(ids)].tolist() == ids
            assert batch["attention_mask"][row].sum() == len(ids)
    # Without a token budget, fixed_shapes changes nothing.
    unbudgeted = [b["input_ids"].shape for _, b in padded_batches(tokenizer, texts, 16, 128, fixed_shapes=True)]
    assert unbudgeted == [b["input_ids"].shape for _, b in padded_batches(tokenizer, texts, 16, 128)]


@pytest.fixture
def finetuned(tiny_corpus, tiny_bert, tmp_path, store):
    result = train.run(config.train_config("stance", "finetune", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}", f"model.encoder={tiny_bert}",
        "training.epochs=1", "training.batch_size=8", "tracking.register=false"]))
    return f"runs:/{result.run_id}/model"


def test_token_budget_changes_the_batches_not_the_predictions(finetuned, tiny_corpus):
    classifier = tracking.load_model(finetuned)
    classifier.set_fast_path("none")
    texts = load_split(tiny_corpus, "test").text.tolist()
    fixed = classifier.predict_proba(texts, 4)
    classifier.batch_tokens = 40
    np.testing.assert_allclose(classifier.predict_proba(texts, 64), fixed, atol=1e-5)
    classifier.fixed_shapes = True  # padding to a fixed width changes nothing either
    np.testing.assert_allclose(classifier.predict_proba(texts, 64), fixed, atol=1e-5)


def test_bf16_fast_path_casts_the_weights_once_and_stays_close_to_fp32(finetuned, tiny_corpus):
    classifier = tracking.load_model(finetuned)
    texts = load_split(tiny_corpus, "test").text.tolist()
    classifier.set_fast_path("none")
    fp32 = classifier.predict_proba(texts, 8)
    classifier.set_fast_path("bf16")
    assert {p.dtype for p in classifier.torch_module().parameters()} == {torch.bfloat16}
    bf16 = classifier.predict_proba(texts, 8)
    np.testing.assert_allclose(bf16, fp32, atol=0.05)
    with pytest.raises(ValueError, match=r"needs fp32 weights.*load the model again"):
        classifier.set_fast_path("none")
    with pytest.raises(ValueError, match="fast path 'fp16' is not one of none, autocast, bf16, fused, int8"):
        classifier.set_fast_path("fp16")


def test_fused_fast_path_runs_every_linear_layer_in_onednn_and_stays_close_to_fp32(finetuned, tiny_corpus):
    classifier = tracking.load_model(finetuned)
    texts = load_split(tiny_corpus, "test").text.tolist()
    classifier.set_fast_path("none")
    fp32 = classifier.predict_proba(texts, 8)
    module = classifier.torch_module()
    layers = module.config.num_hidden_layers
    classifier.set_fast_path("fused")
    assert not [m for m in module.modules() if isinstance(m, torch.nn.Linear)]
    fused = [m for m in module.modules() if isinstance(m, FusedLinear)]
    assert sum(m.activation == "gelu" for m in fused) == layers  # each feed-forward input layer took its GELU
    assert {m.weight.dtype for m in fused} == {torch.bfloat16}
    np.testing.assert_allclose(classifier.predict_proba(texts, 8), fp32, atol=0.05)
    with pytest.raises(ValueError, match=r"needs fp32 weights.*load the model again"):
        classifier.set_fast_path("autocast")
