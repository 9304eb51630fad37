"""The MLflow UI in a real browser: Playwright driving Debian's chromium (no browser download)."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline import config, tracking, train
from pipeline.servers import free_port, running

pytestmark = pytest.mark.slow
SCREENSHOTS = Path("outputs/ui-test")


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium is not installed: run `make setup-browser` (apt-get install chromium)")
    return path


def test_ui_lists_runs_with_macro_f1_and_compares_them(tiny_corpus, tmp_path, store):
    from playwright.sync_api import expect, sync_playwright

    results = [train.run(config.train_config("stance", "tfidf", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}", f"training.seed={seed}",
        f"training.max_train_rows={rows}", "tracking.register=false"])) for seed, rows in ((1, 30), (2, 12))]
    found = MlflowClient(store).get_experiment_by_name("stance")
    assert found.tags[tracking.EXPERIMENT_KIND_TAG] == tracking.MODEL_TRAINING_KIND, "opens in the model training view"
    experiment = found.experiment_id
    port = free_port()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", store,
               "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with running(command, env, f"http://127.0.0.1:{port}/health"), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        # The link `make ui` prints: the metric and model family are columns without a click, best run first.
        page.goto(tracking.runs_view_link("stance", f"http://127.0.0.1:{port}", store))
        for result in results:
            expect(page.get_by_text(result.run_name)).to_be_visible(timeout=60_000)
        for column in ("best/val_macro_f1", "model_family"):
            expect(page.get_by_role("columnheader", name=column).first).to_be_visible()
        table = page.inner_text("body").split("best/val_macro_f1", 1)[1]
        # Rows keep one order across the table's pinned and scrolling halves: pair names with values.
        shown = sorted(results, key=lambda r: table.index(r.run_name))
        cells = page.locator("[role=gridcell][col-id='metrics.`best/val_macro_f1`']")
        expect(cells).to_have_count(len(results))
        values = [float(v) for v in cells.all_inner_texts()]
        assert values == pytest.approx([r.best_val_macro_f1 for r in shown], abs=1e-9)
        assert values == sorted(values, reverse=True), "sorted by best/val_macro_f1, best first"
        page.screenshot(path=str(SCREENSHOTS / "runs.png"))
        ids = json.dumps([r.run_id for r in results])
        page.goto(f"http://127.0.0.1:{port}/#/compare-runs?runs={ids}&experiments={json.dumps([experiment])}")
        expect(page.get_by_text("Comparing 2 Runs")).to_be_visible(timeout=60_000)
        for result in results:
            expect(page.get_by_text(result.run_name).first).to_be_visible()
        expect(page.get_by_text("best/val_macro_f1").first).to_be_visible()
        page.screenshot(path=str(SCREENSHOTS / "compare.png"), full_page=True)
        browser.close()
    assert (SCREENSHOTS / "compare.png").stat().st_size > 10_000
