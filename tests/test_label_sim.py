"""The labeling simulation on a tiny corpus: one writer's articles play the user's domain."""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline import config, label_sim
from pipeline.data import DataError
from tests.conftest import TINY_SENTENCES


def write_sim_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    layout = {"train": [(f"own-{i}", "w1") for i in range(10)] + [(f"other-{i}", "w2") for i in range(4)],
              "val": [("val-0", "v1")]}
    for split, articles in layout.items():
        rows = []
        for n, (article, writer) in enumerate(articles):
            rotated = TINY_SENTENCES[n % 10:] + TINY_SENTENCES[:n % 10]
            rows += [{"article_id": article, "sentence_index": i, "stance": stance, "sentiment": sentiment,
                      "text": f"{text} ({article}, {writer} wrote it as part {i} of {n})",
                      "stakeholder": holder, "writer": writer}
                     for i, (text, stance, sentiment, holder) in enumerate(rotated)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def sim_cfg(tmp_path: Path, *extra: str) -> config.LabelSimConfig:
    corpus = write_sim_corpus(tmp_path / "corpus")
    return config.load(config.LabelSimConfig, ["configs/label-sim.yaml"], [
        f"corpus_dir={corpus}", "writer=w1", "budgets=[5, 10, 20]", "random_seeds=[1, 2]", "max_per_article=2",
        f"out={tmp_path / 'sim'}", f"figure={tmp_path / 'sim' / 'curve.png'}", *extra])


def test_simulation_draws_a_curve_per_strategy_and_logs_it(tmp_path, store):
    result = label_sim.run(sim_cfg(tmp_path))
    table = result.table
    assert set(table.strategy) == {"margin", "entropy", "random"}
    assert sorted(table[table.strategy == "random"].seed.unique()) == [1, 2]
    for (strategy, seed), group in table.groupby(["strategy", "seed"]):
        assert list(group.labels) == [5, 10, 20], (strategy, seed)
    assert result.figure.stat().st_size > 10_000 and result.table_file.is_file()
    assert result.verdict.startswith("at 200 labels") or "no random curve at 200" in result.verdict
    client = MlflowClient(store)
    history = client.get_metric_history(result.run_id, "test_user/macro_f1_margin")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [5, 10, 20]
    assert {a.path for a in client.list_artifacts(result.run_id, "label-sim")} == {
        "label-sim/curve.png", "label-sim/label-sim.csv"}


def test_verdict_compares_with_random_at_200():
    curves = {"margin": {200: [0.71]}, "entropy": {200: [0.65]}, "random": {200: [0.66, 0.70]}}
    assert label_sim._verdict(curves) == ("at 200 labels: margin 0.710 is at or above random 0.680 (+0.030); "
                                          "entropy 0.650 is below random 0.680 (-0.030)")


def test_the_writer_must_be_a_training_writer(tmp_path):
    with pytest.raises(DataError, match=r"writer 'w7' writes no training article; choose one of w1, w2"):
        label_sim.run(sim_cfg(tmp_path, "writer=w7"))


def test_fine_tuned_point_on_a_tiny_bert(tmp_path, store, tiny_bert):
    result = label_sim.run(sim_cfg(tmp_path, f"finetune_encoder={tiny_bert}", "finetune_budget=10",
                                   "strategies=[margin, random]", "budgets=[5, 10]", "random_seeds=[1]"))
    tuned = result.table[result.table.family.str.startswith("finetune")]
    assert sorted(zip(tuned.strategy, tuned.labels, strict=True)) == [
        ("margin", 10), ("no user labels", 0), ("random", 10)]
