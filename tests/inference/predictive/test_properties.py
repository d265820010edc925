"""Property-based tests: whatever a user passes, a well-formed answer or a clear error.

Every generated input either gives an :class:`AbstainResult` whose fields agree with
each other and with the rule, or raises ``ValueError``/``TypeError`` whose message
names what was received. Nothing else may escape (no error from deep inside torch),
and no result may hold NaN.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from bnn import TrainedBNN
from inference import ABSTAIN, predict_with_abstain, to_batch
from inference.data import image_to_array
from inference.predictive import UNFAMILIAR
from tests.conftest import synthetic, trained_on_synthetic
from tests.tally import TALLY

pytestmark = pytest.mark.properties

# 500 examples for each of the five properties in the test suite, 2,000 under scripts/reliability.py (which
# publishes the tally); the same ones every run (derandomised), so that a failure reproduces.
EXAMPLES = int(os.environ.get("BNN_PROPERTY_EXAMPLES", "500"))
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DTYPES = [np.bool_, np.int8, np.uint8, np.int64, np.float16, np.float32, np.float64, np.complex64]
PIL_MODES = ["1", "L", "P", "RGB", "RGBA", "I;16", "I", "F"]


@pytest.fixture(scope="module")
def small_bnn() -> TrainedBNN:
    """A small network that really answers (see ``trained_on_synthetic``)."""
    return trained_on_synthetic(600, 400, hidden_dim=16, num_samples=12, vae_epochs=3, data_seed=11)


def test_the_property_model_answers_familiar_digits(small_bnn):
    """So that the properties below exercise the answering branch as well as every refusal."""
    result = predict_with_abstain(small_bnn, synthetic(200, seed=12).images, 12)
    assert (~result.abstained).float().mean() > 0.9


def image_shapes() -> st.SearchStrategy[tuple[int, ...]]:
    n = st.integers(0, 3)
    return st.one_of(
        st.just((28, 28)),
        n.map(lambda k: (k, 28, 28)),
        n.map(lambda k: (k, 1, 28, 28)),
        n.map(lambda k: (k, 784)),
        hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=30),
    )


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(image_shapes())
    # Half of the float arrays are valid images, so that the accepting path is exercised too.
    valid = dtype.kind == "f" and draw(st.booleans())
    elements = st.floats(0.0, 1.0, width=8 * dtype.itemsize) if valid else None
    return draw(hnp.arrays(dtype, shape, elements=elements))


def as_container(array: np.ndarray, kind: str) -> object:
    """The same pixels as a user might hold them."""
    if kind == "numpy":
        return array
    if kind == "list":
        return array.tolist()
    tensor = torch.from_numpy(array.copy())
    if kind == "non-contiguous" and tensor.dim() >= 2:
        return tensor.transpose(-1, -2).contiguous().transpose(-1, -2)
    if kind == "channels-last" and tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    if kind == "requires-grad" and tensor.is_floating_point():
        return tensor.requires_grad_()
    return tensor


def check_well_formed(result, n: int) -> None:
    assert len(result) == n
    assert result.prediction.shape == (n,) and result.prediction.dtype == torch.int64
    assert result.candidates.shape == result.percentile_probs.shape == result.mean_probs.shape == (n, 10)
    for probs in (result.percentile_probs, result.mean_probs):
        assert not probs.isnan().any()
        assert probs.min() >= 0.0 and probs.max() <= 1.0
    assert torch.allclose(result.mean_probs.sum(-1), torch.ones(n), atol=1e-4)
    assert (result.mutual_information >= 0).all() and (result.mutual_information <= result.entropy + 1e-4).all()
    assert torch.equal(result.candidates, result.percentile_probs > result.threshold)
    assert torch.equal(result.prediction == ABSTAIN, result.abstained)
    assert torch.equal(result.abstained, result.reason != 0)
    no_candidate = ~result.candidates.any(-1)
    if result.mode == "median":
        assert torch.equal(result.abstained, no_candidate)
    else:  # the gate can only add refusals, for the reason it gives
        assert (result.abstained >= no_candidate).all()
        assert (result.p_value > 0).all() and (result.p_value <= 1).all()
        assert torch.equal(result.reason == UNFAMILIAR, result.p_value <= result.alpha)
    answered = ~result.abstained
    if answered.any():
        chosen = result.prediction[answered]
        assert result.candidates[answered].gather(1, chosen[:, None]).all()
        best = result.percentile_probs[answered].masked_fill(~result.candidates[answered], -1).max(-1).values
        assert torch.equal(result.percentile_probs[answered].gather(1, chosen[:, None])[:, 0], best)


def predict_or_reject(model: TrainedBNN, images: object, what: str, **rule) -> None:
    try:
        result = predict_with_abstain(model, images, **rule)
    except (ValueError, TypeError) as err:
        TALLY[(what, type(err).__name__)] += 1
        assert "got" in str(err), f"the message does not say what was received: {err}"
        return
    TALLY[(what, "accepted")] += 1
    check_well_formed(result, to_batch(images).shape[0] if not isinstance(images, Image.Image) else 1)


@SETTINGS
@given(
    array=arrays(),
    kind=st.sampled_from(["numpy", "tensor", "list", "non-contiguous", "channels-last", "requires-grad"]),
    num_samples=st.sampled_from([1, 5, 12]),
    threshold=st.floats(0.0, 1.0),
    percentile=st.floats(0.0, 100.0),
)
@example(array=np.zeros((0, 28, 28), np.float32), kind="numpy", num_samples=12, threshold=0.2, percentile=50.0)  # empty batch
def test_arrays_give_a_well_formed_answer_or_a_clear_error(small_bnn, array, kind, num_samples, threshold, percentile):
    images = as_container(array, kind)
    # The calibration holds for 12 networks; any other count uses the median rule.
    rule = "calibrated" if num_samples == 12 else "median"
    predict_or_reject(small_bnn, images, "arrays", num_samples=num_samples, threshold=threshold, percentile=percentile, mode=rule)


@SETTINGS
@given(digit=st.integers(0, 999), noise=st.floats(0.0, 0.5), seed=st.integers(0, 2**16))
def test_perturbed_digits_give_a_well_formed_answer(small_bnn, digit, noise, seed):
    image = synthetic(1000, seed=13).images[digit]
    g = torch.Generator().manual_seed(seed)
    noisy = (image + noise * torch.randn(784, generator=g)).clamp(0, 1)
    predict_or_reject(small_bnn, noisy[None], "perturbed digits", num_samples=12)


@st.composite
def pil_images(draw: st.DrawFn) -> Image.Image:
    mode = draw(st.sampled_from(PIL_MODES))
    width, height = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    probe = Image.new(mode, (width, height))
    size = len(probe.tobytes())
    data = draw(st.binary(min_size=size, max_size=size))
    image = Image.frombytes(mode, (width, height), data)
    if mode == "P":
        image.putpalette(draw(st.binary(min_size=768, max_size=768)))
    return image


@SETTINGS
@given(images=st.lists(pil_images(), min_size=1, max_size=3), single=st.booleans())
def test_pil_images_of_every_mode_and_size(small_bnn, images, single):
    predict_or_reject(small_bnn, images[0] if single else images, "PIL images", num_samples=12)


@SETTINGS
@given(image=pil_images())
@example(image=Image.fromarray(np.full((5, 5), np.nan, dtype=np.float32)))  # F-mode NaN pixels (a bug found once)
def test_preprocessing_gives_a_28x28_image_in_the_unit_interval_or_a_clear_error(image):
    try:
        array = image_to_array(image)
    except ValueError as err:
        TALLY[("PIL preprocessing", "ValueError")] += 1
        assert image.mode == "F" and "NaN or infinite" in str(err)
        return
    TALLY[("PIL preprocessing", "accepted")] += 1
    assert array.shape == (28, 28) and array.dtype == np.float32
    assert np.isfinite(array).all() and array.min() >= 0.0 and array.max() <= 1.0


@SETTINGS
@given(
    value=st.one_of(
        st.none(),
        st.integers(),
        st.floats(),
        st.text(max_size=5),
        st.binary(max_size=5),
        st.dictionaries(st.text(), st.integers()),
    )
)
def test_things_that_are_not_images_raise_type_or_value_errors(small_bnn, value):
    predict_or_reject(small_bnn, value, "non-images", num_samples=12)
    predict_or_reject(small_bnn, [value], "non-images", num_samples=12)
