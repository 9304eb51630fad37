"""Command line: each command loads its stage's config and calls that stage's ``run``; nothing more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from pipeline import config, paths
from pipeline.errors import PipelineError

MAX_ERROR_LINES = 5


def error_line(err: PipelineError) -> str:
    """One line for the terminal; a message that lists several problems shows the first few."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()] or [type(err).__name__]
    shown = "; ".join(lines[:MAX_ERROR_LINES])
    more = len(lines) - MAX_ERROR_LINES
    return f"error: {shown}" + (f" (and {more} more)" if more > 0 else "")


class ErrorsAsOneLine(TyperGroup):
    """Every command, nested ones included: a PipelineError becomes one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PipelineError as err:
            typer.echo(error_line(err), err=True)
            raise typer.Exit(2) from err


app = typer.Typer(help="News stance and sentiment pipeline.", no_args_is_help=True,
                  pretty_exceptions_enable=False, cls=ErrorsAsOneLine)
data_app = typer.Typer(help="Check and audit the labeled corpus.", no_args_is_help=True)
app.add_typer(data_app, name="data")
bench_app = typer.Typer(help="Benchmarks: ratios against a baseline run in the same process.",
                        no_args_is_help=True)
app.add_typer(bench_app, name="bench")
label_app = typer.Typer(help="Label your own articles: Label Studio tasks out, labels in, retrain.",
                        no_args_is_help=True)
app.add_typer(label_app, name="label")
console = Console()

ROOT = paths.REPO_ROOT  # default paths are anchored here, so commands work from any folder
SetOption = Annotated[list[str], typer.Option("--set", help="Override a config key: --set training.epochs=3")]


def _table(title: str, rows: list[dict], columns: list[str]) -> Table:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")  # a narrow terminal wraps a name, never cuts it
    for row in rows:
        table.add_row(*(f"{row[c]:.3f}" if isinstance(row[c], float) else str(row[c]) for c in columns))
    return table


@data_app.command("validate")
def data_validate(
    config_file: Annotated[Path, typer.Option("--config", help="Data config YAML")] = ROOT / "configs/data.yaml",
    overrides: SetOption = None,
) -> None:
    """Check schema, labels, duplicates, leakage, balance and realism of the corpus."""
    from pipeline import data

    cfg = config.load(config.DataConfig, [config_file], overrides or [])
    result = data.validate(cfg)
    if not result.table.empty:
        console.print(result.table.to_string())
    if result.counts:
        console.print(_table("corpus", [result.counts], list(result.counts)))
    if result.figures:
        rows = [{"figure": k, "value": v, "required": " ".join(map(str, data.REALISM_LIMITS[k]))}
                for k, v in result.figures.items()]
        console.print(_table("realism", rows, ["figure", "value", "required"]))
    for error in result.errors:
        console.print(f"[red]{error}[/]", highlight=False, soft_wrap=True)
    if not result.ok:
        console.print(f"[bold red]{len(result.errors)} problem(s) in {cfg.corpus_dir}[/]")
        raise typer.Exit(1)
    console.print(f"[green]corpus OK[/] (data version {result.data_version})")


@data_app.command("card")
def data_card(
    config_file: Annotated[Path, typer.Option("--config", help="Data config YAML")] = ROOT / "configs/data.yaml",
) -> None:
    """Print the data card's count tables and realism figures as Markdown (for docs/data.md)."""
    from pipeline import data

    print(data.card_tables(config.load(config.DataConfig, [config_file])))


@data_app.command("audit")
def data_audit(
    corpus_dir: Annotated[Path, typer.Option(help="Corpus folder")] = ROOT / "data/corpus",
    audit_file: Annotated[Path, typer.Option(help="Blind second-pass labels")] = (
        ROOT / "data/audit/second_pass.jsonl"),
    out: Annotated[Path, typer.Option(help="Where the audit report goes")] = ROOT / "outputs/audit",
) -> None:
    """Cohen's kappa against the blind second pass, and a confident-learning pass (cleanlab)."""
    from pipeline import audit

    result = audit.run(audit.AuditConfig(str(corpus_dir), str(audit_file), str(out)))
    console.print_json(json.dumps(result.summary))


@data_app.command("border-candidates")
def data_border_candidates(
    corpus_dir: Annotated[Path, typer.Option(help="Corpus folder")] = ROOT / "data/corpus",
    out: Annotated[Path, typer.Option(help="Blind candidates file (JSON Lines)")] = (
        ROOT / "outputs/relabel/candidates.jsonl"),
) -> None:
    """List the sentences a border rule (docs/labels.md B1-B7, S1) touches, without labels, for a relabel pass."""
    from pipeline import audit

    count = audit.border_candidates(str(corpus_dir), out)
    console.print(f"{count} border candidates -> {out}")


@app.command()
def train(
    task: Annotated[str | None, typer.Option(
        help="stance | sentiment (default: the experiment's); both for --model multitask (its default)")] = None,
    model: Annotated[str | None, typer.Option(help="tfidf | frozen | setfit | finetune | multitask (one encoder, "
                                                   "both tasks)")] = None,
    experiment: Annotated[Path | None, typer.Option(help="Experiment override YAML")] = None,
    promote: Annotated[bool, typer.Option(help="Make this run champion whatever its score")] = False,
    keep_checkpoints: Annotated[bool, typer.Option(
        help="Keep the fine-tuning checkpoints (with optimizer state) to resume from later")] = False,
    config_dir: Annotated[Path, typer.Option(help="Config folder")] = ROOT / "configs",
    result_file: Annotated[Path | None, typer.Option("--result", help="Write the run's summary JSON here")] = None,
    overrides: SetOption = None,
) -> None:
    """Train one model family for one task (multitask: both tasks in one model); track it in MLflow and register
    it."""
    from pipeline import train as train_stage

    extra = ["tracking.promote=true"] if promote else []
    extra += ["training.keep_checkpoints=true"] if keep_checkpoints else []
    cfg = config.train_config(task, model, experiment, [*extra, *(overrides or [])], config_dir)
    result = train_stage.run(cfg)
    if result.run_id is None:
        return
    row = {"run": result.run_name, "best val macro-F1": result.best_val_macro_f1,
           "test macro-F1": result.test["macro_f1"], "train s": result.train_seconds,
           "version": result.registered_version or "-", "champion": "yes" if result.promoted else "no"}
    if cfg.task == "both":  # the two F1s above are the means of the tasks': each task's own too
        row |= {f"{task} {split} F1": values[f"{task}/macro_f1"] for task in ("stance", "sentiment")
                for split, values in (("val", result.val), ("test", result.test))}
    console.print(_table(f"{cfg.task} / {cfg.model.family}", [row], list(row)))
    console.print(f"disk used by this run: {result.disk_mib:.1f} MiB (the model, kept once, in the store: "
                  f"{result.model_dir}; checkpoints kept: {'yes' if cfg.training.keep_checkpoints else 'no'})",
                  highlight=False, soft_wrap=True)
    if result_file:
        summary = {**row, "run_id": result.run_id, "task": cfg.task, "model": train_stage.model_label(cfg),
                   "registered_name": train_stage.registered_name(cfg),
                   "seed": cfg.training.seed, "experiment": str(experiment or ""), "val": result.val,
                   "test": result.test}
        _write_result(result_file, summary)


@app.command()
def evaluate(
    model: Annotated[str, typer.Option(help="models:/NAME@alias, runs:/ID/model or a model folder")],
    data: Annotated[Path | None, typer.Option(help="Labeled CSV, JSONL or Parquet file (with --suite: the "
                                                   "suite file, default data/boundary/suite.jsonl)")] = None,
    suite: Annotated[bool, typer.Option("--suite", help="Accuracy per border rule on the boundary suite")] = False,
    text_column: Annotated[str, typer.Option(help="Column with the text")] = "text",
    label_column: Annotated[str, typer.Option(help="Column with the gold label (default: the task; a multitask "
                                                    "model: stance or sentiment, the head evaluated)")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON")] = False,
) -> None:
    """Evaluate any model on any labeled file, or on the boundary suite (--suite); logs an evaluation run."""
    from pipeline import evaluate as evaluate_stage
    from pipeline.data import DataError

    if data is None and not suite:
        raise DataError("evaluate needs --data FILE (a labeled table) or --suite (the boundary suite)")
    data = data or Path(config.DataConfig().suite_file)
    cfg = config.EvaluateConfig(model=model, data=str(data), text_column=text_column, label_column=label_column,
                                suite=suite)
    result = evaluate_stage.run(cfg)
    if as_json:
        print(json.dumps({"task": result.task, "n_rows": result.n_rows, "run_id": result.run_id,
                          **result.metrics}, indent=2))
        return
    if suite:
        rows = [{"rule": k.removeprefix("suite/"), "accuracy": v} for k, v in result.metrics.items()
                if k != "suite/pairs"]
        console.print(_table(f"{result.task}: suite", rows, ["rule", "accuracy"]))
        console.print(f"boundary suite: {result.n_rows} sentences, {int(result.metrics.get('suite/pairs', 0))} "
                      f"minimal pairs crossing a {result.task} border (docs/labels.md)", highlight=False)
        return
    per_class = [{"label": k.removeprefix("f1_"), "f1": v} for k, v in result.metrics.items() if k.startswith("f1_")]
    console.print(f"{result.task}: macro-F1 {result.metrics['macro_f1']:.3f}, accuracy "
                  f"{result.metrics['accuracy']:.3f}, ECE {result.metrics['ece']:.3f} on {result.n_rows} rows")
    console.print(_table("per class", per_class, ["label", "f1"]))


def _write_result(path: Path, summary: dict) -> None:
    """A stage's summary JSON, written whole or not at all (make reads it as the target's output)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(path)


@app.command()
def quantize(
    source_model: Annotated[str | None, typer.Option(help="Multi-task model to quantise (default: "
                                                          "models:/news-classifier@champion)")] = None,
    config_file: Annotated[Path, typer.Option("--config", help="Quantise config YAML")] = (
        ROOT / "configs/quantize.yaml"),
    result_file: Annotated[Path | None, typer.Option("--result", help="Write the run's summary JSON here")] = None,
    overrides: SetOption = None,
) -> None:
    """The multi-task model in int8 (OpenVINO + NNCF): macro-F1 against the source on validation and test,
    registered as news-classifier-int8, champion only if it passes the gate."""
    from pipeline import quantize as quantize_stage
    from pipeline import tracking

    extra = [f"source_model={source_model}"] if source_model else []
    cfg = config.load(config.QuantizeConfig, [config_file], [*extra, *(overrides or [])])
    result = quantize_stage.run(cfg)
    rows = [{"split": split, **{f"{task} {name}": round(figures[split][task], 4)
                                for task in ("stance", "sentiment")
                                for name, figures in (("source", result.source), ("int8", result.int8))},
             **{f"{task} change (points)": round(change, 2) for task, change in result.change_points(split).items()}}
            for split in ("val", "test")]
    console.print(_table(f"int8 ({result.run_name})", rows, list(rows[0])))
    verdict = "passes" if result.passes else "does not pass"
    console.print(f"int8 {verdict} the gate (at most {cfg.max_loss_points} validation points lost on each task); "
                  f"registered {tracking.REGISTERED_NAMES['int8']} version {result.registered_version or '-'}, "
                  f"champion: {'yes' if result.promoted else 'no'}", highlight=False, soft_wrap=True)
    if result_file:
        mean = {split: sum(result.int8[split].values()) / 2 for split in ("val", "test")}
        summary = {"run": result.run_name, "run_id": result.run_id, "task": "both", "model": "multitask-int8",
                   "registered_name": tracking.REGISTERED_NAMES["int8"], "best val macro-F1": mean["val"],
                   "test macro-F1": mean["test"], "version": result.registered_version or "-",
                   "champion": "yes" if result.promoted else "no", "passes_gate": result.passes,
                   "source": result.source, "int8": result.int8, "quantize s": result.quantize_seconds}
        _write_result(result_file, summary)


@app.command()
def score(
    inputs: Annotated[list[Path], typer.Argument(help="Files or folders: .txt .jsonl .csv .parquet .html")],
    out: Annotated[Path, typer.Option(help="Output folder")] = ROOT / "outputs/scores",
    model: Annotated[str | None, typer.Option(help="Stance model URI or folder (scores with single-task models); "
                                                   "fast: the distilled news-classifier-fast for both tasks; int8: "
                                                   "news-classifier-int8")] = None,
    sentiment_model: Annotated[str | None, typer.Option(help="Sentiment model URI or folder (single-task)")] = None,
    multitask: Annotated[bool, typer.Option("--multitask", help="Label both tasks with the multi-task model "
                                            "(one encoder pass; multitask_model, default "
                                            "models:/news-classifier@champion)")] = False,
    multitask_model: Annotated[str | None, typer.Option(help="Multi-task model URI or folder (implies "
                                                             "--multitask)")] = None,
    engine: Annotated[str | None, typer.Option(help="local | spark")] = None,
    spark_master: Annotated[str | None, typer.Option(help="Spark master URL")] = None,
    config_file: Annotated[Path, typer.Option("--config", help="Score config YAML")] = ROOT / "configs/score.yaml",
    fresh: Annotated[bool, typer.Option(help="Clear the output folder's finished parts and score everything again")
                     ] = False,
    overrides: SetOption = None,
) -> None:
    """Score article collections: per-sentence stance and sentiment, stakeholders, summaries."""
    from pipeline import score as score_stage
    from pipeline import tracking

    if model in ("fast", "int8"):  # the distilled tier or the int8 model: one multi-task model for both tasks
        model, multitask_model = None, multitask_model or f"models:/{tracking.REGISTERED_NAMES[model]}@champion"
    extra = [f"stance_model={model}"] if model else []
    extra += [f"sentiment_model={sentiment_model}"] if sentiment_model else []
    if (multitask or multitask_model) and (model or sentiment_model):
        raise typer.BadParameter("--multitask labels both tasks with one model: drop --model/--sentiment-model, "
                                 "or drop --multitask to use them")
    # A single-task model named on the command line wins over models: auto's choice of the multi-task one.
    extra += ["models=single"] if model or sentiment_model else []
    extra += ["models=multitask"] if multitask or multitask_model else []
    extra += [f"multitask_model={multitask_model}"] if multitask_model else []
    extra += [f"engine={engine}"] if engine else []
    extra += [f"spark_master={spark_master}"] if spark_master else []
    cfg = config.load(config.ScoreConfig, [config_file], [*extra, *(overrides or [])])
    result = score_stage.run(cfg, [str(p) for p in inputs], str(out), fresh=fresh)
    console.print(_table("scoring", [result.summary()], list(result.summary())))


@app.command()
def compare(
    task: Annotated[str, typer.Option(help="stance | sentiment")] = "stance",
    out: Annotated[Path, typer.Option(help="Folder for the comparison artifact")] = ROOT / "outputs/compare",
    runs: Annotated[list[str] | None, typer.Option("--run", help="Run name or id to put side by side "
                                                   "(repeat; default: the 4 best by validation macro-F1)")] = None,
) -> None:
    """Table of the tracked runs of a task, per-class F1 bars, and chosen runs side by side."""
    from pipeline import compare as compare_stage

    result = compare_stage.run(compare_stage.CompareConfig(task=task, out=str(out), runs=runs or []))
    if result.table.empty:
        console.print(f"no {task} runs in the store yet: run `make train` first")
        raise typer.Exit(1)
    console.print(result.table.drop(columns="run_id").to_string(index=False))
    console.print(f"per-class F1 chart: {result.chart}")
    console.print(f"runs side by side (per-class F1, confusion matrices, learning curves): {result.side_by_side}")


@label_app.command("export")
def label_export(
    scores_dir: Annotated[Path, typer.Argument(help="A scoring output folder (python -m pipeline score)")],
    out: Annotated[Path, typer.Option(help="Label Studio tasks JSON")] = ROOT / "outputs/label/tasks.json",
    n: Annotated[int, typer.Option(help="Sentences to label")] = 200,
    strategy: Annotated[str, typer.Option(help="margin | entropy | random")] = "margin",
    max_per_article: Annotated[int, typer.Option(help="At most this many sentences per article")] = 3,
    seed: Annotated[int, typer.Option(help="Seed of the random strategy")] = 0,
) -> None:
    """Pick the sentences the model is least sure of and write them as Label Studio tasks with its guesses."""
    from pipeline import label

    cfg = config.from_options(config.LabelExportConfig, scores_dir=str(scores_dir), out=str(out), n=n,
                              strategy=strategy, max_per_article=max_per_article, seed=seed)
    result = label.export_tasks(cfg)
    console.print(f"{result.tasks} tasks ({result.strategy}) -> {_shown(result.out)}: picked from {result.candidates} "
                  f"sentences ({result.already_labeled} already labeled were left out, {result.near_duplicates} near "
                  f"duplicates passed over); mean uncertainty {result.mean_uncertainty_picked:.3f} picked vs "
                  f"{result.mean_uncertainty_all:.3f} all", highlight=False, soft_wrap=True)
    if result.tasks < n:
        console.print(f"only {result.tasks} of {n} asked: at most {max_per_article} per article; score more articles "
                      "or raise --max-per-article", highlight=False)


@label_app.command("import")
def label_import(
    export: Annotated[Path, typer.Argument(help="A Label Studio export: JSON, JSON-MIN (.json) or CSV")],
    out: Annotated[Path, typer.Option(help="Your label file (JSON Lines), merged into")] = (
        ROOT / "data/user/labels.jsonl"),
    overwrite: Annotated[bool, typer.Option(help="Where a sentence already has another label, take the "
                                                 "export's (listed either way)")] = False,
) -> None:
    """Check a Label Studio export against the label map and merge it into your label file."""
    from pipeline import label

    result = label.import_labels(config.from_options(config.LabelImportConfig, export=str(export), out=str(out),
                                                     overwrite=overwrite))
    console.print(f"{result.format} export, {result.tasks} tasks: {result.labeled} labeled, {result.skipped} skipped "
                  f"(cancelled) and {result.unlabeled} not yet labeled were left out", highlight=False)
    if result.format != "JSON":
        console.print(f"({result.format} exports leave skipped and unlabeled tasks out: export JSON to count them)",
                      highlight=False)
    console.print(f"{_shown(result.out)}: {result.added} added, {result.unchanged} unchanged, {result.replaced} "
                  f"replaced; {result.total} labels in the file", highlight=False)
    if result.agreement:
        a = result.agreement
        console.print(f"agreement on {int(a['tasks'])} tasks with two annotations: stance {a['stance_agreement']:.0%} "
                      f"(kappa {a['stance_kappa']:.2f}), sentiment {a['sentiment_agreement']:.0%} "
                      f"(kappa {a['sentiment_kappa']:.2f})", highlight=False)
    for line in result.disagreements:
        console.print(f"[yellow]{line}[/]", highlight=False, soft_wrap=True)
    for line in result.conflicts:
        console.print(f"[yellow]conflict: {line}[/]", highlight=False, soft_wrap=True)
    if result.conflicts and not overwrite:
        console.print(f"{len(result.conflicts)} conflict(s) kept the existing label: fix them in Label Studio, or "
                      "rerun with --overwrite to take the export's", highlight=False)


@label_app.command("train-user")
def label_train_user(
    task: Annotated[str, typer.Option(help="stance | sentiment")] = "stance",
    user_files: Annotated[list[str] | None, typer.Option("--user-files", help="Glob of your label files "
                                                         "(repeat)")] = None,
    max_val_drop: Annotated[float, typer.Option(help="Largest corpus val macro-F1 loss allowed")] = 0.01,
    config_dir: Annotated[Path, typer.Option(help="Config folder")] = ROOT / "configs",
    overrides: SetOption = None,
) -> None:
    """Retrain the champion's family on corpus + your labels; promote only if better on your hold-out."""
    from pipeline import label

    champion = label.champion_model(task)
    globs = user_files or [str(ROOT / "data/user/*.jsonl")]
    extra = [f"data.user_files={json.dumps(globs)}"]
    extra += [f"model.encoder={champion['encoder']}"] if champion["encoder"] else []
    cfg = config.train_config(task, champion["family"], overrides=[*extra, *(overrides or [])], config_dir=config_dir)
    console.print(f"{task}: retraining the champion's family ({champion['family']}"
                  f"{'-' + champion['encoder'] if champion['encoder'] else ''}, version {champion['version']}) "
                  "on the corpus and your labels", highlight=False)
    result = label.train_user(cfg, max_val_drop)
    rows = [{"model": f"champion v{result.champion_version}", "user hold-out F1": result.champion_user_f1,
             "corpus val F1": result.champion_val_f1},
            {"model": f"new v{result.candidate_version or '-'} (run {result.run_id[:8]})",
             "user hold-out F1": result.candidate_user_f1, "corpus val F1": result.candidate_val_f1}]
    console.print(_table(f"{task}: {result.n_user_train} user labels trained on, {result.n_user_holdout} held out",
                         rows, list(rows[0])))
    console.print(result.reason, highlight=False, soft_wrap=True)


@label_app.command("sim")
def label_sim(
    config_file: Annotated[Path, typer.Option("--config", help="Simulation config YAML")] = (
        ROOT / "configs/label-sim.yaml"),
    overrides: SetOption = None,
) -> None:
    """Does labeling pay? Hold out one corpus writer, label 50-400 of its sentences per strategy, retrain, plot."""
    from pipeline import label_sim as sim

    result = sim.run(config.load(config.LabelSimConfig, [config_file], overrides or []))
    console.print(result.table.to_string(index=False))
    console.print(f"curve: {_shown(result.figure)}; table: {_shown(result.table_file)}; MLflow run {result.run_id}",
                  highlight=False)
    console.print(result.verdict, highlight=False, soft_wrap=True)


def _print_bench(result: dict) -> None:
    rows = [{"what": m.name, "items/s": m.rate, "seconds": m.seconds, "peak MiB": m.peak_mib}
            for m in result["measurements"]]
    console.print(_table("benchmark", rows, ["what", "items/s", "seconds", "peak MiB"]))
    console.print_json(json.dumps(result["report"]))


@bench_app.command("scoring")
def bench_scoring(
    sentences: Annotated[int, typer.Option(help="Test-split sentences to score, whole articles (0: all)")] = 0,
    naive_sentences: Annotated[int, typer.Option(help="Sentences for the one-at-a-time baseline (a)")] = 200,
    batch_tokens: Annotated[int, typer.Option(help="Token budget per batch of the fast path")] = 4096,
    max_batch_sentences: Annotated[int, typer.Option(help="Most sentences per batch of the fast path")] = 128,
    try_compile: Annotated[bool, typer.Option("--compile", help="Also measure torch.compile (inductor)")] = False,
    stance_model: Annotated[str, typer.Option(help="Stance model of (a) and (b)")] =
        "models:/stance-classifier@champion",
    sentiment_model: Annotated[str, typer.Option(help="Sentiment model of (a) and (b)")] =
        "models:/sentiment-classifier@champion",
    multitask_model: Annotated[str, typer.Option(help="Multi-task model of (c)")] = "models:/news-classifier@champion",
    rounds: Annotated[int, typer.Option(min=1, help="Rounds of the fast path and (c), each between two probes of "
                                        "the limit; each keeps its median")] = 3,
) -> None:
    """Sentences/s with both labels: (a) naive pipelines, (b) two models, (c) pipeline score with the multi-task
    model; fast-path ablation, fraction of the CPU's limit, macro-F1 change on both tasks."""
    from pipeline import bench

    _print_bench(bench.run_scoring(sentences, naive_sentences, batch_tokens, max_batch_sentences, try_compile,
                                   stance_model, sentiment_model, multitask_model, rounds=rounds))


@bench_app.command("int8")
def bench_int8(
    sentences: Annotated[int, typer.Option(help="Test-split sentences to score, whole articles (0: all)")] = 0,
    calibration: Annotated[int, typer.Option(help="Training sentences that calibrate NNCF's int8 ranges")] = 300,
    batch_tokens: Annotated[int, typer.Option(help="Token budget per batch")] = 4096,
    max_batch_sentences: Annotated[int, typer.Option(help="Most sentences per batch")] = 128,
    multitask_model: Annotated[str, typer.Option(help="Multi-task model")] = "models:/news-classifier@champion",
    max_loss_points: Annotated[float, typer.Option(help="Most macro-F1 points int8 may lose on either task")] = 0.5,
    rounds: Annotated[int, typer.Option(help="Timed rounds over all paths; each row keeps its median")] = 3,
) -> None:
    """The multi-task model in int8 (PyTorch dynamic, OpenVINO + NNCF) against its bf16 scoring path: speed,
    macro-F1 change on both tasks, and whether int8 passes the quality gate."""
    from pipeline import bench

    result = bench.run_int8(sentences, calibration, batch_tokens, max_batch_sentences, multitask_model,
                            max_loss_points, rounds)
    _print_bench(result)
    report = result["report"]
    verdict = "passes" if report["int8_passes"] else "does not pass"
    console.print(f"int8 {verdict} the gate (faster than bf16, at most {max_loss_points} points lost on either "
                  "task): " + "; ".join(
                      f"{key}: {report[f'{key}_over_bf16']}x, stance {report[f'{key}_stance_change_points']:+}, "
                      f"sentiment {report[f'{key}_sentiment_change_points']:+}"
                      for key in bench.INT8_ROWS if "int8" in key), highlight=False)


@bench_app.command("memory")
def bench_memory(
    sentences: Annotated[int, typer.Option(help="Sentences of the large input (corpus articles repeated)")] = 100_000,
    small: Annotated[int, typer.Option(help="Sentences of the small input it is compared with")] = 5_000,
    overrides: SetOption = None,
) -> None:
    """Peak memory of pipeline score (its own process) on a small and a large input: flat in input size?"""
    from pipeline import bench

    _print_bench(bench.run_memory(sentences, small, overrides or []))


@bench_app.command("training")
def bench_training(
    model: Annotated[str, typer.Option(help="Default model family")] = "finetune",
    encoder: Annotated[str, typer.Option(help="Encoder")] = "mpnet",
) -> None:
    """Wall time and peak memory of training the default stance model, against the TF-IDF baseline."""
    from pipeline import bench

    _print_bench(bench.run_training(model, encoder))


@bench_app.command("serve")
def bench_serve(
    url: Annotated[str, typer.Option(help="A running server's base URL on 127.0.0.1 (default: serve --model "
                                          "here for the test)")] = "",
    model: Annotated[str, typer.Option(help="Model URI to serve when no --url is given")] =
        "models:/stance-classifier@champion",
    clients: Annotated[int, typer.Option(help="Concurrent clients")] = 8,
    requests: Annotated[int, typer.Option(help="Requests in all")] = 400,
    max_sentences: Annotated[int, typer.Option(help="Each request holds 1 to this many sentences")] = 32,
    max_seconds: Annotated[float, typer.Option(help="Stop sending new requests after this long")] = 300.0,
) -> None:
    """Load test of `mlflow models serve` on the loopback: errors, p50/p95 latency, sentences/s, oversize."""
    from pipeline import bench

    result = bench.run_serve(url, model, clients, requests, max_sentences, max_seconds)
    _print_bench(result)
    report = result["report"]
    console.print(f"serve under load: {report['requests']} requests, {report['errors']} errors, p50 "
                  f"{report['p50_ms']} ms, p95 {report['p95_ms']} ms, {report['sentences_per_s']} sentences/s; "
                  f"{report['oversize_rows']} rows -> HTTP {report['oversize_status']}", highlight=False)
    if report["errors"] or not 400 <= report["oversize_status"] < 500:
        raise typer.Exit(1)


@app.command("experiments-table")
def experiments_table(
    name: Annotated[str | None, typer.Option(help="Only this experiment (default: all)")] = None,
    results: Annotated[Path, typer.Option(help="Folder of per-seed result files")] = ROOT / "outputs/experiments",
) -> None:
    """Mean and spread over seeds of each experiment's validation and test macro-F1."""
    from pipeline import experiments

    table = experiments.summarize(results, name)
    if table.empty:
        console.print(f"no experiment results in {results}: run `make experiment NAME=...` first")
        raise typer.Exit(1)
    console.print(table.to_string(index=False))


@app.command()
def summary(
    scores: Annotated[Path, typer.Option(help="A scoring output folder")] = ROOT / "outputs/scores/examples",
    train_results: Annotated[Path, typer.Option(help="Folder of training result files")] = ROOT / "outputs/train",
) -> None:
    """What `make all` produced: trained runs, champions, scored outputs, how to open the MLflow UI."""
    from pipeline import tracking

    tracking.setup()
    results = [json.loads(p.read_text()) for p in sorted(train_results.glob("*.json"))]
    champions = {name: tracking.champion_score(name)[0] for name in tracking.REGISTERED_NAMES.values()}
    rows = []
    for result in results:
        version = str(result.get("version") or "-")
        name = result.get("registered_name") or tracking.REGISTERED_NAMES[result["task"]]  # older result files
        # Champion now, in the registry: the flag saved at training time goes stale when a later run wins.
        held = version != "-" and champions.get(name) == version
        rows.append({"task": result["task"], "model": result["model"], "val F1": result["best val macro-F1"],
                     "test F1": result["test macro-F1"], "version": version, "champion": "yes" if held else "no"})
    if rows:
        console.print(_table(f"trained ({_shown(train_results)})", rows, list(rows[0])))
    articles = json.loads((scores / "articles.json").read_text()) if (scores / "articles.json").is_file() else {}
    console.print(f"scored {len(articles)} articles into {_shown(scores)}/:", highlight=False)
    console.print("  sentences.csv, sentences.parquet, articles.json, report.html, errors.jsonl", highlight=False)
    console.print(f"open the report:   xdg-open {_shown(scores / 'report.html')}", highlight=False)
    console.print("compare the runs:  make compare, or make ui (then http://127.0.0.1:5000)", highlight=False)


def _shown(path: Path) -> str:
    """A path as short as it can be said: relative to the working folder when it lies inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    app()
