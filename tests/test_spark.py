"""The Spark engine (a real local Spark session) writes the same sentences as the in-process engine."""

import pandas as pd
import pytest

from pipeline import config, score, train

pytestmark = [pytest.mark.slow, pytest.mark.spark]


def test_spark_engine_matches_local_engine(tiny_corpus, tmp_path, store):
    for task in ("stance", "sentiment"):
        train.run(config.train_config(task, "tfidf", overrides=[
            f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}"]))
    outputs = {}
    for engine in ("local", "spark"):
        cfg = config.load(config.ScoreConfig, ["configs/score.yaml"], [f"engine={engine}", "spark_master=local[2]"])
        score.run(cfg, ["examples/articles"], str(tmp_path / engine))
        outputs[engine] = pd.read_parquet(tmp_path / engine / "sentences.parquet").sort_values(
            ["article_id", "sentence_index"]).reset_index(drop=True)
    local, spark = outputs["local"], outputs["spark"]
    assert len(local) > 50
    probabilities = [c for c in local.columns if c.startswith("prob_") or c.endswith("_confidence")]
    pd.testing.assert_frame_equal(local.drop(columns=probabilities), spark.drop(columns=probabilities))
    pd.testing.assert_frame_equal(local[probabilities], spark[probabilities], atol=1e-6, check_exact=False)
