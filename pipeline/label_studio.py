"""Talks to a local Label Studio server through its SDK. Runs in Label Studio's own environment
(``.venv-label-studio``, made by ``make label-studio``), not the project's: it imports only the standard
library and ``label_studio_sdk``, never the rest of ``pipeline``.

    python -m pipeline.label_studio token  --url URL --email E --password-file F --token-file T
    python -m pipeline.label_studio setup  --url URL --token-file T --config configs/label-studio.xml --tasks tasks.json
    python -m pipeline.label_studio export --url URL --token-file T --out export.json [--format JSON|JSON_MIN|CSV]
    python -m pipeline.label_studio wait   --url URL [--timeout 300]

Authentication: Label Studio 1.23 turns legacy API tokens off, so ``token`` logs in with the user's e-mail and
password (a browser session, as the login page does) and creates the user's personal access token (a JWT
refresh token) at /api/token/, kept in ``--token-file``. The SDK trades it for short-lived access tokens.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

PROJECT_TITLE = "newsstance: label your own articles"


class LabelStudioError(Exception):
    """The server answered something this script cannot go on with; the message says what to do."""


def _session(url: str, email: str, password: str) -> tuple[urllib.request.OpenerDirector, str]:
    """A logged-in browser session (cookie jar) and its CSRF token."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    login = f"{url}/user/login/"
    opener.open(login, timeout=60).read()
    csrf = next((c.value for c in jar if c.name == "csrftoken"), "")
    form = urllib.parse.urlencode({"email": email, "password": password, "csrfmiddlewaretoken": csrf}).encode()
    request = urllib.request.Request(login, data=form, headers={"Referer": login, "X-CSRFToken": csrf})
    opener.open(request, timeout=60).read()
    if not any(c.name == "sessionid" for c in jar):
        raise LabelStudioError(f"could not log in to {url} as {email}: check the e-mail and password "
                               "(LABEL_STUDIO_USERNAME / the password file)")
    return opener, next((c.value for c in jar if c.name == "csrftoken"), csrf)


def _call(opener: urllib.request.OpenerDirector, url: str, csrf: str, method: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(url, method=method, data=json.dumps(body or {}).encode() if body is not None
                                     else None, headers={"Content-Type": "application/json", "X-CSRFToken": csrf,
                                                         "Referer": url})
    with opener.open(request, timeout=60) as response:
        return json.loads(response.read() or b"{}")


def personal_access_token(url: str, email: str, password: str) -> str:
    """Creates the user's personal access token; if one exists (its full text is shown only once), rotates it."""
    opener, csrf = _session(url, email, password)
    try:
        return _call(opener, f"{url}/api/token/", csrf, "POST", {})["token"]
    except urllib.error.HTTPError as err:
        if err.code != 409:
            raise
    existing = _call(opener, f"{url}/api/token/", csrf, "GET")
    if not existing:
        raise LabelStudioError(f"{url} says a token exists but lists none: create one in Account & Settings")
    truncated = existing[0]["token"]
    _call(opener, f"{url}/api/token/blacklist/", csrf, "POST", {"refresh": truncated})
    return _call(opener, f"{url}/api/token/", csrf, "POST", {})["token"]


def client(url: str, token_file: Path):
    from label_studio_sdk import LabelStudio

    if not token_file.is_file():
        raise LabelStudioError(f"{token_file} not found: run `make label-studio` (it creates the token)")
    return LabelStudio(base_url=url, api_key=token_file.read_text().strip())


def find_project(ls, title: str):
    return next((p for p in ls.projects.list() if p.title == title), None)


def setup(url: str, token_file: Path, config: Path, tasks_file: Path | None, title: str) -> dict:
    """Creates the project from the labeling config (or updates its config), then imports the tasks that
    are not in it yet (same article and sentence), predictions included."""
    ls = client(url, token_file)
    label_config = config.read_text(encoding="utf-8")
    project = find_project(ls, title)
    if project is None:
        project = ls.projects.create(title=title, label_config=label_config,
                                     description="Stance and sentiment of your own articles (docs/labeling.md)")
    elif project.label_config != label_config:
        ls.projects.update(id=project.id, label_config=label_config)
    imported = 0
    if tasks_file is not None:
        if not tasks_file.is_file():
            raise LabelStudioError(f"{tasks_file} not found: write it with `python -m pipeline label export`")
        tasks = json.loads(tasks_file.read_text(encoding="utf-8"))
        present = {(t.data.get("article_id"), t.data.get("sentence_index"))
                   for t in ls.tasks.list(project=project.id, fields="all")}
        new = [t for t in tasks if (t["data"]["article_id"], t["data"]["sentence_index"]) not in present]
        if new:
            ls.projects.import_tasks(id=project.id, request=new)
        imported = len(new)
        versions = [p["model_version"] for t in tasks for p in t.get("predictions") or []]
        if versions:  # pre-label each task with the newest model's guess (the project names the version)
            ls.projects.update(id=project.id, model_version=versions[-1], show_collab_predictions=True)
    return {"project_id": project.id, "imported": imported, "url": f"{url}/projects/{project.id}/data"}


def export(url: str, token_file: Path, out: Path, export_type: str, title: str) -> dict:
    """Downloads every task of the project (annotated, skipped or not yet labeled) in ``export_type``."""
    ls = client(url, token_file)
    project = find_project(ls, title)
    if project is None:
        raise LabelStudioError(f"no project {title!r} on {url}: run `make label-studio` first")
    data = b"".join(ls.projects.exports.download_sync(project.id, export_type=export_type, download_all_tasks=True))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return {"project_id": project.id, "out": str(out), "bytes": len(data)}


def wait(url: str, timeout: float) -> None:
    """Waits until the server answers /health (a fresh data folder takes a minute or two: migrations)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError) as err:
            if time.monotonic() > deadline:
                raise LabelStudioError(f"{url} did not answer /health within {timeout:g} s ({err}): see the server "
                                       "log (outputs/label-studio/server.log)") from err
            time.sleep(1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.label_studio", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("token", "setup", "export"):
        sub = commands.add_parser(name)
        sub.add_argument("--url", required=True)
        sub.add_argument("--token-file", type=Path, required=True)
        sub.add_argument("--title", default=PROJECT_TITLE)
        if name == "token":
            sub.add_argument("--email", required=True)
            sub.add_argument("--password-file", type=Path, required=True)
        if name == "setup":
            sub.add_argument("--config", type=Path, required=True)
            sub.add_argument("--tasks", type=Path)
        if name == "export":
            sub.add_argument("--out", type=Path, required=True)
            sub.add_argument("--format", default="JSON", choices=["JSON", "JSON_MIN", "CSV"])
    waiting = commands.add_parser("wait")
    waiting.add_argument("--url", required=True)
    waiting.add_argument("--timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    try:
        if args.command == "wait":
            wait(url, args.timeout)
        elif args.command == "token":
            token = personal_access_token(url, args.email, args.password_file.read_text().strip())
            args.token_file.parent.mkdir(parents=True, exist_ok=True)
            args.token_file.touch(mode=0o600)
            args.token_file.write_text(token)
            print(json.dumps({"token_file": str(args.token_file)}))
        elif args.command == "setup":
            print(json.dumps(setup(url, args.token_file, args.config, args.tasks, args.title)))
        else:
            print(json.dumps(export(url, args.token_file, args.out, args.format, args.title)))
    except (LabelStudioError, urllib.error.URLError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
