"""A real Label Studio (its own environment, .venv-label-studio): project from configs/label-studio.xml, tasks
with the model's predictions through the SDK, annotations through the API, exports in three formats back
through `label import`; and the labeling page in Debian's chromium."""

import json
import os
import subprocess
import urllib.request
from pathlib import Path

import pytest

from pipeline import config, label, paths
from pipeline.servers import free_port, running
from tests.test_label import GOLD, TASK_DATA, scores_dir  # noqa: F401 (scores_dir is a fixture)
from tests.test_ui import SCREENSHOTS, chromium

pytestmark = pytest.mark.slow
LS_VENV = paths.REPO_ROOT / ".venv-label-studio"
EMAIL, PASSWORD = "tester@example.com", "not-a-real-secret-42"


def ls_python() -> Path:
    python = LS_VENV / "bin" / "python"
    if not (LS_VENV / ".installed").is_file():
        pytest.fail(f"Label Studio's environment is missing ({LS_VENV}): run `make label-setup` "
                    "(make test installs it before the tests)")
    return python


def client(*args: str) -> dict:
    out = subprocess.run([str(ls_python()), "-m", "pipeline.label_studio", *args], cwd=paths.REPO_ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("label-studio")
    (folder / "password").write_text(PASSWORD)
    port = free_port()
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(folder / "data"), "LABEL_STUDIO_USERNAME": EMAIL,
           "LABEL_STUDIO_PASSWORD": PASSWORD, "LATEST_VERSION_CHECK": "false", "COLLECT_ANALYTICS": "false"}
    url = f"http://127.0.0.1:{port}"
    command = [str(ls_python().parent / "label-studio"), "start", "--no-browser", "--internal-host", "127.0.0.1",
               "--port", str(port)]
    with running(command, env, f"{url}/health", timeout=600):
        token = folder / "token"
        client("token", "--url", url, "--email", EMAIL, "--password-file", str(folder / "password"),
               "--token-file", str(token))
        yield {"url": url, "token": token, "folder": folder}


def api(url: str, path: str, access: str, method: str = "GET", body: dict | None = None):
    request = urllib.request.Request(f"{url}{path}", method=method, headers={
        "Authorization": f"Bearer {access}", "Content-Type": "application/json"},
        data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


def access_token(server) -> str:
    refresh = server["token"].read_text().strip()
    return api(server["url"], "/api/token/refresh/", "", "POST", {"refresh": refresh})["access"]


def annotation(stance: str, sentiment: str, holder: str = "", cancelled: bool = False) -> dict:
    result = [{"from_name": "stance", "to_name": "sentence", "type": "choices", "value": {"choices": [stance]}},
              {"from_name": "sentiment", "to_name": "sentence", "type": "choices", "value": {"choices": [sentiment]}}]
    if holder:
        result.append({"from_name": "stakeholder", "to_name": "sentence", "type": "textarea",
                       "value": {"text": [holder]}})
    return {"result": [] if cancelled else result, "was_cancelled": cancelled}


def test_round_trip_through_a_real_label_studio(server, scores_dir, tmp_path):  # noqa: F811
    exported = label.export_tasks(config.from_options(
        config.LabelExportConfig, scores_dir=str(scores_dir), out=str(tmp_path / "tasks.json"), n=8,
        skip_labeled=[str(tmp_path / "user" / "*.jsonl")]))
    assert exported.tasks == 8
    common = ["--url", server["url"], "--token-file", str(server["token"]), "--title", "round trip"]
    setup = client("setup", *common, "--config", "configs/label-studio.xml", "--tasks", str(exported.out))
    assert setup["imported"] == 8
    assert client("setup", *common, "--config", "configs/label-studio.xml", "--tasks", str(exported.out))[
        "imported"] == 0, "a second import adds no duplicate task"

    access = access_token(server)
    listed = api(server["url"], f"/api/tasks/?project={setup['project_id']}&page_size=100", access)
    assert listed["total_predictions"] == 8, "every task arrives with the model's guess"
    tasks = sorted(listed["tasks"], key=lambda t: t["id"])
    predictions = api(server["url"], f"/api/predictions/?project={setup['project_id']}", access)
    assert len(predictions) == 8
    assert all(p["model_version"].startswith("stance: ") and p["model_version"] == predictions[0]["model_version"]
               for p in predictions), "the model version that scored the folder"
    gold = {t["id"]: GOLD[t["data"]["text"]] for t in tasks if t["data"]["text"] in GOLD}
    assert len(gold) >= 5, "the scored sentences are the tiny corpus's"
    ids = sorted(gold)
    skipped, doubled, labeled = ids[0], ids[1], ids[1:]
    api(server["url"], f"/api/tasks/{skipped}/annotations/", access, "POST", annotation("", "", cancelled=True))
    for task_id in labeled:
        stance, sentiment, holder = gold[task_id]
        api(server["url"], f"/api/tasks/{task_id}/annotations/", access, "POST", annotation(stance, sentiment, holder))
    stance, sentiment, holder = gold[doubled]
    api(server["url"], f"/api/tasks/{doubled}/annotations/", access, "POST", annotation(stance, sentiment, holder))

    out = tmp_path / "user" / "me.jsonl"
    results = {}
    for kind, name in (("JSON", "export.json"), ("JSON_MIN", "export-min.json"), ("CSV", "export.csv")):
        client("export", *common, "--out", str(tmp_path / name), "--format", kind)
        results[kind] = label.import_labels(config.from_options(
            config.LabelImportConfig, export=str(tmp_path / name), out=str(out)))
    first = results["JSON"]
    assert (first.tasks, first.labeled, first.skipped, first.unlabeled) == (8, len(labeled), 1, 8 - len(ids))
    assert first.added == len(labeled) and first.agreement["tasks"] == 1.0
    assert first.agreement["stance_agreement"] == 1.0
    for kind in ("JSON_MIN", "CSV"):
        assert (results[kind].labeled, results[kind].added, results[kind].unchanged) == (len(labeled), 0,
                                                                                          len(labeled)), kind
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(labeled)
    for row in rows:
        assert (row["stance"], row["sentiment"], row["stakeholder"]) == GOLD[row["text"]]
    assert all(t["predictions"] for t in json.loads((tmp_path / "export.json").read_text()))


def test_labeling_page_in_chromium(server, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    text = "The union accused the operator of hiding safety reports from inspectors."
    task = {"data": {**TASK_DATA, "text": text, "article_id": "page-1", "sentence_index": 3,
                     "context_before": "Inspectors visited the port on Monday.",
                     "context_after": "The operator has not commented."},
            "predictions": [{"model_version": "stance: demo", "score": 0.55, "result": [
                {"from_name": "stance", "to_name": "sentence", "type": "choices",
                 "value": {"choices": ["accusatory"]}, "score": 0.55},
                {"from_name": "sentiment", "to_name": "sentence", "type": "choices",
                 "value": {"choices": ["negative"]}, "score": 0.8},
                {"from_name": "stakeholder", "to_name": "sentence", "type": "textarea",
                 "value": {"text": ["The union"]}}]}]}
    (tmp_path / "tasks.json").write_text(json.dumps([task]))
    setup = client("setup", "--url", server["url"], "--token-file", str(server["token"]), "--title", "page",
                   "--config", "configs/label-studio.xml", "--tasks", str(tmp_path / "tasks.json"))
    task_id = api(server["url"], f"/api/tasks/?project={setup['project_id']}", access_token(server))["tasks"][0]["id"]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{server['url']}/user/login/")
        page.fill("input[name=email]", EMAIL)
        page.fill("input[name=password]", PASSWORD)
        page.locator("button[type=submit], input[type=submit]").first.click()
        page.wait_for_url(lambda url: "/user/login" not in url, timeout=60_000)
        page.goto(f"{server['url']}/projects/{setup['project_id']}/data?task={task_id}")
        expect(page.get_by_text(text).first).to_be_visible(timeout=90_000)
        expect(page.get_by_text("Inspectors visited the port on Monday.").first).to_be_visible()
        for choice in ("confident", "wary", "accusatory", "dismissive", "positive", "negative"):
            expect(page.get_by_text(choice).first).to_be_visible()
        # The annotator starts from the model's guess: its two choices come checked.
        expect(page.get_by_role("radio", name="accusatory")).to_be_checked(timeout=30_000)
        expect(page.get_by_role("radio", name="negative")).to_be_checked()
        expect(page.get_by_role("radio", name="wary")).not_to_be_checked()
        expect(page.get_by_role("button", name="Submit")).to_be_enabled(timeout=30_000)
        expect(page.get_by_text("The union", exact=True).first).to_be_visible()  # the stakeholder's guess
        page.screenshot(path=str(SCREENSHOTS / "label-studio.png"))
        browser.close()
    assert (SCREENSHOTS / "label-studio.png").stat().st_size > 20_000
