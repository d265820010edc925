"""``bnn-abstain predict`` as a user runs it: files, folders and globs in; text, JSON or CSV out."""

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from bnn import save_checkpoint
from inference.commands import main
from inference.data.images import HEIF_PLUGIN
from inference.evaluation.sets import on_paper


@pytest.fixture(scope="module")
def photos(tmp_path_factory, mnist_model, mnist_test):
    """A checkpoint, and a folder of re-rendered test digits (dark on light JPEGs), noise, a blank page and junk."""
    root = tmp_path_factory.mktemp("photos")
    save_checkpoint(root / "bnn.pt", mnist_model)
    folder = root / "scans"
    (folder / "more").mkdir(parents=True)
    digits = mnist_test.images[:6].reshape(-1, 28, 28).numpy()
    for i, digit in enumerate(digits):
        place = folder / "more" if i >= 4 else folder
        suffix = "heic" if i == 5 and HEIF_PLUGIN else "jpg"  # a phone's photo, where the heif extra is installed
        on_paper(digit, 100, (160, 140), (20 + 5 * i, 10 + 3 * i)).convert("RGB").save(place / f"digit{i}.{suffix}", quality=90)
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)).save(folder / "noise.png")
    Image.new("L", (120, 120), 255).save(folder / "blank.png")
    (folder / "junk.png").write_bytes(b"this is not a PNG")
    (folder / "notes.txt").write_text("not an image, and not a .png either")
    return root, mnist_test.labels[:6].tolist()


def run(argv, capsys):
    status = main(["predict", *argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_folders_are_searched_recursively_and_every_file_gets_a_line(photos, capsys):
    root, labels = photos
    status, out, err = run([str(root / "scans"), "--checkpoint", str(root / "bnn.pt")], capsys)
    lines = dict(line.split(": ", 1) for line in out.strip().splitlines())
    assert status == 1 and "1 of 9 files could not be read" in err  # junk.png
    assert len(lines) == 9 and not any(name.endswith(".txt") for name in lines)
    assert lines[str(root / "scans" / "blank.png")].startswith("I don't know — there is no ink")
    assert lines[str(root / "scans" / "junk.png")].startswith("unreadable")
    digit_answers = {name.rsplit("digit", 1)[1][0]: text.split(" ")[0] for name, text in lines.items() if "digit" in name}
    assert sum(digit_answers[str(i)] == str(label) for i, label in enumerate(labels)) >= 5


def test_json_and_csv_are_machine_readable(photos, capsys):
    root, labels = photos
    pattern = str(root / "scans" / "**" / "digit*.*")
    status, out, _ = run([pattern, "--json", "--checkpoint", str(root / "bnn.pt")], capsys)
    records = json.loads(out)
    assert status == 0 and [r["path"].rsplit("/", 1)[1].split(".")[0] for r in records] == [f"digit{i}" for i in range(6)]
    assert all(set(r) == {"path", "answer", "prediction", "candidates", "reason", "p_value"} for r in records)
    assert sum(r["prediction"] == label for r, label in zip(records, labels, strict=True)) >= 5
    status, out, _ = run([pattern, "--csv", "--checkpoint", str(root / "bnn.pt")], capsys)
    rows = list(csv.DictReader(io.StringIO(out)))
    assert status == 0 and [int(r["prediction"]) for r in rows if r["prediction"]] == [
        r["prediction"] for r in records if r["prediction"] is not None
    ]


def test_noise_is_refused(photos, capsys):
    root, _ = photos
    _, out, _ = run([str(root / "scans" / "noise.png"), "--json", "--checkpoint", str(root / "bnn.pt")], capsys)
    (record,) = json.loads(out)
    assert record["prediction"] is None and record["answer"].startswith("I don't know")


def test_paths_that_name_nothing_are_clear_errors(photos, tmp_path, capsys):
    root, _ = photos
    status, _, err = run([str(tmp_path / "missing.png"), "--checkpoint", str(root / "bnn.pt")], capsys)
    assert status == 2 and "no such file or folder" in err
    status, _, err = run([str(tmp_path / "*.png"), "--checkpoint", str(root / "bnn.pt")], capsys)
    assert status == 2 and "no PNG, JPEG or HEIC file matches" in err
    status, _, err = run([str(root / "scans"), "--checkpoint", str(tmp_path / "none.pt")], capsys)
    assert status == 2 and "none.pt" in err


def test_the_console_command_is_installed_and_lists_its_subcommands():
    out = subprocess.run([sys.executable, "-m", "inference", "--help"], capture_output=True, text=True, check=True)
    for command in ("train", "evaluate", "calibrate", "predict", "serve"):
        assert f"  {command}" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "inference", "fly"], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown command 'fly'" in bad.stderr
    help_text = subprocess.run([sys.executable, "-m", "inference", "predict", "--help"], capture_output=True, text=True)
    assert "usage: bnn-abstain predict" in help_text.stdout and "--json" in help_text.stdout
