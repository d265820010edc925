import numpy as np
import pytest
import torch

from inference import ABSTAIN, decide, predict_with_abstain, predictive_probs
from inference.posterior import sample_weights
from inference.predictive import answer as predictive_answer


def _samples(rows):
    """(S, N, C) from per-input lists of per-network probability vectors."""
    return torch.tensor(rows, dtype=torch.float32).permute(1, 0, 2)


def test_confident_digit_is_answered():
    probs = torch.zeros(5, 1, 10)
    probs[:, 0, 3] = 0.9
    probs[:, 0, 5] = 0.1
    prediction, candidates, level = decide(probs)
    assert prediction.tolist() == [3]
    assert candidates[0].nonzero().flatten().tolist() == [3]
    assert level[0, 3] == pytest.approx(0.9)


def test_two_candidates_answer_the_higher_median():
    # medians across the 3 networks: digit 1 -> 0.5, digit 7 -> 0.4
    nets = [[0.0, 0.5, 0, 0, 0, 0, 0, 0.5, 0, 0], [0.0, 0.6, 0, 0, 0, 0, 0, 0.4, 0, 0], [0.0, 0.3, 0, 0, 0, 0, 0, 0.3, 0, 0.4]]
    prediction, candidates, level = decide(_samples([nets]))
    assert prediction.tolist() == [1]
    assert candidates[0].nonzero().flatten().tolist() == [1, 7]
    assert level[0, 1] == pytest.approx(0.5) and level[0, 7] == pytest.approx(0.4)


def test_disagreeing_networks_abstain():
    # every network is sure, but each of a different digit: no median clears 0.2
    nets = [torch.eye(10)[k].tolist() for k in range(10)]
    prediction, candidates, _ = decide(_samples([nets]))
    assert prediction.tolist() == [ABSTAIN]
    assert not candidates.any()


def test_threshold_and_percentile_move_the_decision():
    nets = [[0.25] + [0.75 / 9] * 9] * 4 + [[0.05] + [0.95 / 9] * 9]
    samples = _samples([nets])
    assert decide(samples, threshold=0.2)[0].tolist() == [0]
    assert decide(samples, threshold=0.3)[0].tolist() == [ABSTAIN]
    assert decide(samples, threshold=0.2, percentile=0.0)[0].tolist() == [ABSTAIN]  # the minimum is 0.05


@pytest.mark.parametrize("kwargs", [{"threshold": 1.5}, {"threshold": -0.1}, {"percentile": 101.0}, {"percentile": -1.0}])
def test_rule_arguments_are_checked(kwargs):
    with pytest.raises(ValueError):
        decide(torch.rand(3, 2, 10), **kwargs)


def test_weight_sampling_evaluates_the_sampled_networks(tiny):
    x = torch.rand(5, 784)
    torch.manual_seed(0)
    weights = sample_weights(tiny.guide, 4)
    torch.manual_seed(0)
    probs = predictive_probs(tiny.model, tiny.guide, x, 4, method="weights")
    assert probs.shape == (4, 5, 10)
    expected = torch.softmax(tiny.model.sampled_logits(x, weights), -1)
    assert torch.allclose(probs, expected, atol=1e-6)


def test_chunking_does_not_change_the_answer(tiny):
    x = torch.rand(50, 784)
    a = predictive_probs(tiny.model, tiny.guide, x, 8, method="weights", chunk_size=7, seed=3)
    b = predictive_probs(tiny.model, tiny.guide, x, 8, method="weights", chunk_size=1000, seed=3)
    c = predictive_probs(tiny.model, tiny.guide, x, 8, method="weights", chunk_size=1, seed=3)
    assert torch.allclose(a, b, atol=1e-6) and torch.allclose(a, c, atol=1e-6)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer, got 0"):
        predictive_probs(tiny.model, tiny.guide, x, 8, chunk_size=0)


def test_summaries_filled_chunk_by_chunk_match_one_pass(tiny):
    """summarise writes each chunk into outputs allocated once; every field must equal the one-chunk result."""
    from inference.posterior import summarise

    x = torch.rand(23, 784)
    whole = summarise(tiny, x, 6, 40.0, method="weights", chunk_size=1000, seed=1, keep_samples=True)
    chunked = summarise(tiny, x, 6, 40.0, method="weights", chunk_size=5, seed=1, keep_samples=True)
    for field in ("percentile_probs", "mean_probs", "entropy", "mutual_information", "samples"):
        a, b = getattr(whole, field), getattr(chunked, field)
        assert a.shape == b.shape and a.dtype == b.dtype and torch.allclose(a, b, atol=1e-6), field
    assert whole.samples.shape == (6, 23, 10) and summarise(tiny, x, 6, method="weights", chunk_size=5).samples is None
    with pytest.raises(ValueError, match="got no inputs"):
        summarise(tiny, x[:0], 6)


def test_summaries_of_float64_networks_keep_their_precision():
    from bnn import BNNConfig, TrainedBNN
    from inference.posterior import predictive_probs, summarise

    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=16, num_data=100), seed=0)
    trained.model.double()
    trained.guide.double()
    x = torch.rand(7, 784, dtype=torch.float64)
    summary = summarise(trained, x, 6, method="weights", chunk_size=3, seed=1, keep_samples=True)
    draws = predictive_probs(trained.model, trained.guide, x, 6, method="weights", chunk_size=3, seed=1)
    assert draws.dtype == summary.samples.dtype == summary.mean_probs.dtype == summary.entropy.dtype == torch.float64
    # Within float64 rounding: a float32 buffer would round each probability by about 1e-8.
    assert torch.equal(summary.samples, draws) and torch.allclose(summary.mean_probs, draws.mean(0), rtol=0, atol=1e-14)


def test_the_summary_s_percentile_is_the_median_unless_asked(tiny):
    from inference.posterior import summarise

    x = torch.rand(5, 784)
    summary = summarise(tiny, x, 9, seed=1, keep_samples=True)
    assert torch.allclose(summary.percentile_probs, summary.samples.median(0).values)
    assert torch.allclose(summarise(tiny, x, 9, 20.0, seed=1).percentile_probs, summary.samples.quantile(0.2, 0))


def test_local_draws_of_one_input_are_independent_and_exact(tiny):
    """Shared noise across inputs must not correlate the draws of one input: check the first-layer moments."""
    from bnn.layers import linear

    x = torch.rand(3, 784) * 0.3
    posterior = tiny.guide.posterior()
    w, b = posterior["fc1.weight"], posterior["fc1.bias"]
    draws = linear(x, w, b, num_samples=20_000)  # (S, 3, hidden)
    mean = x @ w.loc.T + b.loc
    std = (x.square() @ w.scale.square().T + b.scale.square()).sqrt()
    assert torch.allclose(draws.mean(0), mean, atol=4 * std.max().item() / 20_000**0.5)
    assert torch.allclose(draws.std(0), std, rtol=0.03)
    lag = (draws[1:, 0] - mean[0]) * (draws[:-1, 0] - mean[0]) / std[0].square()
    assert lag.mean().abs() < 0.03  # consecutive draws uncorrelated


def test_local_and_weight_sampling_agree_in_distribution(tiny):
    x = torch.rand(4, 784) * 0.3
    a = predictive_probs(tiny.model, tiny.guide, x, 4000, method="weights", seed=0).mean(0)
    b = predictive_probs(tiny.model, tiny.guide, x, 4000, method="local", seed=1).mean(0)
    assert torch.allclose(a, b, atol=0.02)


def test_predict_with_abstain_result_is_consistent(tiny):
    images = torch.rand(6, 28, 28)
    res = predict_with_abstain(tiny, images, num_samples=20, return_samples=True)
    assert len(res) == 6 and res.samples.shape == (20, 6, 10)
    assert torch.equal(res.abstained, res.prediction == ABSTAIN)
    assert torch.equal(res.candidates, res.percentile_probs > 0.2)
    again = decide(res.samples)
    assert torch.equal(again[0], res.prediction)
    for row, cands in zip(res.prediction.tolist(), res.candidate_sets(), strict=True):
        assert (row == ABSTAIN) == (cands == [])
    assert torch.allclose(res.mean_probs.sum(-1), torch.ones(6))


def test_same_seed_same_answer_and_global_rng_untouched(tiny):
    images = torch.rand(3, 784)
    state = torch.get_rng_state()
    a = predict_with_abstain(tiny, images, num_samples=10, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    b = predict_with_abstain(tiny, images, num_samples=10, seed=7)
    assert torch.equal(a.percentile_probs, b.percentile_probs)
    other = predict_with_abstain(tiny, images, num_samples=10, seed=8)  # the seed picks the networks
    assert not torch.equal(a.percentile_probs, other.percentile_probs)


@pytest.mark.parametrize("method", ["local", "weights"])
def test_the_chunk_generator_holds_no_global_state_between_chunks(tiny, method):
    """Between its chunks (stopped early, or two interleaved) gradients stay on and the global random stream is the
    caller's; the chunks are those of one uninterrupted pass."""
    from inference.posterior import iter_predictive_probs

    x = torch.rand(9, 784)
    whole = predictive_probs(tiny.model, tiny.guide, x, 6, method=method, chunk_size=4, seed=3)
    state = torch.get_rng_state()
    first = iter_predictive_probs(tiny.model, tiny.guide, x, 6, method, chunk_size=4, seed=3)
    second = iter_predictive_probs(tiny.model, tiny.guide, x, 6, method, chunk_size=4, seed=3)
    for a, b in zip(first, second, strict=True):
        assert torch.is_grad_enabled()
        assert torch.equal(torch.get_rng_state(), state)
        assert torch.equal(a, b)
    abandoned = iter_predictive_probs(tiny.model, tiny.guide, x, 6, method, chunk_size=4, seed=3)
    assert torch.equal(next(abandoned), whole[:, :4])
    del abandoned
    assert torch.is_grad_enabled() and torch.equal(torch.get_rng_state(), state)


def test_model_argument_is_checked(tiny):
    with pytest.raises(TypeError, match=r"model must be a bnn.TrainedBNN \(from bnn.load_model\), got BayesianMLP"):
        predict_with_abstain(tiny.model, torch.rand(1, 784))
    with pytest.raises(ValueError, match="num_samples"):
        predict_with_abstain(tiny, torch.rand(1, 784), num_samples=0)


def _reference_decision(samples, threshold, percentile):
    """The rule written independently with numpy: interpolated percentile, strict '>', best candidate."""
    level = np.percentile(samples.double().numpy(), percentile, axis=0)
    candidates = level > threshold
    best = np.where(candidates, level, -1.0).argmax(-1)
    return np.where(candidates.any(-1), best, ABSTAIN), candidates, level


@pytest.mark.parametrize("num_networks", [100, 7, 1])
@pytest.mark.parametrize(("threshold", "percentile"), [(0.2, 50.0), (0.0, 0.0), (1.0, 100.0), (0.35, 25.0), (0.1, 90.0)])
def test_decide_matches_numpy_percentile(num_networks, threshold, percentile):
    g = torch.Generator().manual_seed(num_networks)
    samples = torch.softmax(torch.randn(num_networks, 300, 10, generator=g) * 2, -1)
    prediction, candidates, level = decide(samples, threshold, percentile)
    expected = _reference_decision(samples, threshold, percentile)
    assert np.allclose(level.numpy(), expected[2], atol=1e-6)
    assert np.array_equal(candidates.numpy(), expected[1]) and np.array_equal(prediction.numpy(), expected[0])


def test_decide_corner_cases():
    # 100 networks: the median interpolates between the 50th and 51st values.
    probs = torch.zeros(100, 3, 10)
    probs[:50, 0, 4], probs[50:, 0, 4] = 0.1, 0.3  # median exactly 0.2: not above the threshold
    probs[:, 1, 2], probs[:, 1, 6] = 0.4, 0.4  # a tie between two candidates: the lower index wins, both listed
    probs[:50, 2, 1], probs[50:, 2, 1] = 0.2, 0.6  # median 0.4
    prediction, candidates, level = decide(probs)
    assert level[0, 4].item() == pytest.approx(0.2) and prediction[0] == ABSTAIN and not candidates[0].any()
    assert prediction[1] == 2 and candidates[1].nonzero().flatten().tolist() == [2, 6]
    assert level[2, 1].item() == pytest.approx(0.4) and prediction[2] == 1
    assert decide(probs, threshold=1.0)[0].eq(ABSTAIN).all()  # nothing exceeds 1
    empty = decide(torch.zeros(100, 0, 10))
    assert empty[0].shape == (0,) and empty[2].shape == (0, 10)


def test_decide_in_chunks_matches_one_pass():
    """More than 2**24 / (S * C) inputs go through torch.quantile in chunks."""
    g = torch.Generator().manual_seed(5)
    samples = torch.rand(100, 17_000, 10, generator=g)
    prediction, _, level = decide(samples)
    expected = np.percentile(samples.numpy(), 50, axis=0)
    assert np.allclose(level.numpy(), expected, atol=1e-6)
    assert np.array_equal(prediction.numpy(), _reference_decision(samples, 0.2, 50.0)[0])


def test_same_pixels_give_the_same_answer_as_numpy_list_tensor_or_pil(tiny):
    from PIL import Image

    pixels = (np.random.default_rng(0).random((28, 28)) * 255).astype(np.uint8)
    floats = pixels.astype(np.float32) / 255  # lists carry no dtype, so pixels in a list are floats in [0, 1]
    forms = [pixels, torch.from_numpy(pixels), floats, floats.tolist(), torch.from_numpy(floats), Image.fromarray(pixels)]
    results = [predict_with_abstain(tiny, form, 10, mode="median") for form in forms]
    for other in results[1:]:
        assert torch.equal(other.percentile_probs, results[0].percentile_probs)


def test_read_only_arrays_are_accepted_without_a_warning(tiny):
    import warnings

    buffer = np.frombuffer(bytes(range(256)) * 4, dtype=np.uint8)[:784].reshape(28, 28)
    assert not buffer.flags.writeable
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = predict_with_abstain(tiny, buffer, 10, mode="median")
    assert len(result) == 1


def test_samples_across_chunks_stack_along_the_inputs(tiny):
    x = torch.rand(7, 784)
    whole = predict_with_abstain(tiny, x, 5, return_samples=True, chunk_size=7, mode="median")
    chunked = predict_with_abstain(tiny, x, 5, return_samples=True, chunk_size=3, mode="median", method="weights")
    assert whole.samples.shape == chunked.samples.shape == (5, 7, 10)
    assert torch.allclose(chunked.samples.mean(0), chunked.mean_probs, atol=1e-6)


@pytest.mark.frames
def test_the_missing_calibration_warning_points_at_the_caller(tiny):
    with pytest.warns(
        UserWarning, match="this model carries no calibration, so the reference median rule decides alone"
    ) as caught:
        predict_with_abstain(tiny, torch.rand(2, 784))
    assert caught[0].filename == __file__


def test_rule_errors_say_what_to_do(tiny):
    with pytest.raises(ValueError, match=r"max_risk applies to the calibrated rule only; pass mode='calibrated'"):
        predict_with_abstain(tiny, torch.rand(2, 784), mode="median", max_risk=0.1)
    with pytest.raises(ValueError, match="needs a model with a calibration"):
        predict_with_abstain(tiny, torch.rand(2, 784), mode="calibrated")


@pytest.mark.parametrize("bad", [float("inf"), float("-inf"), float("nan")])
def test_one_non_finite_pixel_is_named(tiny, bad):
    x = torch.rand(3, 784)
    x[1, 5] = bad
    with pytest.raises(ValueError, match=r"NaN or infinite values \(first in image 1\)"):
        predict_with_abstain(tiny, x)


def test_empty_lists_and_unsupported_dtypes_say_what_was_received(tiny):
    with pytest.raises(ValueError, match="got list; expected a torch tensor"):
        predict_with_abstain(tiny, [])
    with pytest.raises(TypeError, match=r"got numpy.ndarray of shape \(2, 784\) and dtype bool"):
        predict_with_abstain(tiny, np.zeros((2, 784), dtype=bool))
    with pytest.raises(TypeError, match="got a numpy array of dtype float128, which torch cannot hold"):
        predict_with_abstain(tiny, np.zeros((2, 784), dtype=np.longdouble))


def test_answers_in_words_name_the_digit_or_why_not():
    from inference.predictive import AbstainResult

    level = torch.tensor([[0.0, 0.9, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1],
                          [0.0, 0.0, 0.0, 0.35, 0.0, 0.6, 0.0, 0.0, 0.0, 0.05],
                          [0.1] * 10])  # fmt: skip
    prediction, candidates = predictive_answer(level, 0.2)
    reason = torch.tensor([0, 0, 2])
    result = AbstainResult(
        prediction, reason != 0, reason, candidates, level, level, torch.zeros(3), torch.zeros(3), "median", 0.2, 50.0
    )
    assert result.answers() == ["1", "5 or 3", "I don't know — this doesn't look like a digit"]
    assert result.candidate_sets() == [[1], [5, 3], []]


def test_empty_predictive_has_the_right_shape(tiny):
    assert predictive_probs(tiny.model, tiny.guide, torch.rand(0, 784), 7).shape == (7, 0, 10)


@pytest.mark.parametrize("method", ["local", "weights"])
def test_one_network_is_a_posterior_sample_and_none_is_refused(tiny, method):
    one = predictive_probs(tiny.model, tiny.guide, torch.rand(3, 784), 1, method=method, seed=0)
    assert one.shape == (1, 3, 10) and torch.allclose(one.sum(-1), torch.ones(1, 3))
    with pytest.raises(ValueError, match="positive integer"):
        predictive_probs(tiny.model, tiny.guide, torch.rand(3, 784), 0, method=method)


def test_records_are_plain_and_say_none_for_a_missing_p_value():
    from inference.predictive import AbstainResult

    level = torch.tensor([[0.0, 0.9] + [0.0] * 8, [0.1] * 10])
    prediction, candidates = predictive_answer(level, 0.2)
    reason = torch.tensor([0, 1])
    result = AbstainResult(
        prediction, reason != 0, reason, candidates, level, level, torch.zeros(2), torch.zeros(2), "calibrated", 0.2, 50.0
    )
    result.p_value = torch.tensor([float("nan"), 0.1234567])
    assert result.records() == [
        {"answer": "1", "prediction": 1, "candidates": [1], "reason": "answered", "p_value": None},
        {
            "answer": "I don't know — no digit is likely enough across the networks",
            "prediction": None,
            "candidates": [],
            "reason": "no candidate",
            "p_value": 0.123457,
        },
    ]


def test_the_percentile_is_taken_across_the_sampled_networks(tiny):
    x = torch.rand(6, 784)
    result = predict_with_abstain(tiny, x, 10, threshold=0.05, percentile=25.0, mode="median", return_samples=True)
    assert result.percentile == 25.0
    assert torch.allclose(result.percentile_probs, torch.quantile(result.samples, 0.25, dim=0), atol=1e-6)


def test_a_model_that_does_not_read_28x28_images_says_so_before_predicting():
    from bnn import BNNConfig, TrainedBNN

    narrow = TrainedBNN.untrained(BNNConfig(input_dim=64, hidden_dim=8, num_data=10), seed=0)
    with pytest.raises(ValueError, match="this model expects 64 inputs per image; only 28x28 images are supported"):
        predict_with_abstain(narrow, torch.rand(3, 784), 4, mode="median")


def test_a_rule_object_gives_the_same_answer_as_its_keywords(tiny):
    from inference import Rule

    x = torch.rand(4, 784)
    by_keywords = predict_with_abstain(tiny, x, 10, threshold=0.05, percentile=30.0, mode="median")
    by_rule = predict_with_abstain(tiny, x, rule=Rule(num_samples=10, threshold=0.05, percentile=30.0), mode="median")
    assert torch.equal(by_keywords.prediction, by_rule.prediction) and by_rule.threshold == 0.05
    with pytest.raises(ValueError, match="either as rule=Rule"):
        predict_with_abstain(tiny, x, threshold=0.3, rule=Rule(), mode="median")


def test_the_old_string_rule_still_works_for_one_release_and_warns(tiny):
    x = torch.rand(3, 784)
    with pytest.warns(DeprecationWarning, match=r"rule='median'\) is deprecated: pass mode='median'"):
        old = predict_with_abstain(tiny, x, 10, rule="median")
    assert torch.equal(old.prediction, predict_with_abstain(tiny, x, 10, mode="median").prediction)
    with pytest.warns(DeprecationWarning, match="AbstainResult.rule is now AbstainResult.mode"):
        assert old.rule == "median"
    with pytest.raises(ValueError, match="pass mode alone"), pytest.warns(DeprecationWarning):
        predict_with_abstain(tiny, x, 10, rule="median", mode="calibrated")
