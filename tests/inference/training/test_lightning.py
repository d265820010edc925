"""Training on Lightning across two processes (gloo, on this CPU): the same ELBO, a checkpoint that works, no hang."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytest.importorskip("lightning")

from bnn import BNNConfig, TrainedBNN, load_checkpoint  # noqa: E402
from inference import TrainConfig, predict_with_abstain, train  # noqa: E402
from inference.data import ImageSet  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow
#: Every run here: 6,000 MNIST digits, global batch 256.
COMMON = ["--train-limit", "6000", "--held-out", "0", "--batch-size", "256", "--no-eval", "--no-progress"]


def command(data_dir, checkpoint, *flags):
    return [
        sys.executable,
        "-m",
        "inference",
        "train",
        "--data-dir",
        str(data_dir),
        "--checkpoint",
        str(checkpoint),
        *COMMON,
        *flags,
    ]


def run(data_dir, checkpoint, *flags, timeout=300):
    out = subprocess.run(command(data_dir, checkpoint, *flags), capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory, data_dir, mnist_train):
    path = tmp_path_factory.mktemp("ddp") / "bnn.pt"
    run(data_dir, path, "--epochs", "3", "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu")
    return path


def test_two_processes_follow_the_single_process_elbo_at_the_same_global_batch(two_process_run, mnist_train):
    """Tolerance: every epoch's mean loss within 0.5% of the built-in loop's (different noise, different order)."""
    state = load_checkpoint(two_process_run)[1]
    assert state["world_size"] == 2 and state["epoch"] == 3
    fit = ImageSet("fit", mnist_train.images[:6000], mnist_train.labels[:6000])
    single = TrainedBNN.untrained(BNNConfig(num_data=6000), seed=0)
    history = train(single, fit, TrainConfig(epochs=3, batch_size=256, seed=0), progress=False)
    ddp = [h["loss"] for h in state["history"]]
    built_in = [h["loss"] for h in history]
    assert ddp == pytest.approx(built_in, rel=5e-3)
    assert ddp[2] < ddp[0]


def test_the_checkpoint_predicts_and_resumes_under_another_world_size(two_process_run, data_dir, mnist_test, tmp_path):
    model = load_checkpoint(two_process_run)[0]
    result = predict_with_abstain(model, mnist_test.images[:500], mode="median")
    assert (result.forced_prediction == mnist_test.labels[:500]).float().mean() > 0.85
    resumed = tmp_path / "resumed.pt"
    resumed.write_bytes(two_process_run.read_bytes())
    run(data_dir, resumed, "--epochs", "4", "--resume", "--devices", "1")  # one process now
    state = load_checkpoint(resumed)[1]
    assert state["epoch"] == 4 and state["world_size"] == 1 and len(state["history"]) == 4
    run(data_dir, resumed, "--epochs", "5", "--resume")  # and the built-in loop
    assert load_checkpoint(resumed)[1]["epoch"] == 5


@pytest.mark.fault("one training process of a 2-process Lightning run killed with SIGKILL")
def test_killing_one_rank_ends_the_run_with_a_clear_error_and_a_resumable_checkpoint(tmp_path, data_dir, mnist_train):
    path, log = tmp_path / "bnn.pt", tmp_path / "stderr.txt"
    cmd = command(data_dir, path, "--epochs", "50", "--devices", "2", "--strategy", "ddp", "--accelerator", "cpu")
    with open(log, "w") as stderr:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT, start_new_session=True)
        try:
            for line in proc.stdout:  # rank 0 says when it has saved an epoch
                if line.startswith("epoch   1:"):
                    break
            children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
            assert children, "rank 1 is not running"
            started = time.monotonic()
            for pid in children:
                os.kill(int(pid), signal.SIGKILL)
            rc = proc.wait(timeout=120)  # no hang
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    message = log.read_text()
    assert rc == 1, message[-3000:]
    assert "a training process failed" in message and "--resume" in message
    assert time.monotonic() - started < 60
    state = load_checkpoint(path)[1]
    assert 1 <= state["epoch"] < 50 and torch.isfinite(torch.tensor([h["loss"] for h in state["history"]])).all()
    run(data_dir, path, "--epochs", str(state["epoch"] + 1), "--resume")
    assert load_checkpoint(path)[1]["epoch"] == state["epoch"] + 1
