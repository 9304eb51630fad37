import pytest

from pipeline import compare, config, train


def test_compare_lists_runs_with_per_class_f1(tiny_corpus, tmp_path, store):
    for seed in (1, 2):
        train.run(config.train_config("stance", "tfidf", overrides=[
            f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}", f"training.seed={seed}",
            f"training.max_train_rows={10 * seed + 10}"]))
    result = compare.run(compare.CompareConfig(task="stance", out=str(tmp_path / "cmp")))
    assert len(result.table) == 2
    assert {"run", "model", "data", "best val F1", "test F1", "F1 accusatory", "train s"} <= set(result.table.columns)
    assert result.table["best val F1"].is_monotonic_decreasing
    assert result.chart.stat().st_size > 1000 and result.html.is_file()
    page = result.side_by_side.read_text()
    assert page.count("data:image/png;base64,") == 4, "a confusion matrix and learning curves per run, inlined"
    for name in result.table["run"]:
        assert name in page
    assert "F1 accusatory" not in page and ">accusatory<" in page
    # Every training run is scored on the shipped boundary suite; compare shows it per rule.
    assert result.table[["suite", "suite pairs", "suite B1", "suite S1"]].notna().all().all()
    assert "boundary suite" in page and "suite B7" in page

    chosen = result.table["run"].iloc[-1]
    one = compare.run(compare.CompareConfig(task="stance", out=str(tmp_path / "one"), runs=[chosen]))
    page = one.side_by_side.read_text()
    assert chosen in page and result.table["run"].iloc[0] not in page
    with pytest.raises(compare.CompareError, match=r"no finished stance run named or with id 'nope'"):
        compare.run(compare.CompareConfig(task="stance", out=str(tmp_path / "x"), runs=["nope"]))


def test_compare_on_empty_store(store, tmp_path):
    assert compare.run(compare.CompareConfig(task="sentiment", out=str(tmp_path))).table.empty
