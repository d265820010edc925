"""Random translations of training digits."""

import torch

from inference.augment import random_shift


def test_shifts_move_every_digit_by_at_most_max_shift_and_keep_its_ink():
    x = torch.zeros(500, 784)
    x.view(500, 28, 28)[:, 10:18, 9:17] = torch.rand(500, 8, 8)  # ink well inside the frame
    torch.manual_seed(0)
    moved = random_shift(x, 2)
    assert torch.allclose(moved.sum(-1), x.sum(-1))  # nothing falls off the frame
    rows = moved.view(500, 28, 28).sum(-1).nonzero()
    assert rows[:, 1].min() >= 8 and rows[:, 1].max() <= 19
    offsets = set()
    for before, after in zip(x.view(500, 28, 28), moved.view(500, 28, 28), strict=True):
        found = [
            (dy, dx) for dy in range(-2, 3) for dx in range(-2, 3) if torch.equal(torch.roll(before, (dy, dx), (0, 1)), after)
        ]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) == 25  # every offset in [-2, 2] x [-2, 2] occurs


def test_no_shift_is_the_identity():
    x = torch.rand(3, 784)
    assert random_shift(x, 0) is x
