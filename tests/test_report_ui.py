"""report.html in a real browser: Playwright driving Debian's chromium over a scored collection of 240
generated articles. The overview is checked against sentences.parquet; the page must not touch the network."""

import json
import math
import random
from pathlib import Path

import pandas as pd
import pytest

from pipeline import attribution, config, score
from tests.conftest import TINY_SENTENCES
from tests.test_ui import SCREENSHOTS, chromium

pytestmark = pytest.mark.slow
N_ARTICLES = 240
OUTLETS = ["Test Wire", "Harbour Post", "example.org", "The Ledger"]


def write_collection(path: Path) -> Path:
    rng = random.Random(7)
    rows = []
    for i in range(N_ARTICLES):
        picked = rng.sample(TINY_SENTENCES, rng.randint(4, 9))
        rows.append({"id": f"a{i:04d}", "title": f"Generated headline number {i}",
                     "text": " ".join(text for text, *_ in picked), "source": OUTLETS[i % len(OUTLETS)],
                     "date": f"2026-{1 + i % 5:02d}-{1 + i % 27:02d}"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_report_overview_filters_and_offline(models, tmp_path, store):
    from playwright.sync_api import expect, sync_playwright

    cfg = config.load(config.ScoreConfig, [Path("configs/score.yaml")], [
        f"stance_model={models['stance']}", f"sentiment_model={models['sentiment']}", "chunk_articles=50"])
    out = tmp_path / "scores"
    score.run(cfg, [str(write_collection(tmp_path / "collection.jsonl"))], str(out))
    rows = pd.read_parquet(out / "sentences.parquet")
    held = rows[(rows.stakeholder != "") & ~rows.stance.isin(score.NO_STANCE)]
    want = held.groupby(held.stakeholder.map(attribution.normalize)).agg(
        articles=("article_id", "nunique"), sentences=("stance", "size"))
    assert len(want) >= 3, "the generated collection has stakeholders to show"

    requests: list[str] = []
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})

        def record(route):
            requests.append(route.request.url)
            if route.request.url.startswith("file://"):
                route.continue_()
            else:
                route.abort()

        page.route("**/*", record)
        page.goto((out / "report.html").resolve().as_uri())

        expect(page.locator("#totals")).to_contain_text(f"{rows.article_id.nunique()} articles, {len(rows)} sentences")
        totals = dict(zip(page.locator("#stance-totals td:first-child").all_inner_texts(),
                          map(int, page.locator("#stance-totals td:nth-child(2)").all_inner_texts()), strict=True))
        assert totals == rows.stance.value_counts().to_dict()
        shown = page.locator("#stakeholders tr.holder-row")
        assert shown.count() == min(len(want), 30)
        for i in range(shown.count()):
            cells = shown.nth(i).locator("td").all_inner_texts()
            key = shown.nth(i).get_attribute("data-key")
            assert (int(cells[1]), int(cells[2])) == (want.loc[key, "articles"], want.loc[key, "sentences"]), key
        outlets = page.locator("#by-outlet tr.outlet-row")
        assert sorted(outlets.locator("td:first-child").all_inner_texts()) == sorted(OUTLETS)
        assert page.locator("#time-chart rect").count() >= 5  # five months, one or more stances each
        page.screenshot(path=str(SCREENSHOTS / "report-overview.png"))

        # Every article is reachable: pages of 20.
        count = page.locator("#match-count")
        expect(count).to_have_attribute("data-count", str(N_ARTICLES))
        pages = math.ceil(N_ARTICLES / 20)
        expect(page.locator(".page-label").first).to_contain_text(f"page 1 of {pages}")
        for _ in range(pages - 1):
            page.locator("#controls .next").click()
        expect(page.locator(".page-label").first).to_contain_text(f"page {pages} of {pages}")
        expect(page.locator("#articles .article").last).to_have_attribute("data-id", f"a{N_ARTICLES - 1:04d}")

        # Filters: by stance, then by a stakeholder, then the search box.
        stance = "accusatory"
        page.select_option("#filter-stance", stance)
        expect(count).to_have_attribute("data-count", str(rows[rows.stance == stance].article_id.nunique()))
        first = page.locator("#articles .article").first
        assert first.locator(f".s.{stance}:not(.dim)").count() >= 1
        assert first.locator(".s.dim").count() == first.locator(f".s:not(.{stance}):not(.senti)").count()
        page.select_option("#filter-stance", "")
        key = want.sentences.idxmax()
        page.select_option("#filter-stakeholder", key)
        expect(count).to_have_attribute("data-count", str(want.loc[key, "articles"]))
        page.select_option("#filter-stakeholder", "")
        page.fill("#search", "headline number 137")
        expect(count).to_have_attribute("data-count", "1")
        article = page.locator("#articles .article")
        expect(article.locator("h3")).to_have_text("Generated headline number 137")
        sentence = article.locator(".s").first
        assert sentence.locator(".senti").count() == 1, "sentiment is shown next to the stance"
        assert "sentiment" in sentence.get_attribute("title") and "runner-up" in sentence.get_attribute("title")
        article.screenshot(path=str(SCREENSHOTS / "report-article.png"))
        page.fill("#search", "")

        # An evidence link opens its article's page and marks the sentence.
        link = page.locator("#stakeholders a.ev").first
        _, article_id, index = link.get_attribute("href").split("/")
        link.click()
        target = page.locator(f"[id='s-{article_id}-{index}']")
        expect(target).to_be_visible()
        expect(target).to_have_class("s " + target.get_attribute("data-stance") + " hit")
        browser.close()

    assert requests and all(url.startswith("file://") for url in requests), [u for u in requests
                                                                              if not u.startswith("file://")]
    assert (SCREENSHOTS / "report-overview.png").stat().st_size > 10_000
