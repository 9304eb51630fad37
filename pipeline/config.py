"""Typed, strictly checked configuration loaded from layered YAML files.

Every stage has one dataclass. ``load(cls, files, overrides)`` merges the files in order (later wins),
applies ``key.sub=value`` overrides, and rejects unknown keys, wrong types and out-of-range values with a
message that names the file and the key: ``expected int, found str in configs/base.yaml: train.epochs``,
``expected a value in [0, 1], found 7 in configs/score.yaml: uncertain_threshold``.

The documented YAML files (configs/base.yaml, configs/score.yaml, configs/data.yaml) and the dataclass
defaults hold the same values (a test checks it). Relative paths in a config are taken from the
repository root, so that every command works from any folder.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml

from pipeline import paths
from pipeline.errors import PipelineError

T = TypeVar("T")

STANCE_LABELS = ("confident", "wary", "accusatory", "dismissive", "neutral")
SENTIMENT_LABELS = ("positive", "negative", "neutral")
TASK_LABELS: dict[str, tuple[str, ...]] = {"stance": STANCE_LABELS, "sentiment": SENTIMENT_LABELS}

Task = Literal["stance", "sentiment", "both"]  # both: the multitask family, which learns the two together
Family = Literal["tfidf", "frozen", "setfit", "finetune", "multitask"]
MULTITASK_FAMILIES = ("multitask",)


class ConfigError(PipelineError, ValueError):
    """A configuration file or override is invalid; the message says where and how to fix it."""


# ---------------------------------------------------------------- value checks


@dataclasses.dataclass(frozen=True)
class Bounds:
    """A numeric range a config value must lie in; ``None`` leaves that side open-ended."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def describe(self) -> str:
        def number(x: float) -> str:
            return f"{x:g}"

        if self.low is not None and self.high is not None:
            return (f"in {'(' if self.low_open else '['}{number(self.low)}, "
                    f"{number(self.high)}{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {number(self.low)}"
        return f"{'<' if self.high_open else '<='} {number(self.high)}"

    def check(self, value: Any, where: str, written: Any = None) -> Any:
        below = self.low is not None and (value <= self.low if self.low_open else value < self.low)
        above = self.high is not None and (value >= self.high if self.high_open else value > self.high)
        if below or above:
            shown = value if written is None else written
            raise ConfigError(f"expected a value {self.describe()}, found {shown} in {where}")
        return value


class RepoRelative:
    """A path value: a relative one is taken from the repository root, not from the working folder."""

    def check(self, value: Any, where: str) -> Any:
        return str(paths.under_repo(value)) if value else value


FLOAT_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
PositiveInt = Annotated[int, Bounds(0, low_open=True)]
CountInt = Annotated[int, Bounds(0)]
PositiveFloat = Annotated[float, Bounds(0, low_open=True)]
NonNegativeFloat = Annotated[float, Bounds(0)]
Share = Annotated[float, Bounds(0, 1)]
RepoPath = Annotated[str, RepoRelative()]


DEFAULT_CORPUS = str(paths.DATA / "corpus")
DEFAULT_TRAIN_OUTPUT = str(paths.OUTPUTS / "train")
DEFAULT_SUITE = str(paths.DATA / "boundary" / "suite.jsonl")


# ---------------------------------------------------------------- stage configs


@dataclasses.dataclass
class DataConfig:
    corpus_dir: RepoPath = DEFAULT_CORPUS
    splits: tuple[str, ...] = ("train", "val", "test")
    near_duplicate_jaccard: Share = 0.8
    min_sentences_per_stance: CountInt = 600
    min_articles: CountInt = 300
    min_domains: CountInt = 15
    max_domain_share: Share = 0.12
    min_registers: CountInt = 8
    suite_file: RepoPath = DEFAULT_SUITE  # "" skips the boundary suite
    min_suite_per_rule: CountInt = 40
    # A user's own labels (pipeline label import): globs of JSON Lines files; () trains on the corpus alone.
    user_files: tuple[RepoPath, ...] = ()
    user_holdout_share: Annotated[float, Bounds(0, 1, low_open=True, high_open=True)] = 0.3
    user_weight: PositiveFloat = 2.0
    # Unlabeled sentences for distillation (model.distill_from): globs of text files, one sentence per line.
    unlabeled_files: tuple[RepoPath, ...] = ()


@dataclasses.dataclass
class ModelConfig:
    family: Family = "tfidf"
    encoder: str = "mpnet"
    max_length: PositiveInt = 128
    tfidf_max_features: PositiveInt = 60000
    tfidf_C: PositiveFloat = 4.0
    head_C: PositiveFloat = 2.0
    freeze_layers: CountInt = 0
    setfit_pairs_per_sentence: PositiveInt = 4
    setfit_epochs: PositiveInt = 1
    multitask_sentiment_weight: Annotated[float, Bounds(0, 10, low_open=True)] = 1.0
    # A multi-task teacher's URI: the model learns the teacher's soft labels (at distill_temperature) on the
    # training texts and data.unlabeled_files instead of the corpus labels, and registers as the fast tier.
    distill_from: str = ""
    distill_temperature: PositiveFloat = 2.0


@dataclasses.dataclass
class TrainingConfig:
    seed: int = 42
    epochs: PositiveFloat = 2.0
    learning_rate: PositiveFloat = 2e-5
    layerwise_lr_decay: Annotated[float, Bounds(0, 1, low_open=True)] = 0.9
    weight_decay: NonNegativeFloat = 0.01
    warmup_ratio: Share = 0.1
    batch_size: PositiveInt = 16
    eval_batch_size: PositiveInt = 64
    class_weights: bool = True
    bf16: bool = True
    early_stopping_patience: CountInt = 2
    evals_per_epoch: PositiveInt = 2
    group_by_length: bool = True
    use_cpu: bool = True
    max_train_rows: CountInt = 0
    resume_from_checkpoint: RepoPath = ""
    keep_checkpoints: bool = False
    output_dir: RepoPath = DEFAULT_TRAIN_OUTPUT


@dataclasses.dataclass
class CalibrationConfig:
    temperature_scaling: bool = True
    target_accuracy: Annotated[float, Bounds(0, 1, low_open=True)] = 0.95


@dataclasses.dataclass
class TrackingConfig:
    tracking_uri: str = ""
    register: bool = True
    promote: bool = False
    auto_promote: bool = True  # false: register only; the caller decides (make train-user)


@dataclasses.dataclass
class TrainConfig:
    task: Task = "stance"
    text_column: str = "text"
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    training: TrainingConfig = dataclasses.field(default_factory=TrainingConfig)
    calibration: CalibrationConfig = dataclasses.field(default_factory=CalibrationConfig)
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)


@dataclasses.dataclass
class EvaluateConfig:
    model: str = "models:/stance-classifier@champion"
    data: str = str(paths.DATA / "corpus" / "test.jsonl")
    text_column: str = "text"
    label_column: str = ""  # "" = the model's task name (stance or sentiment)
    batch_size: PositiveInt = 64
    suite: bool = False  # data is the boundary suite: accuracy per border rule and on minimal pairs
    tracking_uri: str = ""


@dataclasses.dataclass
class ScoreConfig:
    models: Literal["auto", "single", "multitask"] = "auto"  # auto: multitask if multitask_model resolves
    stance_model: str = "models:/stance-classifier@champion"
    sentiment_model: str = "models:/sentiment-classifier@champion"
    multitask_model: str = "models:/news-classifier@champion"
    uncertain_threshold: Share | None = None  # None: the threshold saved with the stance model
    id_column: str = "id"
    text_column: str = "text"
    chunk_articles: PositiveInt = 256
    batch_size: PositiveInt = 128
    batch_tokens: CountInt = 4096  # > 0: a batch also stops before this many padded tokens
    fixed_shapes: bool = True  # with batch_tokens: batches of a fixed set of shapes (models.base.fixed_shape_batches)
    max_article_bytes: PositiveInt = 1_000_000
    fast_path: Literal["none", "autocast", "bf16", "fused", "int8"] = "fused"
    engine: Literal["local", "spark"] = "local"
    spark_master: str = "local[*]"
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)


# The encoder's feed-forward output projections (3,072 -> 768 in MPNet): their inputs carry the largest
# activation outliers in BERT-like encoders, the usual layers to keep out of int8.
FEED_FORWARD_OUTPUTS = r".*layer\.\d+\.output\.dense.*"


@dataclasses.dataclass
class QuantizeConfig:
    source_model: str = "models:/news-classifier@champion"  # the multi-task model to quantise
    corpus_dir: RepoPath = DEFAULT_CORPUS
    calibration_sentences: PositiveInt = 300  # training sentences that set the int8 activation ranges
    keep: tuple[str, ...] = (FEED_FORWARD_OUTPUTS,)  # regular expressions over layer names: these stay in bf16
    batch_tokens: PositiveInt = 4096
    max_loss_points: float = 0.5  # the gate: most validation macro-F1 points lost on either task
    seed: int = 0
    calibration: CalibrationConfig = dataclasses.field(default_factory=CalibrationConfig)
    tracking: TrackingConfig = dataclasses.field(default_factory=TrackingConfig)


LabelStrategy = Literal["margin", "entropy", "random"]


@dataclasses.dataclass
class LabelExportConfig:
    scores_dir: RepoPath = str(paths.OUTPUTS / "scores" / "examples")
    out: RepoPath = str(paths.OUTPUTS / "label" / "tasks.json")
    n: PositiveInt = 200
    strategy: LabelStrategy = "margin"
    max_per_article: PositiveInt = 3
    near_duplicate_jaccard: Share = 0.8
    context: CountInt = 1  # sentences shown before and after
    min_words: CountInt = 4  # shorter sentences (datelines, bylines) are not worth a label
    skip_labeled: tuple[RepoPath, ...] = (str(paths.DATA / "user" / "*.jsonl"),)
    seed: int = 0


@dataclasses.dataclass
class LabelImportConfig:
    export: RepoPath = ""
    out: RepoPath = str(paths.DATA / "user" / "labels.jsonl")
    overwrite: bool = False  # conflicting labels: false keeps the existing label and lists the conflict


@dataclasses.dataclass
class LabelSimConfig:
    task: Task = "stance"
    writer: str = "w5"
    holdout_share: Annotated[float, Bounds(0, 1, low_open=True, high_open=True)] = 0.4
    budgets: tuple[PositiveInt, ...] = (50, 100, 200, 400)
    strategies: tuple[LabelStrategy, ...] = ("margin", "entropy", "random")
    random_seeds: tuple[int, ...] = (1, 2, 3)
    max_per_article: PositiveInt = 3
    user_weight: PositiveFloat = 2.0
    finetune_encoder: str = ""  # "minilm": one fine-tuned point per strategy at finetune_budget labels (slow)
    finetune_budget: PositiveInt = 200
    corpus_dir: RepoPath = DEFAULT_CORPUS
    out: RepoPath = str(paths.OUTPUTS / "label-sim")
    figure: RepoPath = str(paths.REPO_ROOT / "docs" / "img" / "label-sim.png")
    tracking_uri: str = ""


# ---------------------------------------------------------------- loading


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " or ".join(repr(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return "list"
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Checks ``value`` against the annotation ``tp``; returns it (tuples for lists) or raises."""
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *checks = typing.get_args(tp)
        coerced = _coerce(value, base, where)
        for check in checks:
            if isinstance(check, Bounds):
                check.check(coerced, where, written=value)  # the message quotes the value as written
            else:
                coerced = check.check(coerced, where)
        return coerced
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"expected {_type_name(tp)}, found {value!r} in {where}")
        return value
    if origin in (typing.Union, types.UnionType):
        errors = []
        for arg in typing.get_args(tp):
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0])
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"expected list, found {type(value).__name__} in {where}")
        (item_tp, *_) = typing.get_args(tp)
        return tuple(_coerce(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value))
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str) and FLOAT_TEXT.fullmatch(value.strip()):
        return float(value)  # YAML 1.1 reads 3e-5 (no dot) as a string
    if tp is type(None):
        if value is not None:
            raise ConfigError(f"expected null, found {type(value).__name__} in {where}")
        return value
    if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
        raise ConfigError(f"expected {_type_name(tp)}, found {type(value).__name__} in {where}")
    return value


def _build(cls: type[T], raw: dict[str, Any], origins: dict[str, str], prefix: str = "") -> T:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in raw:
        if key not in names:
            where = origins.get(prefix + key, "config")
            raise ConfigError(
                f"unknown key in {where}: {prefix}{key} (allowed: {', '.join(sorted(names))})"
            )
    kwargs = {}
    for name in names:
        if name not in raw:
            continue
        tp = hints[name]
        path = prefix + name
        if dataclasses.is_dataclass(tp):
            if not isinstance(raw[name], dict):
                where = origins.get(path, "config")
                raise ConfigError(f"expected mapping, found {type(raw[name]).__name__} in {where}: {path}")
            kwargs[name] = _build(tp, raw[name], origins, path + ".")
        else:
            kwargs[name] = _coerce(raw[name], tp, f"{origins.get(path, 'config')}: {path}")
    return cls(**kwargs)


def _merge(base: dict[str, Any], update: dict[str, Any], source: str, origins: dict[str, str], prefix="") -> None:
    for key, value in update.items():
        path = prefix + str(key)
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, source, origins, path + ".")
        else:
            base[key] = value
            _record_origins(value, source, origins, path)


def _record_origins(value: Any, source: str, origins: dict[str, str], path: str) -> None:
    origins[path] = source
    if isinstance(value, dict):
        for key, sub in value.items():
            _record_origins(sub, source, origins, f"{path}.{key}")


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path} is not valid YAML: {err}") from err
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"expected mapping, found {type(loaded).__name__} in {path}: (top level)")
    return loaded


def parse_override(text: str) -> tuple[str, Any]:
    """``training.epochs=3`` -> ("training.epochs", 3); the value is read as YAML."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not KEY=VALUE (example: --set training.epochs=3)")
    return key.strip(), yaml.safe_load(value) if value.strip() else ""


def load(cls: type[T], files: list[str | Path] = (), overrides: list[str] = ()) -> T:
    """Builds ``cls`` from defaults, then each YAML file in order, then ``key=value`` overrides."""
    raw: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for file in files:
        _merge(raw, read_yaml(file), str(file), origins)
    for text in overrides:
        key, value = parse_override(text)
        nested: dict[str, Any] = value
        for part in reversed(key.split(".")):
            nested = {part: nested}
        _merge(raw, nested, f"--set {text}", origins)
    return _build(cls, raw, origins)


def from_options(cls: type[T], **values: Any) -> T:
    """Builds ``cls`` from command-line options, checked like a file: errors name the option."""
    given = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if v is not None}
    origins = {k: f"option --{k.replace('_', '-')}" for k in given}
    return _build(cls, given, origins)


def to_dict(cfg: Any) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        if isinstance(value, tuple):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(cfg))


def train_config(task: str | None = None, family: str | None = None, experiment: str | Path | None = None,
                 overrides: list[str] = (), config_dir: str | Path = paths.CONFIGS) -> TrainConfig:
    """Layers base, task, model family, an optional experiment file, then ``key=value`` overrides.

    The task and family pick the files: ``--set task=...``/``--set model.family=...`` win over the
    ``task``/``family`` arguments, which win over what an experiment names. ``--set`` is applied last,
    so it wins for every key.
    """
    config_dir = Path(config_dir)
    chosen = read_yaml(experiment) if experiment else {}
    given = dict(parse_override(text) for text in overrides)
    model_section = chosen.get("model") if isinstance(chosen.get("model"), dict) else {}
    family = str(given.get("model.family") or family or model_section.get("family") or "tfidf")
    where = ("--set task" if given.get("task") else "--task" if task else
             f"{experiment}: task" if chosen.get("task") else "the default task")
    default_task = "both" if family in MULTITASK_FAMILIES else "stance"
    task = str(given.get("task") or task or chosen.get("task") or default_task)
    if (family in MULTITASK_FAMILIES) != (task == "both"):
        raise ConfigError(
            f"task {task!r} does not go with model family {family!r} ({where}): the multitask family learns "
            "both tasks (task both, or leave the task out); stance and sentiment take a single-task family")
    files: list[str | Path] = [config_dir / "base.yaml"]
    for sub, name in (("task", task), ("model", family)):
        file = config_dir / sub / f"{name}.yaml"
        if not file.is_file():
            choices = sorted(p.stem for p in file.parent.glob("*.yaml"))
            raise ConfigError(f"no {sub} config {name!r} ({file}): choose one of {', '.join(choices)}")
        files.append(file)
    if experiment:
        files.append(experiment)
    pinned = [f"task={task}", f"model.family={family}"]
    return load(TrainConfig, files, [*pinned, *overrides])
