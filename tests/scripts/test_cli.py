"""The scripts as a user runs them: --help, bad flags, and a small train + evaluate run."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bnn import load_checkpoint, save_checkpoint
from inference.commands import evaluate as evaluate_script
from inference.commands import train as train_script
from tests.conftest import need

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["train.py", "evaluate.py"])
def test_help_documents_the_flags(script):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / script), "--help"], capture_output=True, text=True, check=True)
    for flag in ("--data-dir", "--device", "--threshold", "--num-samples"):
        assert flag in out.stdout
    if script == "train.py":
        for flag in ("--epochs", "--batch-size", "--lr", "--prior-scale", "--kl-weight", "--seed", "--resume"):
            assert flag in out.stdout


@pytest.mark.fault("impossible command-line flag values")
@pytest.mark.parametrize(
    "argv",
    [
        ["--epochs", "-1"],
        ["--epochs", "0"],
        ["--threshold", "1.5"],
        ["--percentile", "101"],
        ["--num-samples", "0"],
        ["--lr", "0"],
        ["--kl-weight", "-1"],
    ],
)
def test_impossible_flag_values_are_rejected(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        train_script.parser().parse_args(argv)
    assert exit_info.value.code == 2
    assert "must be" in capsys.readouterr().err


@pytest.mark.fault("data directory that does not exist (command line)")
def test_missing_data_is_a_clear_error(tmp_path, capsys):
    code = train_script.main(["--data-dir", str(tmp_path / "nowhere"), "--no-progress", "--checkpoint", str(tmp_path / "c.pt")])
    assert code == 2
    assert "MNIST is not in" in capsys.readouterr().err


def test_small_train_then_evaluate(tmp_path, data_dir):
    from inference.data import load_mnist

    need(load_mnist, False, data_dir, False)
    ckpt, results, page = tmp_path / "bnn.pt", tmp_path / "docs" / "results.json", tmp_path / "docs" / "results.md"
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- results:start -->\nold\n<!-- results:end -->\noutro\n")
    common = [
        "--data-dir",
        str(data_dir),
        "--limit",
        "300",
        "--noise-size",
        "300",
        "--num-samples",
        "10",
        "--results",
        str(results.parent),
        "--readme",
        str(readme),
        "--resplits",
        "20",
    ]
    code = train_script.main(
        [
            "--epochs",
            "1",
            "--train-limit",
            "2000",
            "--hidden-dim",
            "64",
            "--vae-epochs",
            "1",
            "--no-progress",
            "--checkpoint",
            str(ckpt),
        ]
        + common
    )
    assert code == 0 and ckpt.is_file()
    written = json.loads(results.read_text(), parse_constant=lambda name: pytest.fail(f"bare {name} in the JSON"))
    mnist = written["mnist"]
    assert mnist["size"] == 300 and 0 <= mnist["forced_accuracy"] <= 1
    assert set(written["sets"]) == {
        "notMNIST",
        "uniform noise",
        "Gaussian noise",
        "FashionMNIST",
        "photos",
        "KMNIST",
        "Omniglot",
        "Omniglot, page-pen strokes",
        "EMNIST letters",
        "USPS",
    }
    usps = written["sets"]["USPS"]
    for mode in ("median", "calibrated"):  # every USPS digit is read right, answered wrong or refused
        assert usps["read_right"][mode] + usps["answered_wrong"][mode] + usps["refused"][mode] == pytest.approx(1.0)
    assert written["missing"] == {}
    assert set(written["modes"]) == {"median", "calibrated"}
    # Even this one-epoch model refuses noise under the calibrated rule, and refuses at least what the median rule does.
    noise = written["sets"]["uniform noise"]["refused"]
    assert noise["calibrated"] > 0.9 and noise["calibrated"] >= noise["median"]
    page_text = page.read_text()
    assert "| MNIST test: accuracy when forced |" in page_text
    assert "entropy and the VAE's density of the input under the digit it would answer" in page_text  # the default gate
    for figure in ("abstention_by_dataset.png", "rule_sweep.png", "guarantee.png"):
        assert (results.parent / figure).stat().st_size > 1000 and f"]({figure})" in page_text
    assert "<!-- speed:start -->" in page_text and "<!-- reliability:start -->" in page_text
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("outro\n") and "old" not in text and "accuracy when forced" in text

    # evaluate.py on the same checkpoint writes the same kind of table, keeping the other scripts' sections
    page.write_text(page_text.replace("Not measured yet: run `python scripts/benchmark.py`.", "MEASURED SPEED"))
    results.unlink()
    assert evaluate_script.main(["--checkpoint", str(ckpt), *common]) == 0
    assert json.loads(results.read_text())["training"]["epochs"] == 1
    assert "MEASURED SPEED" in page.read_text()

    # A checkpoint saved from Python with a state of its own (no calibration settings) still gets its page.
    trained, state = load_checkpoint(ckpt)
    save_checkpoint(ckpt, trained, {k: v for k, v in state.items() if k != "calibration_config"})
    assert evaluate_script.main(["--checkpoint", str(ckpt), *common]) == 0
    assert "(predictive entropy and VAE density, two-sided" in page.read_text()


def test_the_commands_write_only_where_asked(tmp_path, data_dir, monkeypatch):
    """Run in an empty folder, train and evaluate leave only the checkpoint they were told to write, and no pages."""
    from inference.data import load_mnist

    need(load_mnist, False, data_dir, False)
    ckpt = tmp_path / "elsewhere" / "bnn.pt"
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    small = ["--epochs", "1", "--train-limit", "2000", "--hidden-dim", "32", "--vae-epochs", "1", "--no-progress"]
    assert train_script.main([*small, "--data-dir", str(data_dir), "--checkpoint", str(ckpt), "--limit", "200"]) == 0
    argv = ["--checkpoint", str(ckpt), "--data-dir", str(data_dir), "--limit", "200"]
    assert evaluate_script.main(argv) == 0
    assert list(work.iterdir()) == []
    assert sorted(p.name for p in ckpt.parent.iterdir()) == ["bnn.pt"]


def test_same_seed_gives_the_same_checkpoint(tmp_path, data_dir):
    from inference.data import load_mnist

    need(load_mnist, False, data_dir, False)
    paths = [tmp_path / "a.pt", tmp_path / "b.pt"]
    for path in paths:
        argv = ["--data-dir", str(data_dir), "--epochs", "1", "--train-limit", "1000", "--hidden-dim", "32", "--vae-epochs", "1"]
        assert train_script.main([*argv, "--no-progress", "--no-eval", "--seed", "3", "--checkpoint", str(path)]) == 0
    a, b = (load_checkpoint(p)[0].guide.state_dict() for p in paths)
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.fault("--resume with flags that differ from the checkpoint")
def test_resume_refuses_changed_flags_and_accepts_more_epochs(tmp_path, data_dir, capsys):
    from inference.data import load_mnist

    need(load_mnist, True, data_dir, False)
    ckpt = tmp_path / "r.pt"
    argv = ["--data-dir", str(data_dir), "--train-limit", "2000", "--hidden-dim", "16", "--held-out", "0"]
    argv += ["--no-progress", "--no-eval", "--checkpoint", str(ckpt)]
    assert train_script.main([*argv, "--epochs", "1"]) == 0
    before = ckpt.read_bytes()
    assert train_script.main([*argv, "--epochs", "2", "--resume", "--lr", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "--lr 0.5 (checkpoint: 0.002)" in err and "Drop them" in err
    assert ckpt.read_bytes() == before  # nothing was lost or rewritten
    assert train_script.main([*argv, "--epochs", "2", "--resume"]) == 0
    assert load_checkpoint(ckpt)[1]["epoch"] == 2
