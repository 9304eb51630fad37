"""What the model families share: batching by token budget and the prediction fast paths."""

import numpy as np
import pytest
import torch

from pipeline import config, tracking, train
from pipeline.data import load_split
from pipeline.models.base import token_budget_batches


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
    with pytest.raises(ValueError, match="fast path 'fp16' is not one of none, autocast, bf16, int8"):
        classifier.set_fast_path("fp16")
