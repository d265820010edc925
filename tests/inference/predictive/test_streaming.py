"""Streaming prediction: the same answers as one call, in order, whatever the batch size and the number of workers."""

import numpy as np
import pytest
import torch
from PIL import Image

from inference import predict_with_abstain
from inference.predictive.streaming import ImageFiles, predict_stream
from tests.inference.data.test_preprocess import stroke


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(23):
        path = tmp_path / f"{i:02d}.png"
        if i == 5:
            path.write_bytes(b"broken")
        elif i % 7 == 0:
            Image.new("L", (40, 40), 255).save(path)  # blank
        else:
            page = stroke(height=60 + 3 * i, width=20) if i % 2 else rng.random((50, 60))
            Image.fromarray((page * 255).astype(np.uint8)).save(path)
        paths.append(path)
    return paths


@pytest.mark.parametrize(("batch_size", "workers"), [(512, 0), (4, 0), (5, 2)])
def test_streamed_answers_are_one_call_s_answers_in_order(tiny, folder, batch_size, workers):
    # A threshold under the untrained model's near-uniform probabilities: its answers show the settings reached the rule.
    settings = {"mode": "median", "num_samples": 10, "threshold": 0.05}
    records = list(predict_stream(tiny, ImageFiles(folder), batch_size=batch_size, workers=workers, **settings))
    assert [r["index"] for r in records] == list(range(23))
    assert records[5]["reason"] == "unreadable" and "cannot read" in records[5]["error"]
    unreadable = {k: v for k, v in records[5].items() if k != "error"}
    assert unreadable == {
        "index": 5,
        "answer": None,
        "prediction": None,
        "candidates": [],
        "reason": "unreadable",
        "p_value": None,
    }
    assert all(set(r) | {"error"} == set(records[5]) for r in records)  # every record has the same fields
    good = [p for i, p in enumerate(folder) if i != 5]
    direct = predict_with_abstain(tiny, [Image.open(p) for p in good], preprocess="mnist", chunk_size=None, **settings)
    streamed = [r for r in records if r["reason"] != "unreadable"]
    assert [r["reason"] for r in streamed] == direct.reasons() and "answered" in direct.reasons()
    assert [r["candidates"] for r in streamed] == direct.candidate_sets()
    assert all(records[i]["reason"] == "no ink" for i in (0, 7, 14, 21))


def test_has_ink_is_checked(tiny):
    with pytest.raises(ValueError, match="has_ink must be a bool tensor of shape"):
        predict_with_abstain(tiny, torch.rand(3, 784), has_ink=torch.ones(2, dtype=torch.bool))
    with pytest.raises(ValueError, match="only for images already preprocessed"):
        predict_with_abstain(tiny, [stroke()], preprocess="mnist", has_ink=torch.ones(1, dtype=torch.bool))
    with pytest.raises(ValueError, match="batch_size must be positive"):
        next(predict_stream(tiny, ImageFiles([]), batch_size=0))
