"""The one module that talks to MLflow: store set-up, runs, models, the registry and the champion alias."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from pipeline import paths
from pipeline.errors import PipelineError
from pipeline.models import Classifier, load_classifier

CHAMPION = "champion"
SELECTION_METRIC = "best/val_macro_f1"
# Read by the MLflow UI (3.17): the experiment kind picks its model training view over the GenAI one.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
SHARED_VIEW_TAG_PREFIX = "mlflow.sharedViewState."
# "both": the multitask family's one model for the two tasks.
REGISTERED_NAMES = {"stance": "stance-classifier", "sentiment": "sentiment-classifier", "both": "news-classifier",
                    "fast": "news-classifier-fast",  # fast: the multi-task model distilled into a small encoder
                    "int8": "news-classifier-int8"}  # int8: the multi-task model quantised (pipeline quantize)
# What the logged model needs at serving time; listing it avoids MLflow's slow dependency inference.
PIP_REQUIREMENTS = ["torch==2.13.0", "transformers==5.24.0", "scikit-learn==1.9.1", "pandas==3.1.1",
                    "mlflow==3.17.2", "joblib", "newsstance"]
INT8_REQUIREMENTS = ("openvino==2026.4.1",)  # also needed by a model quantised to OpenVINO int8


class ModelLoadError(PipelineError, RuntimeError):
    """A model URI could not be resolved or loaded; the message names the URI and what to try."""


class StoreLockedError(PipelineError, RuntimeError):
    """The sqlite store stayed locked by a writer in another process for longer than the busy timeout."""


# Seconds to wait for another process's write lock on a sqlite store before giving up with a clear message.
# mlflow itself waits 20 s per statement (PRAGMA busy_timeout in its sessions); this covers set-up and the
# start of each run. Tests shorten it.
BUSY_TIMEOUT_ENV = "NEWSSTANCE_STORE_BUSY_TIMEOUT_S"
DEFAULT_BUSY_TIMEOUT_S = 60.0
_prepared_stores: set[str] = set()


def tracking_uri(configured: str = "") -> str:
    """The config value if set, else MLFLOW_TRACKING_URI, else ``mlflow.db`` at the repository root (the
    store `make ui` and `make serve` open), whichever folder the command runs from."""
    return configured or os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{paths.REPO_ROOT / 'mlflow.db'}"


@contextmanager
def temporary_store(uri: str) -> Iterator[str]:
    """Points every stage at ``uri`` for the block, then back at the store MLFLOW_TRACKING_URI named
    before (or the default). mlflow keeps its current URI in that variable, so it is what is restored."""
    saved_env = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = uri
    setup(uri)
    try:
        yield uri
    finally:
        if saved_env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = saved_env
        setup(saved_env or "", prepare=False)  # pointing back creates no store


def setup(configured: str = "", prepare: bool = True) -> str:
    """Points mlflow at the store; a sqlite store is created (safely against other processes) on first use."""
    uri = tracking_uri(configured)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    if prepare and uri.startswith("sqlite:///") and uri not in _prepared_stores:
        _prepare_sqlite_store(uri)
        _prepared_stores.add(uri)
    return uri


def busy_timeout_s() -> float:
    raw = os.environ.get(BUSY_TIMEOUT_ENV, "")
    try:
        return float(raw) if raw else DEFAULT_BUSY_TIMEOUT_S
    except ValueError:
        raise ValueError(f"{BUSY_TIMEOUT_ENV}={raw!r} is not a number of seconds") from None


def _sqlite_path(uri: str) -> Path:
    return Path(uri.removeprefix("sqlite:///").split("?")[0])


def _locked_message(path: Path, waited: float) -> str:
    return (f"the MLflow store {path} is locked by a writer in another process (waited {waited:g} s): "
            f"wait for the other training or scoring to finish, or raise {BUSY_TIMEOUT_ENV}")


def _prepare_sqlite_store(uri: str) -> None:
    """Creates a sqlite store's tables once even when several processes start on a fresh store together
    (mlflow's own set-up is not safe against that: "table ... already exists"), and switches it to WAL,
    where readers do not block the writer."""
    path = _sqlite_path(uri)
    path.parent.mkdir(parents=True, exist_ok=True)
    timeout = busy_timeout_s()
    with open(path.with_name(path.name + ".lock"), "a") as lock_file:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreLockedError(_locked_message(path, timeout)) from None
                time.sleep(0.1)
        try:
            wait_for_write_lock(uri, timeout)
            with sqlite3.connect(path, timeout=timeout) as connection:
                connection.execute("PRAGMA journal_mode=WAL")
            connection.close()
            MlflowClient(uri, uri).search_experiments(max_results=1)  # creates or migrates the tables
            MlflowClient(uri, uri).search_registered_models(max_results=1)
        except sqlite3.OperationalError as err:
            if "locked" in str(err):
                raise StoreLockedError(_locked_message(path, timeout)) from err
            raise
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def wait_for_write_lock(uri: str, timeout: float | None = None) -> None:
    """Waits up to ``timeout`` seconds until the sqlite store accepts a writer; StoreLockedError if not."""
    if not uri.startswith("sqlite:///"):
        return
    path = _sqlite_path(uri)
    timeout = busy_timeout_s() if timeout is None else timeout
    connection = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
    except sqlite3.OperationalError as err:
        if "locked" in str(err):
            raise StoreLockedError(_locked_message(path, timeout)) from err
        raise
    finally:
        connection.close()


def _artifact_root(uri: str) -> str | None:
    """Artifacts beside a sqlite store (``<store dir>/mlruns``), as an absolute location."""
    if uri.startswith("sqlite:///"):
        return str(Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns")
    return None


def experiment_id(name: str) -> str:
    """The experiment's id, created if missing, tagged so that the MLflow UI opens it in its model
    training view (runs table, metrics) rather than the GenAI one (traces)."""
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found:
        if EXPERIMENT_KIND_TAG not in found.tags:  # stores made before the tag existed
            client.set_experiment_tag(found.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND)
        return found.experiment_id
    root = _artifact_root(mlflow.get_tracking_uri())
    try:
        return client.create_experiment(name, artifact_location=f"{root}/{name}" if root else None,
                                        tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND})
    except mlflow.exceptions.MlflowException as err:
        if err.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        return client.get_experiment_by_name(name).experiment_id  # another process created it just now


def runs_view_link(experiment: str, base_url: str, tracking: str = "") -> str:
    """A link to the MLflow UI that opens ``experiment``'s runs sorted by the selection metric, with it,
    the test macro-F1 and the model family as visible columns.

    The UI takes sorting from the URL but the visible columns only from a shared view: a JSON view state
    stored as the experiment tag ``mlflow.sharedViewState.<key>`` and named by ``viewStateShareKey``
    (what the UI's own Share button does). ``workflowType`` picks the model training view.
    """
    setup(tracking)
    exp = experiment_id(experiment)
    columns = [f"metrics.`{SELECTION_METRIC}`", "metrics.`test/macro_f1`", "tags.`model_family`", "tags.`model`"]
    state = {"searchFilter": "", "orderByKey": columns[0], "orderByAsc": False, "selectedColumns": columns}
    text = json.dumps(state, sort_keys=True)
    key = "runs-by-val-f1-" + hashlib.sha1(text.encode()).hexdigest()[:8]
    MlflowClient().set_experiment_tag(exp, SHARED_VIEW_TAG_PREFIX + key, text)
    return f"{base_url.rstrip('/')}/#/experiments/{exp}/runs?viewStateShareKey={key}&workflowType=machine_learning"


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---------------------------------------------------------------- pyfunc model


def predictions_frame(probabilities: np.ndarray, labels: list[str], prefix: str = "") -> pd.DataFrame:
    """label, confidence and one ``prob_<label>`` column per label: the model's output contract (each name
    after ``prefix``)."""
    frame = pd.DataFrame({f"{prefix}label": [labels[i] for i in probabilities.argmax(1)],
                          f"{prefix}confidence": probabilities.max(1).astype(float)})
    for i, label in enumerate(labels):
        frame[f"{prefix}prob_{label}"] = probabilities[:, i].astype(float)
    return frame


def multitask_predictions_frame(probabilities: dict[str, np.ndarray], labels: dict[str, list[str]]
                                ) -> pd.DataFrame:
    """A multi-task model's output contract: per task ``<task>_label``, ``<task>_confidence`` and
    ``<task>_prob_<label>`` (stance first, then sentiment)."""
    return pd.concat([predictions_frame(p, labels[task], f"{task}_") for task, p in probabilities.items()], axis=1)


def output_columns(meta: dict[str, Any]) -> list[str]:
    """The pyfunc's output columns for a model's ``meta.json``, in order."""
    def columns(id2label: dict[str, str], prefix: str = "") -> list[str]:
        labels = [id2label[str(i)] for i in range(len(id2label))]
        return [f"{prefix}label", f"{prefix}confidence", *(f"{prefix}prob_{label}" for label in labels)]

    if "heads" in meta:
        return [c for task, head in meta["heads"].items() for c in columns(head["id2label"], f"{task}_")]
    return columns(meta["id2label"])


# mlflow's scoring server (uvicorn + FastAPI) sets no limit on a request's size; its only guard is
# MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT (504 after 60 s). The model refuses larger batches itself: the
# server answers 400 with this message in its stack_trace field.
MAX_ROWS_ENV, MAX_CHARS_ENV = "NEWSSTANCE_SERVE_MAX_ROWS", "NEWSSTANCE_SERVE_MAX_CHARS"
DEFAULT_MAX_ROWS, DEFAULT_MAX_CHARS = 2048, 2_000_000


class PayloadTooLargeError(PipelineError, ValueError):
    """A prediction request over the size limit (rows or characters)."""


def check_payload_size(texts: pd.Series) -> None:
    max_rows = int(os.environ.get(MAX_ROWS_ENV) or DEFAULT_MAX_ROWS)
    max_chars = int(os.environ.get(MAX_CHARS_ENV) or DEFAULT_MAX_CHARS)
    chars = int(texts.str.len().sum())
    if len(texts) > max_rows or chars > max_chars:
        raise PayloadTooLargeError(
            f"payload too large: {len(texts)} rows and {chars} characters; this model takes at most {max_rows} "
            f"rows and {max_chars} characters per request ({MAX_ROWS_ENV}, {MAX_CHARS_ENV}): split the batch")


class NewsClassifierModel(mlflow.pyfunc.PythonModel):
    """Wraps a saved classifier folder; ``predict`` takes a ``text`` column (or a list of strings)."""

    def load_context(self, context):
        self.classifier = load_classifier(context.artifacts["model_dir"])

    def predict(self, context, model_input, params=None):
        if isinstance(model_input, pd.DataFrame):
            if "text" not in model_input.columns:
                raise ValueError(f"input needs a 'text' column; found columns {list(model_input.columns)}")
            texts = model_input["text"]
        else:
            texts = pd.Series(model_input)
        if texts.isna().any() or not all(isinstance(t, str) for t in texts):
            raise ValueError("every 'text' value must be a string")
        check_payload_size(texts)
        if hasattr(self.classifier, "predict_tasks"):  # a multi-task model: both tasks' columns
            return multitask_predictions_frame(self.classifier.predict_tasks(texts.tolist()), {
                task: head.labels for task, head in self.classifier.heads.items()})
        probabilities = self.classifier.predict_proba(texts.tolist())
        return predictions_frame(probabilities, self.classifier.labels)


def load_model(uri: str) -> Classifier:
    """A classifier from ``models:/NAME@alias``, ``models:/NAME/VERSION``, ``runs:/ID/model`` or a folder."""
    path = Path(uri)
    if path.is_dir() and (path / "meta.json").is_file():
        return load_classifier(path)
    if (path.is_dir() and (path / "MLmodel").is_file()) or uri.startswith(("models:/", "runs:/")):
        try:
            loaded = mlflow.pyfunc.load_model(uri)
        except mlflow.exceptions.MlflowException as err:
            raise ModelLoadError(
                f"could not load model {uri!r} from {mlflow.get_tracking_uri()}: {err.message}. "
                "Train one first (make train) or pass --model with an existing URI or folder") from err
        return loaded.unwrap_python_model().classifier
    raise ModelLoadError(f"{uri!r} is neither a models:/ or runs:/ URI nor a saved model folder")


def resolve_model(uri: str) -> tuple[str, str]:
    """What ``uri`` names right now: a URI pinned to it (an alias becomes its version) and a description
    of it (registered name, version and run id; a run id; or a folder and a fingerprint of its files).
    Loading the pinned URI loads exactly what the description names, even if the alias moves meanwhile."""
    path = Path(uri)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        digest = hashlib.sha256()
        for file in files:
            stat = file.stat()
            digest.update(f"{file.relative_to(path)}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
        return uri, f"folder {path.resolve()} (files {digest.hexdigest()[:12]})"
    if uri.startswith("runs:/"):
        return uri, f"run {uri.removeprefix('runs:/').split('/')[0]}"
    if not uri.startswith("models:/"):
        raise ModelLoadError(f"{uri!r} is neither a models:/ or runs:/ URI nor a saved model folder")
    name, _, rest = uri.removeprefix("models:/").partition("/")
    name, at, alias = name.partition("@")
    client = MlflowClient()
    try:
        if at:
            version = client.get_model_version_by_alias(name, alias)
        elif rest.isdigit():
            version = client.get_model_version(name, rest)
        else:  # a stage or "latest": kept as written
            return uri, uri
    except mlflow.exceptions.MlflowException as err:
        raise ModelLoadError(
            f"could not load model {uri!r} from {mlflow.get_tracking_uri()}: {err.message}. "
            "Train one first (make train) or pass --model with an existing URI or folder") from err
    return f"models:/{name}/{version.version}", f"{name} version {version.version} (run {version.run_id})"


# ---------------------------------------------------------------- runs


class Run:
    """Thin handle on an active MLflow run, so callers never import mlflow themselves."""

    def __init__(self, run: mlflow.ActiveRun):
        self.id = run.info.run_id
        self.experiment_id = run.info.experiment_id
        self.model_dir: Path | None = None

    def params(self, params: dict[str, Any]) -> None:
        mlflow.log_params({k: str(v)[:240] for k, v in params.items()})

    def metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if np.isfinite(v)}, step=step)

    def artifact(self, path: Path, folder: str | None = None) -> None:
        mlflow.log_artifact(str(path), artifact_path=folder)

    def artifacts(self, path: Path, folder: str | None = None) -> None:
        mlflow.log_artifacts(str(path), artifact_path=folder)

    def dict(self, data: dict[str, Any], name: str) -> None:
        mlflow.log_dict(data, name)

    def text(self, text: str, name: str) -> None:
        mlflow.log_text(text, name)

    def dataset(self, frame: pd.DataFrame, source: str, name: str, target: str | None, context: str) -> None:
        dataset = mlflow.data.from_pandas(frame, source=source, name=name, targets=target)
        mlflow.log_input(dataset, context=context)

    def tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def log_model(self, model_dir: Path, example_texts: list[str], example_output: pd.DataFrame,
                  registered_name: str | None, metadata: dict[str, Any] | None = None,
                  extra_requirements: tuple[str, ...] = ()) -> str | None:
        """Logs the classifier as an MLflow pyfunc model; returns the registered version, if any.

        ``metadata`` goes into the MLmodel file, for people reading it; the model itself reads its
        ``meta.json``."""
        example = pd.DataFrame({"text": example_texts})
        signature = mlflow.models.infer_signature(example, example_output)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=NewsClassifierModel(), artifacts={"model_dir": str(model_dir)},
            signature=signature, input_example=example, registered_model_name=registered_name,
            pip_requirements=[*PIP_REQUIREMENTS, *extra_requirements], metadata=metadata)
        location = MlflowClient().get_logged_model(info.model_id).artifact_location
        local = Path(urllib.parse.urlparse(location).path) if location.startswith(("file:", "/")) else None
        # The store's copy of the classifier folder, when the artifacts live on this disk.
        self.model_dir = local / "artifacts" / model_dir.name if local else None
        return str(info.registered_model_version) if registered_name else None


@contextmanager
def start_run(experiment: str, run_name: str, tags: dict[str, str], tracking: str = "") -> Iterator[Run]:
    wait_for_write_lock(setup(tracking))
    with mlflow.start_run(experiment_id=experiment_id(experiment), run_name=run_name, tags=tags) as run:
        yield Run(run)


# ---------------------------------------------------------------- champion


def champion_score(name: str) -> tuple[str | None, float | None]:
    """The champion's version and its validation macro-F1, or (None, None) when there is none."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None, None
    metrics = client.get_run(version.run_id).data.metrics
    return str(version.version), metrics.get(SELECTION_METRIC)


def promote_if_better(name: str, version: str, score: float, force: bool = False) -> bool:
    """Moves ``champion`` to ``version`` when its validation macro-F1 beats the current champion's."""
    _, current = champion_score(name)
    if force or current is None or score > current:
        MlflowClient().set_registered_model_alias(name, CHAMPION, version)
        return True
    return False


def champion_info(name: str) -> dict[str, str] | None:
    """The champion's version, run id, model family and encoder ("" for tfidf); None when there is none."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
    run = client.get_run(version.run_id)
    return {"version": str(version.version), "run_id": version.run_id,
            "family": run.data.tags.get("model_family", run.data.params.get("family", "")),
            "encoder": run.data.params.get("encoder", "")}


def set_champion(name: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(name, CHAMPION, version)


def annotate_run(run_id: str, tags: dict[str, str], metrics: dict[str, float]) -> None:
    """Adds tags and metrics to a finished run (a decision taken after it, such as a promotion)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_tag(run_id, key, value)
    for key, value in metrics.items():
        if np.isfinite(value):
            client.log_metric(run_id, key, float(value))


def log_label_sim(report: dict[str, Any], figure: Path, table: Path, tracking: str = "") -> str:
    """The label simulation (``make label-sim``) as one run of the ``label-sim`` experiment: one metric per
    strategy with the number of labels as its step, the curve and the table as artifacts."""
    tags = {"kind": "label-sim", "task": report["task"], "writer": report["writer"]}
    with start_run("label-sim", f"label-sim-{report['task']}-{report['writer']}", tags, tracking) as run:
        run.params({k: v for k, v in report.items() if isinstance(v, str | int | float) and not isinstance(v, bool)})
        for strategy, points in report["curves"].items():
            for labels, value in points:
                run.metrics({f"test_user/macro_f1_{strategy}": value}, step=int(labels))
        run.artifact(figure, "label-sim")
        run.artifact(table, "label-sim")
        return run.id


def run_artifact(run_id: str, path: str, folder: Path) -> Path | None:
    """Downloads one artifact of a run into ``folder``; None when the run did not log it."""
    logged = {a.path for a in MlflowClient().list_artifacts(run_id, str(Path(path).parent))}
    if path not in logged:
        return None
    return Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=str(folder)))


def search_runs(experiment: str, tracking: str = "") -> pd.DataFrame:
    setup(tracking)
    found = MlflowClient().get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    return mlflow.search_runs(experiment_ids=[found.experiment_id], order_by=["start_time DESC"])


# ---------------------------------------------------------------- scoring


def model_meta(uri: str) -> dict[str, Any]:
    """The ``meta.json`` saved with a model (labels, temperature, uncertain threshold), without its weights.

    ``uri`` is a models:/ or runs:/ URI, a logged model's folder (with MLmodel) or a saved model folder."""
    import yaml

    path = Path(uri)
    if path.is_dir() and (path / "meta.json").is_file():
        return json.loads((path / "meta.json").read_text())
    try:
        if path.is_dir():
            mlmodel = yaml.safe_load((path / "MLmodel").read_text())
        else:
            mlmodel = yaml.safe_load(Path(mlflow.artifacts.download_artifacts(
                f"{uri.rstrip('/')}/MLmodel")).read_text())
        folder = mlmodel["flavors"]["python_function"]["artifacts"]["model_dir"]["path"]
        meta = path / folder / "meta.json" if path.is_dir() else Path(
            mlflow.artifacts.download_artifacts(f"{uri.rstrip('/')}/{folder}/meta.json"))
        return json.loads(meta.read_text())
    except (mlflow.exceptions.MlflowException, KeyError, TypeError, OSError) as err:
        raise ModelLoadError(f"{uri!r} is not a logged model of this project (no model_dir/meta.json): "
                             f"{getattr(err, 'message', err)}") from err


def model_labels(uri: str, task: str | None = None) -> list[str]:
    """The label order saved with a logged model (its ``id2label``; of head ``task`` for a multi-task
    model), without loading its weights."""
    meta = model_meta(uri)
    id2label = meta["heads"][task]["id2label"] if task else meta["id2label"]
    return [id2label[str(i)] for i in range(len(id2label))]


def spark_udf(spark, uri: str, columns: list[str]):
    """The model as a Spark UDF returning a struct of its output ``columns`` (see ``output_columns``)."""
    fields = ", ".join(f"{c} {'string' if c.endswith('label') and 'prob_' not in c else 'double'}" for c in columns)
    return mlflow.pyfunc.spark_udf(spark, uri, result_type=fields, env_manager="local")


def log_scoring_run(cfg, inputs: list[str], out: Path, totals: dict[str, Any], new_articles: int,
                    new_sentences: int, seconds: float) -> str:
    tags = {"kind": "scoring", "engine": cfg.engine}
    with start_run("scoring", f"score-{out.name}", tags, cfg.tracking.tracking_uri) as run:
        models = ({"multitask_model": cfg.multitask_model} if cfg.models == "multitask" else
                  {"stance_model": cfg.stance_model, "sentiment_model": cfg.sentiment_model})
        run.params({"inputs": ",".join(inputs), "models": cfg.models, **models, "fast_path": cfg.fast_path,
                    "uncertain_threshold": cfg.uncertain_threshold, "engine": cfg.engine, "out": str(out)})
        n = max(totals["sentences"], 1)
        run.metrics({
            "score/articles": totals["articles"], "score/sentences": totals["sentences"],
            "score/errors": totals["errors"], "score/new_articles": new_articles,
            "score/articles_per_s": new_articles / max(seconds, 1e-9),
            "score/sentences_per_s": new_sentences / max(seconds, 1e-9),
            **{f"score/share_{label}": count / n for label, count in totals["stance_counts"].items()},
        })
        for name in ("articles.json", "collection.json", "errors.jsonl", "report.html"):
            run.artifact(out / name, "outputs")
        for name in ("sentences.parquet", "sentences.csv"):
            if (out / name).stat().st_size < 50_000_000:  # large tables stay in the output folder only
                run.artifact(out / name, "outputs")
        return run.id


def log_benchmark(kind: str, report: dict[str, Any]) -> str:
    """A benchmark's figures as one run of the ``benchmarks`` experiment."""
    with start_run("benchmarks", f"bench-{kind}", {"kind": "benchmark", "benchmark": kind}) as run:
        run.params({k: v for k, v in report.items() if isinstance(v, str)})
        run.metrics({f"bench/{k}": float(v) for k, v in report.items()
                     if isinstance(v, int | float) and not isinstance(v, bool)})
        run.dict(report, f"bench_{kind}.json")
        return run.id


def encoder_model_uri(name: str) -> str:
    """The champion's URI if it runs an encoder, else the newest registered version that does."""
    client = MlflowClient()
    versions = sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version), reverse=True)
    champion = next((v for v in versions if CHAMPION in (v.aliases or [])), None)
    for version in ([champion] if champion else []) + versions:
        if client.get_run(version.run_id).data.tags.get("model_family") != "tfidf":
            return f"models:/{name}/{version.version}"
    raise ModelLoadError(f"no registered {name} version runs an encoder: train one (make train MODEL=frozen)")
