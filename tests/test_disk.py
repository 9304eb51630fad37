import subprocess
from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app

REPO = Path(__file__).resolve().parent.parent


def test_make_clean_says_what_it_freed(tmp_path):
    (tmp_path / "outputs" / "train").mkdir(parents=True)
    (tmp_path / "outputs" / "train" / "blob").write_bytes(b"x" * 3 * 2**20)
    (tmp_path / "mlflow.db").write_bytes(b"kept")
    done = subprocess.run(["make", "--no-print-directory", "-C", str(tmp_path), "-f", str(REPO / "Makefile"),
                           "clean"], capture_output=True, text=True, check=True)
    assert "freed 3 MiB" in done.stdout and "0 KiB after" in done.stdout, done.stdout
    assert not (tmp_path / "outputs").exists()
    assert (tmp_path / "mlflow.db").is_file()


def test_keep_checkpoints_flag_keeps_them_and_the_run_prints_its_disk(tiny_corpus, tiny_bert, tmp_path, store):
    out = CliRunner().invoke(app, ["train", "--model", "finetune", "--keep-checkpoints",
                                   "--set", f"data.corpus_dir={tiny_corpus}", "--set", f"model.encoder={tiny_bert}",
                                   "--set", f"training.output_dir={tmp_path / 'out'}", "--set", "training.epochs=1",
                                   "--set", "training.batch_size=8", "--set", "tracking.register=false"])
    assert out.exit_code == 0, out.output
    assert list((tmp_path / "out").glob("checkpoint-*")), "--keep-checkpoints keeps them for a later resume"
    assert "disk used by this run:" in out.output and "checkpoints kept: yes" in out.output
