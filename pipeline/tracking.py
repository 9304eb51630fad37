"""The one module that talks to MLflow: store set-up, runs, models, the registry and the champion alias."""

from __future__ import annotations

import hashlib
import os
import subprocess
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
from pipeline.model import Classifier, load_classifier

CHAMPION = "champion"
SELECTION_METRIC = "best/val_macro_f1"
REGISTERED_NAMES = {"stance": "stance-classifier", "sentiment": "sentiment-classifier"}
# What the logged model needs at serving time; listing it avoids MLflow's slow dependency inference.
PIP_REQUIREMENTS = ["torch==2.13.0", "transformers==5.24.0", "scikit-learn==1.9.1", "pandas==3.1.1",
                    "mlflow==3.17.2", "joblib", "newsstance"]


class ModelLoadError(PipelineError, RuntimeError):
    """A model URI could not be resolved or loaded; the message names the URI and what to try."""


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
        setup(saved_env or "")


def setup(configured: str = "") -> str:
    uri = tracking_uri(configured)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return uri


def _artifact_root(uri: str) -> str | None:
    """Artifacts beside a sqlite store (``<store dir>/mlruns``), as an absolute location."""
    if uri.startswith("sqlite:///"):
        return str(Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlruns")
    return None


def experiment_id(name: str) -> str:
    client = MlflowClient()
    found = client.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    root = _artifact_root(mlflow.get_tracking_uri())
    return client.create_experiment(name, artifact_location=f"{root}/{name}" if root else None)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---------------------------------------------------------------- pyfunc model


def predictions_frame(probabilities: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """label, confidence and one ``prob_<label>`` column per label: the model's output contract."""
    frame = pd.DataFrame({"label": [labels[i] for i in probabilities.argmax(1)],
                          "confidence": probabilities.max(1).astype(float)})
    for i, label in enumerate(labels):
        frame[f"prob_{label}"] = probabilities[:, i].astype(float)
    return frame


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

    def dataset(self, frame: pd.DataFrame, source: str, name: str, target: str, context: str) -> None:
        dataset = mlflow.data.from_pandas(frame, source=source, name=name, targets=target)
        mlflow.log_input(dataset, context=context)

    def tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def log_model(self, model_dir: Path, example_texts: list[str], example_output: pd.DataFrame,
                  registered_name: str | None) -> str | None:
        """Logs the classifier as an MLflow pyfunc model; returns the registered version, if any."""
        example = pd.DataFrame({"text": example_texts})
        signature = mlflow.models.infer_signature(example, example_output)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=NewsClassifierModel(), artifacts={"model_dir": str(model_dir)},
            signature=signature, input_example=example, registered_model_name=registered_name,
            pip_requirements=PIP_REQUIREMENTS)
        return str(info.registered_model_version) if registered_name else None


@contextmanager
def start_run(experiment: str, run_name: str, tags: dict[str, str], tracking: str = "") -> Iterator[Run]:
    setup(tracking)
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


def search_runs(experiment: str, tracking: str = "") -> pd.DataFrame:
    setup(tracking)
    found = MlflowClient().get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    return mlflow.search_runs(experiment_ids=[found.experiment_id], order_by=["start_time DESC"])


# ---------------------------------------------------------------- scoring


def model_labels(uri: str) -> list[str]:
    """The label order saved with a logged model (its ``id2label``), without loading its weights."""
    import json

    import yaml

    try:
        mlmodel = yaml.safe_load(Path(mlflow.artifacts.download_artifacts(f"{uri.rstrip('/')}/MLmodel")).read_text())
        folder = mlmodel["flavors"]["python_function"]["artifacts"]["model_dir"]["path"]
        meta = mlflow.artifacts.download_artifacts(f"{uri.rstrip('/')}/{folder}/meta.json")
    except (mlflow.exceptions.MlflowException, KeyError, TypeError) as err:
        raise ModelLoadError(f"{uri!r} is not a logged model of this project (no model_dir/meta.json): "
                             f"{getattr(err, 'message', err)}") from err
    id2label = json.loads(Path(meta).read_text())["id2label"]
    return [id2label[str(i)] for i in range(len(id2label))]


def spark_udf(spark, uri: str, labels: list[str]):
    """The model as a Spark UDF returning a struct of label, confidence and one prob_<label> per label."""
    fields = ", ".join(["label string", "confidence double", *(f"prob_{lab} double" for lab in labels)])
    return mlflow.pyfunc.spark_udf(spark, uri, result_type=fields, env_manager="local")


def log_scoring_run(cfg, inputs: list[str], out: Path, totals: dict[str, Any], new_articles: int,
                    new_sentences: int, seconds: float) -> str:
    tags = {"kind": "scoring", "engine": cfg.engine}
    with start_run("scoring", f"score-{out.name}", tags, cfg.tracking.tracking_uri) as run:
        run.params({"inputs": ",".join(inputs), "stance_model": cfg.stance_model,
                    "sentiment_model": cfg.sentiment_model, "fast_path": cfg.fast_path,
                    "uncertain_threshold": cfg.uncertain_threshold, "engine": cfg.engine, "out": str(out)})
        n = max(totals["sentences"], 1)
        run.metrics({
            "score/articles": totals["articles"], "score/sentences": totals["sentences"],
            "score/errors": totals["errors"], "score/new_articles": new_articles,
            "score/articles_per_s": new_articles / max(seconds, 1e-9),
            "score/sentences_per_s": new_sentences / max(seconds, 1e-9),
            **{f"score/share_{label}": count / n for label, count in totals["stance_counts"].items()},
        })
        for name in ("articles.json", "errors.jsonl", "report.html"):
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
