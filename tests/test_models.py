"""What the model families share: batching by token budget and the prediction fast paths."""

import numpy as np
import pytest
import torch

from pipeline import config, tracking, train
from pipeline.data import load_split
from pipeline.models.base import FusedLinear, fixed_width, token_budget_batches
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
    lengths = (1, 8, 9, 41, 64, 65, 97, 128, 129, 300)
    assert [fixed_width(n) for n in lengths] == [8, 8, 16, 48, 64, 80, 112, 128, 160, 320]
    assert len({fixed_width(n) for n in range(1, 513)}) == 8 + 4 + 4 + 4


def test_token_budget_counts_the_padded_width():
    assert [len(b) for b in token_budget_batches([30, 31, 33], 8, max_tokens=100)] == [3]  # 3 x 33 <= 100
    # Padded to fixed_width(33) = 40 tokens, only 2 fit in 100.
    assert [len(b) for b in token_budget_batches([30, 31, 33], 8, max_tokens=100, width=fixed_width)] == [2, 1]
    assert [len(b) for b in token_budget_batches([30, 31, 32, 32], 8, max_tokens=128, width=fixed_width)] == [4]


def test_fixed_shapes_pad_batches_to_few_widths(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = [" ".join(["word"] * n) for n in range(1, 60)]
    tight = list(padded_batches(tokenizer, texts, 16, 128, batch_tokens=256))
    fixed = list(padded_batches(tokenizer, texts, 16, 128, batch_tokens=256, fixed_shapes=True))
    assert sorted(i for idx, _ in fixed for i in idx) == list(range(len(texts)))
    widths = {batch["input_ids"].shape[1] for _, batch in fixed}
    assert widths <= {fixed_width(n) for n in range(1, 129)}
    assert len(widths) < len({batch["input_ids"].shape[1] for _, batch in tight})
    for _, batch in fixed:
        assert batch["input_ids"].numel() <= 256
        lengths = batch["attention_mask"].sum(1).tolist()
        assert batch["input_ids"].shape[1] == fixed_width(max(lengths))
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
