import subprocess
import sys

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
                   "bench", "ui", "serve", "all", "test", "test-fast", "lint"):
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


def test_make_test_fast_skips_slow_tests():
    out = subprocess.run(["make", "-n", "test-fast"], capture_output=True, text=True, check=True).stdout
    assert '-m pytest -m "not slow"' in out
