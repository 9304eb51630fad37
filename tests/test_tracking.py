import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from pipeline import tracking

HOLD_LOCK = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("ROLLBACK")
"""


def hold_lock(db: Path, seconds: float) -> subprocess.Popen:
    """Another process that holds an exclusive write lock on the store for ``seconds``."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(db), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def train_command(corpus: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline", "train", "--task", "stance", "--model", "tfidf",
            "--set", f"data.corpus_dir={corpus}", "--set", f"training.output_dir={out}"]


def test_store_locked_by_another_process_waits_then_fails_with_a_clear_message(tmp_path, store, monkeypatch):
    tracking.setup(store)
    monkeypatch.setenv(tracking.BUSY_TIMEOUT_ENV, "0.5")
    holder = hold_lock(tmp_path / "mlflow.db", 5)
    try:
        started = time.monotonic()
        message = r"mlflow\.db is locked by a writer in another process \(waited 0\.5 s\).*NEWSSTANCE_STORE_BUSY"
        with pytest.raises(tracking.StoreLockedError, match=message), tracking.start_run("locked", "run", {}):
            pass
        assert time.monotonic() - started >= 0.5, "it waits for the busy timeout before giving up"
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_released_within_the_busy_timeout_is_waited_for(tmp_path, store, monkeypatch):
    tracking.setup(store)
    monkeypatch.setenv(tracking.BUSY_TIMEOUT_ENV, "30")
    holder = hold_lock(tmp_path / "mlflow.db", 1)
    try:
        with tracking.start_run("waited", "run", {}) as run:
            run.metrics({"train/x": 1.0})
    finally:
        holder.wait()
    assert MlflowClient(store).get_run(run.id).data.metrics["train/x"] == 1.0


def test_cli_reports_a_locked_store_in_one_line_with_exit_code_2(tiny_corpus, tmp_path, store):
    tracking.setup(store)
    holder = hold_lock(tmp_path / "mlflow.db", 30)
    try:
        env = {**os.environ, "MLFLOW_TRACKING_URI": store, tracking.BUSY_TIMEOUT_ENV: "1"}
        done = subprocess.run(train_command(tiny_corpus, tmp_path / "out"), env=env, capture_output=True,
                              text=True, timeout=120)
    finally:
        holder.kill()
        holder.wait()
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is locked by a writer in another process (waited 1 s)" in errors[0]
    assert "Traceback" not in done.stdout + done.stderr


@pytest.mark.slow
def test_two_trainings_at_once_on_one_fresh_store_both_complete_and_register(tiny_corpus, tmp_path, store):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    processes = [subprocess.Popen(train_command(tiny_corpus, tmp_path / f"out{i}"), env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in (1, 2)]
    outputs = [p.communicate(timeout=600)[0] for p in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    client = MlflowClient(store, registry_uri=store)
    runs = client.search_runs([client.get_experiment_by_name("stance").experiment_id])
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    versions = client.search_model_versions("name='stance-classifier'")
    assert sorted(int(v.version) for v in versions) == [1, 2]
    assert {v.run_id for v in versions} == {r.info.run_id for r in runs}
