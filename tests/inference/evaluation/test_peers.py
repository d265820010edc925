"""The peer benchmark's torch.compile probe reports a failure as a figure instead of crashing."""

import pytest
import torch

from inference.data import ImageSet
from inference.evaluation import peers


@pytest.mark.parametrize(("message", "reported"), [("", "RuntimeError"), ("no graph\nsecond line", "RuntimeError: no graph")])
def test_a_failing_compile_is_reported_by_its_first_line(monkeypatch, message, reported):
    def refuse(fn):
        raise RuntimeError(message)

    monkeypatch.setattr(torch, "compile", refuse)
    train_set = ImageSet("t", torch.rand(64, 784), torch.randint(0, 10, (64,)))
    figures = peers.compile_probe(train_set, steps=1, repeats=1)
    assert figures["svi_error"] == figures["predict_error"] == reported
    assert figures["svi_eager"] > 0 and figures["predict_eager"] > 0 and "svi_compiled" not in figures
