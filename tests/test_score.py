import json
from pathlib import Path

import pandas as pd
import pytest

from pipeline import config, score
from pipeline.segment import split

ARTICLES = {
    "harbour": ("PORTVALE (Test Wire) — The union accused the operator of hiding safety reports. "
                "“We did nothing wrong,” the chairman said. The board will meet on March 3 to review the budget."),
    "ministry": ("The ministry said it was sure the agreement would pass. Regulators doubt the plan can protect "
                 "customer records, a spokesperson said.\n\nShares closed at 412 pence on Tuesday."),
    "freight": ("Halden Freight expects to reopen both terminals on schedule. Prosecutors allege the firm paid "
                "bribes. The company rejected the report as baseless."),
}


@pytest.fixture
def articles_dir(tmp_path) -> Path:
    folder = tmp_path / "articles"
    folder.mkdir()
    for name, text in ARTICLES.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
    return folder


def score_cfg(models, *extra: str) -> config.ScoreConfig:
    return config.load(config.ScoreConfig, [Path("configs/score.yaml")], [
        f"stance_model={models['stance']}", f"sentiment_model={models['sentiment']}", "chunk_articles=1", *extra])


def test_every_sentence_once_with_offsets(models, articles_dir, tmp_path, store):
    result = score.run(score_cfg(models), [str(articles_dir)], str(tmp_path / "out"))
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    assert result.articles == 3 and result.errors == 0
    expected = sum(len(split(text)) for text in ARTICLES.values())
    assert len(rows) == expected == result.sentences
    assert not rows.duplicated(["article_id", "sentence_index"]).any()
    for row in rows.itertuples():
        assert ARTICLES[row.article_id][row.char_start : row.char_end] == row.text
    assert list(pd.read_csv(tmp_path / "out" / "sentences.csv").columns) == list(rows.columns)
    assert {"prob_confident", "prob_neutral", "sentiment", "sentiment_confidence", "stakeholder"} <= set(rows.columns)
    summaries = json.loads((tmp_path / "out" / "articles.json").read_text())
    assert set(summaries) == set(ARTICLES)
    for article_id, summary in summaries.items():
        assert sum(summary["stance_counts"].values()) == (rows.article_id == article_id).sum()
        for holder in summary["stakeholders"].values():
            assert holder["evidence"], "every summary cites sentence indices as evidence"


def test_uncertain_below_threshold_keeps_probabilities(models, articles_dir, tmp_path, store):
    score.run(score_cfg(models, "uncertain_threshold=0.999"), [str(articles_dir)], str(tmp_path / "out"))
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    assert (rows.stance == "uncertain").all()
    assert (rows.filter(like="prob_").sum(axis=1).round(6) == 1.0).all()
    assert (rows.stakeholder == "").all(), "no stakeholder summary is built on guesses"


def test_interrupted_run_resumes_without_duplicates(models, articles_dir, tmp_path, store, monkeypatch):
    calls = {"n": 0}
    original = score.LocalEngine.classify

    def fail_on_second_chunk(self, texts):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt("simulated interruption")
        return original(self, texts)

    monkeypatch.setattr(score.LocalEngine, "classify", fail_on_second_chunk)
    with pytest.raises(KeyboardInterrupt):
        score.run(score_cfg(models), [str(articles_dir)], str(tmp_path / "out"))
    assert len(list((tmp_path / "out" / "parts").glob("part-*.json"))) == 1
    monkeypatch.setattr(score.LocalEngine, "classify", original)
    resumed = score.run(score_cfg(models), [str(articles_dir)], str(tmp_path / "out"))
    assert resumed.skipped == 1
    fresh = score.run(score_cfg(models), [str(articles_dir)], str(tmp_path / "fresh"))
    got = pd.read_parquet(tmp_path / "out" / "sentences.parquet").sort_values(["article_id", "sentence_index"])
    want = pd.read_parquet(tmp_path / "fresh" / "sentences.parquet").sort_values(["article_id", "sentence_index"])
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True))
    assert fresh.sentences == resumed.sentences
    again = score.run(score_cfg(models), [str(articles_dir)], str(tmp_path / "out"))
    assert again.skipped == 3 and again.sentences == fresh.sentences


def test_bad_inputs_go_to_errors_and_the_batch_goes_on(models, articles_dir, tmp_path, store):
    (articles_dir / "empty.txt").write_text("   \n")
    (articles_dir / "binary.txt").write_bytes(b"\x00\x01\x02PNG")
    (articles_dir / "latin1.txt").write_bytes("Caf\xe9 owners said".encode("latin-1"))
    (articles_dir / "huge.txt").write_text("Word. " * 400)
    table = tmp_path / "more.jsonl"
    table.write_text('{"id": "j1", "text": "The council met on Tuesday."}\n{"id": "j2"}\nnot json\n')
    result = score.run(score_cfg(models, "max_article_bytes=2000"), [str(articles_dir), str(table)],
                       str(tmp_path / "out"))
    lines = (tmp_path / "out" / "errors.jsonl").read_text().splitlines()
    errors = {e["id"]: e["reason"] for e in map(json.loads, lines)}
    assert "empty article" in errors["empty"]
    assert "binary" in errors["binary"]
    assert "not UTF-8" in errors["latin1"]
    assert "over the 2,000-byte limit" in errors["huge"]
    assert "needs keys 'id' and 'text'" in errors["more-line2"]
    assert "invalid JSON" in errors["more-line3"]
    assert result.articles == 4 and result.errors == 6


def test_html_page_main_text_is_extracted(models, tmp_path, store):
    page = tmp_path / "page.html"
    page.write_text("<html><body><nav>Home | Sports | Weather</nav><article><h1>Plant recall</h1>"
                    + "".join(f"<p>The company said on Monday that batch {i} of its frozen spinach was recalled "
                              "after inspectors found metal fragments in samples from the plant.</p>"
                              for i in range(6))
                    + "</article><footer>Copyright Test News</footer></body></html>")
    score.run(score_cfg(models), [str(page)], str(tmp_path / "out"))
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    text = " ".join(rows.text)
    assert "batch 3 of its frozen spinach" in text
    assert "Copyright" not in text and "Weather" not in text


def embedded_articles(page: str) -> list[dict]:
    start = page.index('id="articles-data">') + len('id="articles-data">')
    return json.loads(page[start : page.index("</script>", start)])


def test_report_holds_every_sentence_and_stakeholder(models, articles_dir, tmp_path, store):
    score.run(score_cfg(models), [str(articles_dir)], str(tmp_path / "out"))
    page = (tmp_path / "out" / "report.html").read_text()
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    embedded = embedded_articles(page)
    assert sum(len(a["s"]) for a in embedded) == len(rows)
    assert len(ARTICLES["ministry"].split("\n")[0]) < 200
    assert {a["id"]: a["t"] for a in embedded}["ministry"] == ARTICLES["ministry"].split("\n")[0], \
        "the first line titles a .txt article"
    summaries = json.loads((tmp_path / "out" / "articles.json").read_text())
    holders = sum(len(s["stakeholders"]) for s in summaries.values())
    assert sum(len(a["h"]) for a in embedded) == holders > 0
    assert "3 articles" in page
    assert "http://" not in page and "https://" not in page, "the page loads nothing from the network"


def test_title_outlet_and_date_columns_reach_the_outputs(models, tmp_path, store):
    table = tmp_path / "news.jsonl"
    table.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "n1", "text": ARTICLES["harbour"], "title": "Union accuses operator", "source": "Test Wire",
         "date": "2026-03-02"},
        {"id": "n2", "text": "Port strike ends\nThe union said the strike was over.", "domain": "example.org",
         "published": "2026-04-10T08:00:00"}]))
    page = tmp_path / "page.html"
    page.write_text("<html><head><title>Plant &amp; recall</title></head><body><article><h1>Plant recall</h1>"
                    + "".join(f"<p>The company said on Monday that batch {i} of its frozen spinach was recalled "
                              "after inspectors found metal fragments in samples from the plant.</p>" for i in range(6))
                    + "</article></body></html>")
    score.run(score_cfg(models), [str(table), str(page)], str(tmp_path / "out"))
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    firsts = rows.groupby("article_id").first()
    assert firsts.loc["n1", ["title", "outlet", "date"]].tolist() == ["Union accuses operator", "Test Wire",
                                                                      "2026-03-02"]
    assert firsts.loc["n2", ["title", "outlet", "date"]].tolist() == ["Port strike ends", "example.org",
                                                                      "2026-04-10T08:00:00"]
    assert firsts.loc["page", "title"] == "Plant & recall"
    summaries = json.loads((tmp_path / "out" / "articles.json").read_text())
    assert summaries["n1"]["outlet"] == "Test Wire" and summaries["page"]["title"] == "Plant & recall"
    overview = json.loads((tmp_path / "out" / "collection.json").read_text())
    assert sorted(o["outlet"] for o in overview["by_outlet"]) == ["Test Wire", "example.org"]
    assert overview["over_time"]["undated"] == 1
    assert sum(p["articles"] for p in overview["over_time"]["periods"]) == 2
    assert sum(sum(p["stance_counts"].values()) for p in overview["over_time"]["periods"]) == \
        rows.article_id.isin(["n1", "n2"]).sum()


def test_collection_groups_stakeholders_across_articles(models, articles_dir, tmp_path, store):
    from pipeline import attribution

    score.run(score_cfg(models), [str(articles_dir)], str(tmp_path / "out"))
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    overview = json.loads((tmp_path / "out" / "collection.json").read_text())
    held = rows[(rows.stakeholder != "") & ~rows.stance.isin(score.NO_STANCE)]
    want = held.groupby(held.stakeholder.map(attribution.normalize)).agg(
        articles=("article_id", "nunique"), sentences=("stance", "size"))
    got = {h["key"]: (h["articles"], h["sentences"]) for h in overview["stakeholders"]}
    assert got == {k: (r.articles, r.sentences) for k, r in want.iterrows()}
    for holder in overview["stakeholders"]:
        assert sum(holder["stances"].values()) == holder["sentences"]
        assert holder["stances"][holder["dominant_stance"]] == max(holder["stances"].values())
        assert len(holder["evidence"]) == holder["stances"][holder["dominant_stance"]]
    assert overview["stance_counts"] == rows.stance.value_counts().to_dict()


def test_missing_columns_fail_with_a_clear_error(models, tmp_path, store):
    table = tmp_path / "articles.csv"
    table.write_text("key,body\n1,Some text.\n")
    with pytest.raises(score.ScoreError, match=r"articles\.csv: missing column\(s\) \['id', 'text'\]"):
        score.run(score_cfg(models), [str(table)], str(tmp_path / "out"))


def test_csv_and_parquet_inputs_with_configured_columns(models, tmp_path, store):
    frame = pd.DataFrame({"doc": ["a1", "a2"], "body": [ARTICLES["harbour"], ARTICLES["freight"]]})
    frame.iloc[:1].to_csv(tmp_path / "one.csv", index=False)
    frame.iloc[1:].to_parquet(tmp_path / "two.parquet", index=False)
    result = score.run(score_cfg(models, "id_column=doc", "text_column=body"),
                       [str(tmp_path / "one.csv"), str(tmp_path / "two.parquet")], str(tmp_path / "out"))
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    assert result.articles == 2 and set(rows.article_id) == {"a1", "a2"}


def test_summary_groups_name_variants_into_one_stakeholder():
    rows = pd.DataFrame({
        "sentence_index": [0, 1, 2, 3],
        "stance": ["wary", "wary", "confident", "neutral"],
        "stance_confidence": [0.9, 0.8, 0.7, 0.9],
        "stakeholder": ["Treasury Department", "the Treasury Department", "Brightwell Labs", ""],
    })
    summary = score.summarize_article(rows)
    assert summary["stakeholders"] == {
        "the Treasury Department": {"dominant_stance": "wary", "evidence": [0, 1], "stances": {"wary": 2}},
        "Brightwell Labs": {"dominant_stance": "confident", "evidence": [2], "stances": {"confident": 1}},
    }
    assert summary["stance_counts"] == {"wary": 2, "confident": 1, "neutral": 1}


def _train_champion(corpus: Path, tmp_path: Path, task: str, *extra: str):
    from pipeline import train

    return train.run(config.train_config(task, "tfidf", overrides=[
        f"data.corpus_dir={corpus}", f"training.output_dir={tmp_path / 'train'}", *extra]))


def test_rerun_after_a_new_champion_refuses_and_fresh_rescores(tiny_corpus, articles_dir, tmp_path, store):
    for task in ("stance", "sentiment"):
        _train_champion(tiny_corpus, tmp_path, task)
    cfg = config.load(config.ScoreConfig, [Path("configs/score.yaml")], ["chunk_articles=1"])
    out = tmp_path / "out"
    score.run(cfg, [str(articles_dir)], str(out))
    before = pd.read_parquet(out / "sentences.parquet").sort_values(["article_id", "sentence_index"])
    parts = json.loads(sorted((out / "parts").glob("part-*.json"))[0].read_text())
    assert parts["setup"]["stance_model"].startswith("stance-classifier version 1 (run ")
    newer = _train_champion(tiny_corpus, tmp_path, "stance", "training.max_train_rows=6", "training.seed=5",
                            "tracking.promote=true")
    assert newer.registered_version == "2" and newer.promoted
    with pytest.raises(score.ScoreError, match=r"parts scored with a different setup \(part-00001: stance_model was "
                                               r"stance-classifier version 1 \(run \w+\), now stance-classifier "
                                               r"version 2 \(run \w+\)[;)].*rerun with --fresh"):
        score.run(cfg, [str(articles_dir)], str(out))
    fresh = score.run(cfg, [str(articles_dir)], str(out), fresh=True)
    assert fresh.skipped == 0 and fresh.articles == len(ARTICLES)
    after = pd.read_parquet(out / "sentences.parquet").sort_values(["article_id", "sentence_index"])
    assert len(after) == len(before)
    assert (after.stance.to_numpy() != before.stance.to_numpy()).any(), "the new champion's labels replace the old"
    assert not (out / "parts" / "part-00004.json").exists(), "--fresh cleared the old parts"


def test_rerun_with_another_threshold_or_fast_path_names_what_changed(models, articles_dir, tmp_path, store):
    out = tmp_path / "out"
    score.run(score_cfg(models), [str(articles_dir)], str(out))
    with pytest.raises(score.ScoreError, match=r"uncertain_threshold was 0\.4, now 0\.6\)"):
        score.run(score_cfg(models, "uncertain_threshold=0.6"), [str(articles_dir)], str(out))
    with pytest.raises(score.ScoreError, match=r"fast_path was fused, now none\)"):
        score.run(score_cfg(models, "fast_path=none"), [str(articles_dir)], str(out))
    again = score.run(score_cfg(models, "batch_size=8"), [str(articles_dir)], str(out))
    assert again.skipped == len(ARTICLES), "a setting that does not change labels keeps the resume"


def test_cli_rerun_refuses_in_one_line_and_fresh_starts_over(models, articles_dir, tmp_path, store):
    from typer.testing import CliRunner

    from pipeline.cli import app

    base = ["score", str(articles_dir), "--out", str(tmp_path / "out"), "--model", str(models["stance"]),
            "--sentiment-model", str(models["sentiment"])]
    assert CliRunner().invoke(app, base).exit_code == 0
    refused = CliRunner().invoke(app, [*base, "--set", "uncertain_threshold=0.9"])
    assert refused.exit_code == 2
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.output
    assert "uncertain_threshold was 0.4, now 0.9" in refused.stderr and "--fresh" in refused.stderr
    fresh = CliRunner().invoke(app, [*base, "--set", "uncertain_threshold=0.9", "--fresh"])
    assert fresh.exit_code == 0, fresh.output


def test_duplicate_article_ids_keep_the_first_and_report_the_rest(models, tmp_path, store):
    table = tmp_path / "feed.jsonl"
    table.write_text("".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in [
        ("a1", ARTICLES["harbour"]), ("a2", ARTICLES["freight"]), ("a1", ARTICLES["ministry"])]))
    result = score.run(score_cfg(models), [str(table)], str(tmp_path / "out"))
    errors = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert errors == [{"id": "a1", "source": f"{table}:3", "reason": "duplicate article id 'a1'; ids must be unique"}]
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    assert result.articles == 2 and set(rows.article_id) == {"a1", "a2"}
    assert rows[rows.article_id == "a1"].text.iloc[0].startswith("PORTVALE"), "the first a1 is the one scored"


def test_a_100000_character_sentence_is_scored_in_bounded_pieces(models, tmp_path, store):
    from pipeline import segment

    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "runon.txt").write_text(" ".join(f"word{i % 89}" for i in range(15_000))[:100_000].rstrip())
    (folder / "menu.html").write_text("<html><body><nav><a href='/'>Home</a> | <a href='/x'>Sport</a></nav>"
                                      "</body></html>")
    result = score.run(score_cfg(models), [str(folder)], str(tmp_path / "out"))
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    assert result.articles == 1 and len(rows) >= 100
    assert rows.text.str.len().max() <= segment.MAX_SENTENCE_CHARS
    errors = [json.loads(line) for line in (tmp_path / "out" / "errors.jsonl").read_text().splitlines()]
    assert [(e["id"], e["reason"]) for e in errors] == [("menu", "no main article text found in the HTML page")]


def _with_saved_threshold(folder: Path, threshold: float) -> Path:
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "uncertain_threshold": threshold}))
    return folder


def test_the_stance_models_own_threshold_decides_unless_the_config_sets_one(models, articles_dir, tmp_path, store):
    _with_saved_threshold(models["stance"], 0.999)
    score.run(score_cfg(models), [str(articles_dir)], str(tmp_path / "own"))
    rows = pd.read_parquet(tmp_path / "own" / "sentences.parquet")
    assert (rows.stance == "uncertain").all(), "0.999, saved with the model, flags every sentence"
    part = json.loads(next((tmp_path / "own" / "parts").glob("part-*.json")).read_text())
    assert part["setup"]["uncertain_threshold"] == 0.999
    score.run(score_cfg(models, "uncertain_threshold=0"), [str(articles_dir)], str(tmp_path / "explicit"))
    rows = pd.read_parquet(tmp_path / "explicit" / "sentences.parquet")
    assert not (rows.stance == "uncertain").any(), "an explicit threshold wins over the model's"
    _with_saved_threshold(models["stance"], 0.5)
    with pytest.raises(score.ScoreError, match=r"uncertain_threshold was 0\.999, now 0\.5\)"):
        score.run(score_cfg(models), [str(articles_dir)], str(tmp_path / "own"))


def test_a_trained_model_brings_its_threshold_to_scoring(tiny_corpus, articles_dir, tmp_path, store):
    from mlflow.tracking import MlflowClient

    from pipeline import tracking

    for task in ("stance", "sentiment"):
        _train_champion(tiny_corpus, tmp_path, task, "training.max_train_rows=10", "calibration.target_accuracy=0.9")
    saved = tracking.load_model("models:/stance-classifier@champion").uncertain_threshold
    assert saved is not None and 0 < saved < 1 and saved != score.LEGACY_UNCERTAIN_THRESHOLD
    cfg = config.load(config.ScoreConfig, [Path("configs/score.yaml")])
    assert cfg.uncertain_threshold is None
    result = score.run(cfg, [str(articles_dir)], str(tmp_path / "out"))
    part = json.loads(next((tmp_path / "out" / "parts").glob("part-*.json")).read_text())
    assert part["setup"]["uncertain_threshold"] == saved
    rows = pd.read_parquet(tmp_path / "out" / "sentences.parquet")
    assert ((rows.stance == "uncertain") == (rows.stance_confidence < saved)).all()
    assert 0 < (rows.stance == "uncertain").sum() < len(rows)
    assert float(MlflowClient(store).get_run(result.run_id).data.params["uncertain_threshold"]) == saved


def test_freed_memory_goes_back_to_the_system_on_glibc():
    import platform

    if platform.libc_ver()[0] != "glibc":
        pytest.skip("malloc_trim is glibc's")
    assert score._MALLOC_TRIM is not None, "glibc's malloc_trim was not found"
    assert score.return_freed_memory() is None
