import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pipeline import config, train
from pipeline.servers import free_port, running

pytestmark = pytest.mark.slow


def post(url: str, payload: bytes) -> tuple[int, str]:
    request = urllib.request.Request(url, data=payload, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_served_champion_answers_and_rejects_bad_payloads(tiny_corpus, tmp_path, store):
    train.run(config.train_config("stance", "tfidf", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}"]))
    port = free_port()
    mlflow_bin = str(Path(sys.executable).parent / "mlflow")
    # The server execs uvicorn from the environment's bin folder.
    env = {**os.environ, "MLFLOW_TRACKING_URI": store,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [mlflow_bin, "models", "serve", "-m", "models:/stance-classifier@champion", "--env-manager", "local",
               "-h", "127.0.0.1", "-p", str(port)]
    with running(command, env, f"http://127.0.0.1:{port}/ping"):
        url = f"http://127.0.0.1:{port}/invocations"
        payload = {"dataframe_split": {"columns": ["text"], "data": [
            ["Prosecutors allege the firm paid bribes to win the port contract."],
            ["The board will meet on March 3 to review the budget."]]}}
        status, body = post(url, json.dumps(payload).encode())
        assert status == 200, body
        predictions = json.loads(body)["predictions"]
        assert len(predictions) == 2
        labels = {"confident", "wary", "accusatory", "dismissive", "neutral"}
        for row in predictions:
            assert row["label"] in labels
            assert abs(sum(row[f"prob_{lab}"] for lab in labels) - 1) < 1e-6
            assert row["confidence"] == max(row[f"prob_{lab}"] for lab in labels)
        # The server returns the calibrated probabilities the logged model gives in this process.
        import mlflow
        import pandas as pd

        model = mlflow.pyfunc.load_model("models:/stance-classifier@champion")
        assert model.unwrap_python_model().classifier.temperature != 1.0
        expected = model.predict(pd.DataFrame({"text": [text for (text,) in payload["dataframe_split"]["data"]]}))
        pd.testing.assert_frame_equal(pd.DataFrame(predictions)[list(expected.columns)], expected, atol=1e-6)
        status, body = post(url, b'{"not_a_format": [1, 2]}')
        assert 400 <= status < 500 and "dataframe_split" in body
        status, body = post(url, b"{broken json")
        assert 400 <= status < 500
        status, body = post(url, json.dumps({"dataframe_records": [{"sentence": "x"}]}).encode())
        assert 400 <= status < 500 and "text" in body


def test_load_test_of_the_served_model_has_no_errors_and_refuses_an_oversize_payload(
        tiny_corpus, tmp_path, store, monkeypatch):
    from pipeline import bench

    train.run(config.train_config("stance", "tfidf", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}"]))
    monkeypatch.setenv("NEWSSTANCE_SERVE_MAX_ROWS", "64")  # the server inherits it: a quick oversize request
    result = bench.run_serve(model_uri="models:/stance-classifier@champion", clients=8, requests=400,
                             max_sentences=32, max_seconds=240, corpus_dir=str(tiny_corpus))
    report = result["report"]
    print(json.dumps(report))
    assert report["errors"] == 0, report["first_error"]
    assert report["requests"] == 400 and 400 <= report["sentences"] <= 400 * 32
    assert 0 < report["p50_ms"] <= report["p95_ms"] <= report["max_ms"]
    assert report["oversize_rows"] == 65 and report["oversize_status"] == 400
    assert report["oversize_says_too_large"] and report["answers_after_oversize"]


def test_load_test_runs_only_against_the_loopback():
    from pipeline import bench

    with pytest.raises(bench.BenchError, match=r"only runs against a loopback address \(127\.0\.0\.1\), not "
                                         r"http://example\.org:8080"):
        bench.load_test("http://example.org:8080", ["text"], requests=1)


def test_served_multitask_model_returns_both_tasks(tiny_corpus, tiny_bert, tmp_path, store):
    train.run(config.train_config(None, "multitask", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}", f"model.encoder={tiny_bert}",
        "training.epochs=1", "training.batch_size=8"]))
    port = free_port()
    env = {**os.environ, "MLFLOW_TRACKING_URI": store,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    command = [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", "models:/news-classifier@champion",
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]
    texts = ["Prosecutors allege the firm paid bribes to win the port contract.", "The board will meet on March 3."]
    payload = {"dataframe_split": {"columns": ["text"], "data": [[t] for t in texts]}}
    with running(command, env, f"http://127.0.0.1:{port}/ping"):
        status, body = post(f"http://127.0.0.1:{port}/invocations", json.dumps(payload).encode())
    assert status == 200, body
    import mlflow
    import pandas as pd

    expected = mlflow.pyfunc.load_model("models:/news-classifier@champion").predict(pd.DataFrame({"text": texts}))
    served = pd.DataFrame(json.loads(body)["predictions"])[list(expected.columns)]
    assert {"stance_label", "sentiment_label", "stance_prob_wary", "sentiment_prob_neutral"} <= set(served.columns)
    pd.testing.assert_frame_equal(served, expected, atol=1e-6)
