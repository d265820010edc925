"""A real training process killed with SIGKILL loses at most one checkpoint interval."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from bnn import CheckpointError, load_checkpoint
from inference.data import load_mnist
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]


def _train_command(data_dir, checkpoint):
    # 6,000 images in batches of 20: 300 steps an epoch, 900 in all; a checkpoint every 40 steps.
    return [
        sys.executable, "scripts/train.py", "--data-dir", str(data_dir), "--train-limit", "6000", "--epochs", "3",
        "--batch-size", "20", "--hidden-dim", "128", "--checkpoint-every", "40", "--seed", "7",
        "--held-out", "0", "--no-eval", "--no-progress", "--checkpoint", str(checkpoint),
    ]  # fmt: skip


def _wait_for_step(path, step, process, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "training finished before it could be killed"
        if path.exists():
            try:
                state = load_checkpoint(path)[1]
            except CheckpointError:  # cannot happen with atomic writes; fail loudly if it does
                raise
            if state["global_step"] >= step:
                return
        time.sleep(0.02)
    raise TimeoutError(f"no checkpoint at step {step} within {timeout} s")


@pytest.mark.fault("training process killed with SIGKILL mid-run")
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkilled_training_resumes_from_its_last_checkpoint_and_ends_where_a_straight_run_does(tmp_path, data_dir):
    need(load_mnist, True, data_dir, False)
    killed = tmp_path / "killed.pt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(_train_command(data_dir, killed), cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        _wait_for_step(killed, 80, process)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    _, state = load_checkpoint(killed)  # the last checkpoint is whole
    stopped_at = state["global_step"]
    assert 80 <= stopped_at < 900 and stopped_at % 40 == 0

    resumed = subprocess.run(
        [*_train_command(data_dir, killed), "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert f"resuming at epoch {state['epoch'] + 1}, step {state['step_in_epoch']}" in resumed.stdout
    straight = tmp_path / "straight.pt"
    subprocess.run(_train_command(data_dir, straight), cwd=ROOT, env=env, capture_output=True, check=True)

    (after_kill, final), (uninterrupted, _) = load_checkpoint(killed), load_checkpoint(straight)
    assert final["global_step"] == 900 and final["epoch"] == 3
    for (name, a), b in zip(after_kill.guide.state_dict().items(), uninterrupted.guide.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
