"""A real training process killed with SIGKILL loses at most one checkpoint interval."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bnn import load_checkpoint
from inference.data import load_mnist
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]


def _train_command(data_dir, checkpoint):
    # 3,000 images in batches of 20: 150 steps an epoch, 300 in all; a checkpoint every 40 steps.
    return [
        sys.executable, "scripts/train.py", "--data-dir", str(data_dir), "--train-limit", "3000", "--epochs", "2",
        "--batch-size", "20", "--hidden-dim", "128", "--checkpoint-every", "40", "--seed", "7",
        "--held-out", "0", "--no-eval", "--no-progress", "--checkpoint", str(checkpoint),
    ]  # fmt: skip


def _kill_after_step(process, step):
    """Read the run's log until it reports the checkpoint at ``step``, then SIGKILL it (no polling of files)."""
    for line in process.stdout:
        if line.startswith("saved checkpoint at step ") and int(line.split()[-1]) >= step:
            process.send_signal(signal.SIGKILL)
            return
    raise AssertionError("training finished before it could be killed")


@pytest.mark.fault("training process killed with SIGKILL mid-run")
@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkilled_training_resumes_from_its_last_checkpoint_and_ends_where_a_straight_run_does(tmp_path, data_dir):
    need(load_mnist, True, data_dir, False)
    killed = tmp_path / "killed.pt"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(_train_command(data_dir, killed), cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        _kill_after_step(process, 80)
    finally:
        process.kill()  # a no-op after the SIGKILL; ends the run if the test failed before it
        process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL

    _, state = load_checkpoint(killed)  # the last checkpoint is whole
    stopped_at = state["global_step"]
    assert 80 <= stopped_at < 300 and stopped_at % 40 == 0

    resumed = subprocess.run(
        [*_train_command(data_dir, killed), "--resume"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert f"resuming at epoch {state['epoch'] + 1}, step {state['step_in_epoch']}" in resumed.stdout
    straight = tmp_path / "straight.pt"
    subprocess.run(_train_command(data_dir, straight), cwd=ROOT, env=env, capture_output=True, check=True)

    (after_kill, final), (uninterrupted, _) = load_checkpoint(killed), load_checkpoint(straight)
    assert final["global_step"] == 300 and final["epoch"] == 2
    for (name, a), b in zip(after_kill.guide.state_dict().items(), uninterrupted.guide.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-6), name
