"""Two processes train one model on the CPU (DDP over gloo) through torch's launcher."""

import os
import subprocess
import sys

import pytest
from mlflow.tracking import MlflowClient

from pipeline.servers import free_port

pytestmark = pytest.mark.slow


def test_two_processes_train_one_model(tiny_corpus, tiny_bert, tmp_path, store):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "pipeline", "train", "--task", "stance", "--model", "finetune",
               "--set", f"model.encoder={tiny_bert}", "--set", f"data.corpus_dir={tiny_corpus}",
               "--set", f"training.output_dir={tmp_path / 'out'}", "--set", "training.epochs=1",
               "--set", "training.batch_size=4"]
    done = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = MlflowClient(store).search_runs([MlflowClient(store).get_experiment_by_name("stance").experiment_id])
    assert len(runs) == 1, "only rank 0 tracks the run"
    assert runs[0].data.params["world_size"] == "2"
    # 30 training rows, batch 4 per process, 2 processes: 4 optimizer steps per epoch, not 8.
    steps = MlflowClient(store).get_metric_history(runs[0].info.run_id, "val/macro_f1")
    assert max(m.step for m in steps) == 4
