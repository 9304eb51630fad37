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
                   "bench", "ui", "serve", "all", "test", "lint"):
        assert any(line.split()[0] == target for line in out.splitlines() if line.strip()), target


def test_missing_corpus_is_a_clear_training_error(tmp_path):
    out = CliRunner().invoke(app, ["train", "--set", f"data.corpus_dir={tmp_path}"])
    assert out.exit_code == 2
    assert f"{tmp_path}/train.jsonl: split file not found" in out.output
