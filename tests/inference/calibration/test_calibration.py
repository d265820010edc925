"""The calibrated rule: conformal p-values against the formula, the guarantee on exchangeable data, persistence, errors."""

import numpy as np
import pytest
import scipy.stats
import torch

from bnn import CheckpointError, load_checkpoint, load_model, save_checkpoint
from inference import ABSTAIN, Rule, decide, predict_with_abstain
from inference.calibration import (
    bonferroni,
    certified_threshold,
    component_p_values,
    conformal_p_values,
    two_sided_p_values,
    unfamiliarity_p_value,
)
from inference.posterior import SCORING_SEED, entropy, mutual_information, summarise
from inference.predictive import DEFAULT_RULE, TOO_UNCERTAIN, UNFAMILIAR
from tests.conftest import synthetic, trained_on_synthetic


def test_p_values_match_the_formula_by_hand():
    calibration = torch.tensor([1.0, 2.0, 3.0, 4.0])  # n = 4
    # s = 0: all 4 are >= s -> 5/5; s = 2.5: {3, 4} -> 3/5; s = 4: {4} -> 2/5; s = 9: none -> 1/5
    p = conformal_p_values(calibration, torch.tensor([0.0, 2.5, 4.0, 9.0]))
    assert p.tolist() == pytest.approx([1.0, 0.6, 0.4, 0.2])
    # two-sided: 2 * min(upper, lower); lower at s = 0 is (1 + 0) / 5
    two = two_sided_p_values(calibration, torch.tensor([0.0, 2.5, 9.0]))
    assert two.tolist() == pytest.approx([0.4, 1.0, 0.4])
    assert bonferroni([torch.tensor([0.2, 0.9]), torch.tensor([0.5, 0.3])]).tolist() == pytest.approx([0.4, 0.6])
    assert bonferroni([torch.tensor([0.9]), torch.tensor([0.8])]).tolist() == [1.0]  # a p-value never exceeds 1
    # The entropy and the class doubt are strange only when high; the density both when too low and too high.
    held_out = {name: calibration for name in ("entropy", "density", "class_doubt")}
    low = {name: torch.tensor([0.0]) for name in held_out}
    p_values = {name: p.tolist() for name, p in component_p_values(held_out, low).items()}
    assert p_values == {"entropy": [1.0], "density": [pytest.approx(0.4)], "class_doubt": [1.0]}


def test_the_gate_ranks_fishers_statistic_among_the_held_out_digits_by_hand():
    # Three held-out digits; each digit's p-values are counted among the digits (itself included), over n + 1 = 4.
    held_out = {"entropy": torch.tensor([1.0, 2.0, 3.0]), "density": torch.tensor([0.0, 5.0, 10.0])}
    # Entropy (high is strange): 3/4, 2/4, 1/4. Density (two-sided): 0 -> 2 * 1/4, 5 -> 2 * 2/4 = 1, 10 -> 2 * 1/4.
    # Statistics: -2 log(3/4 * 1/2) = 1.96, -2 log(2/4 * 1) = 1.39, -2 log(1/4 * 1/2) = 4.16.
    # A new input's own p-values count it too: entropy 2.5 -> (1 + 1) / 4, density 5 -> min(1, 2 * 2/4) = 1:
    # statistic -2 log(2/4) = 1.39, matched or passed by all three digits: p = (1 + 3) / 4.
    # Entropy 4 -> 1/4 and density 11 -> 2 * 1/4: statistic 4.16, matched by the third digit only: p = 2/4.
    new = {"entropy": torch.tensor([2.5, 4.0]), "density": torch.tensor([5.0, 11.0])}
    assert unfamiliarity_p_value(held_out, new, fisher_combination=True).tolist() == pytest.approx([1.0, 0.5])


def test_fishers_p_value_is_never_below_the_full_conformal_one():
    from inference.calibration import fisher_p_values

    g = torch.Generator().manual_seed(0)
    held_out = {"entropy": torch.randint(0, 5, (40,), generator=g).float(), "density": torch.randn(40, generator=g)}
    new = {"entropy": torch.randint(0, 6, (30,), generator=g).float(), "density": 2 * torch.randn(30, generator=g)}

    def full_conformal(i: int) -> float:
        # The input and the digits as one set of n + 1: every member's p-values and statistic taken in that set.
        e = torch.cat([held_out["entropy"], new["entropy"][i : i + 1]]).tolist()
        d = torch.cat([held_out["density"], new["density"][i : i + 1]]).tolist()
        size = len(e)
        statistic = []
        for j in range(size):
            p_e = sum(x >= e[j] for x in e) / size
            p_d = min(1.0, 2 * min(sum(x >= d[j] for x in d), sum(x <= d[j] for x in d)) / size)
            statistic.append(-2 * (np.log(p_e) + np.log(p_d)))
        return sum(t >= statistic[-1] - 1e-9 for t in statistic) / size

    exact = torch.tensor([full_conformal(i) for i in range(30)])
    ours = fisher_p_values(held_out, new)
    assert (ours >= exact - 1e-6).all()
    assert (ours - exact).max() <= 4 / 41 and (ours > exact + 1e-6).any()  # a bound, and a close one


def test_the_gate_refuses_what_is_unusual_on_both_scores_more_than_what_is_extreme_on_one():
    # Independent scores, so Fisher's statistic is chi-square with 4 degrees of freedom among digits.
    g = torch.Generator().manual_seed(0)
    n = 20_000
    held_out = {"entropy": torch.rand(n, generator=g), "density": torch.randn(n, generator=g)}
    normal = scipy.stats.norm

    def at(p_entropy: float, p_density: float) -> dict[str, torch.Tensor]:
        return {"entropy": torch.tensor([1 - p_entropy]), "density": torch.tensor([normal.ppf(p_density / 2)])}

    # Bonferroni: 2 * 0.03 = 0.06, passed at 0.02.
    both = unfamiliarity_p_value(held_out, at(0.03, 0.03), fisher_combination=True).item()
    assert both == pytest.approx(scipy.stats.chi2.sf(-2 * np.log(0.03 * 0.03), 4), abs=0.004) and both < 0.02
    one = unfamiliarity_p_value(held_out, at(0.008, 1.0), fisher_combination=True).item()  # Bonferroni: 0.016, refused
    assert one == pytest.approx(scipy.stats.chi2.sf(-2 * np.log(0.008), 4), abs=0.01) and one > 0.02


def test_conformal_p_values_are_super_uniform_on_exchangeable_data():
    """With n = 99 calibration scores, P(p <= 0.1) = floor(0.1 * 100) / 100 = 0.1 exactly."""
    g = torch.Generator().manual_seed(0)
    trials, n, alpha = 4000, 99, 0.1
    scores = torch.randn(trials, n + 1, generator=g)
    refused = sum(conformal_p_values(row[:n], row[n:]).item() <= alpha for row in scores)
    assert scipy.stats.binomtest(refused, trials, alpha).pvalue > 1e-3


@pytest.mark.parametrize("fisher", [False, True], ids=["Bonferroni", "Fisher"])
def test_the_combined_gate_refuses_exchangeable_inputs_at_most_alpha_of_the_time(fisher):
    g = torch.Generator().manual_seed(1)
    trials, n, alpha = 3000, 199, 0.05
    refused = 0
    for _ in range(trials):
        entropy = torch.rand(n + 1, generator=g)
        density = torch.randn(n + 1, generator=g) + entropy  # the two scores depend on each other
        cal = {"entropy": entropy[:n], "density": density[:n]}
        test = {"entropy": entropy[n:], "density": density[n:]}
        refused += int(unfamiliarity_p_value(cal, test, fisher).item() <= alpha)
    # At most alpha: a one-sided binomial test of "rate > alpha" must not reject.
    assert scipy.stats.binomtest(refused, trials, alpha, alternative="greater").pvalue > 1e-3
    assert refused / trials > alpha / 4  # and the gate does refuse some


def test_certified_threshold_by_hand():
    grid = (0.5, 0.9)
    confidence = torch.tensor([0.95] * 30 + [0.6] * 30)
    correct = torch.tensor([True] * 30 + [True] * 20 + [False] * 10)
    # t = 0.9: 30 answers, 0 errors: P(Bin(30, 0.1) <= 0) = 0.9 ** 30 = 0.042 <= 0.1 / 2. Certified.
    # t = 0.5: 60 answers, 10 errors: P(Bin(60, 0.1) <= 10) = 0.96. Not certified.
    assert certified_threshold(confidence, correct, max_risk=0.1, delta=0.1, grid=grid) == 0.9
    # With delta = 0.05 the bound 0.025 is below 0.042: nothing is certified, nothing answered.
    assert certified_threshold(confidence, correct, max_risk=0.1, delta=0.05, grid=grid) == float("inf")
    assert scipy.stats.binom.cdf(0, 30, 0.1) == pytest.approx(0.9**30)


def test_risk_threshold_keeps_its_bound_on_synthetic_data():
    g = torch.Generator().manual_seed(2)
    max_risk, delta, violations, trials = 0.05, 0.1, 0, 300
    for _ in range(trials):
        confidence = torch.rand(4000, generator=g)
        correct = torch.rand(4000, generator=g) < 0.6 + 0.4 * confidence  # error falls with confidence
        cutoff = certified_threshold(confidence[:2000], correct[:2000], max_risk, delta, grid=tuple(np.linspace(0, 0.99, 34)))
        answered = confidence[2000:] >= cutoff
        violations += int((~correct[2000:][answered]).float().mean().item() > max_risk + 0.01)
    assert violations / trials <= delta


def test_risk_threshold_counts_the_answers_the_gate_keeps_under_the_calibration_s_combination():
    """300 right answers with independent scores and 100 wrong ones a little unusual on both scores: Fisher's
    combination refuses the 100 at alpha 0.3, so the rest certify the lowest threshold; Bonferroni's keeps them (their
    least p-value, doubled, is 0.5), and 25% errors certify none. Only answered digits count."""
    from inference.calibration import conformal

    g = torch.Generator().manual_seed(0)
    ordinary = {name: torch.rand(300, generator=g) for name in ("entropy", "class_doubt")}
    scores = {name: torch.cat([value, 1.5 + 0.01 * torch.rand(100, generator=g)]) for name, value in ordinary.items()}
    confidence, correct = torch.full((400,), 0.99), torch.arange(400) < 300
    answered = torch.ones(400, dtype=torch.bool)
    settings = {"answered": answered, "correct": correct, "alpha": 0.3, "max_risk": 0.05, "delta": 0.1}
    assert conformal.risk_threshold(scores, confidence, **settings, fisher_combination=True) == conformal.RISK_GRID[0]
    assert conformal.risk_threshold(scores, confidence, **settings, fisher_combination=False) == float("inf")
    unanswered = settings | {"answered": correct}  # the wrong ones refused by the rule do not count either way
    assert conformal.risk_threshold(scores, confidence, **unanswered, fisher_combination=False) == conformal.RISK_GRID[0]


def test_the_gate_s_scores_of_a_median_rule_result_are_refused_saying_why(calibrated):
    from inference.calibration import gate_scores

    median = predict_with_abstain(calibrated, synthetic(5, seed=3).images, 20, mode="median")
    with pytest.raises(ValueError, match="these results carry no density score: predict with mode='calibrated'"):
        gate_scores(median)


def test_entropy_and_mutual_information_match_scipy():
    g = torch.Generator().manual_seed(3)
    samples = torch.softmax(torch.randn(7, 5, 10, generator=g) * 3, -1)
    samples[:, 0] = torch.eye(10)[2]  # all networks agree and are sure: H = I = 0
    mean = samples.mean(0).numpy()
    expected_h = scipy.stats.entropy(mean, axis=-1)
    expected_i = expected_h - scipy.stats.entropy(samples.numpy(), axis=-1).mean(0)
    assert entropy(samples.mean(0)).numpy() == pytest.approx(expected_h, abs=1e-5)
    assert mutual_information(samples).numpy() == pytest.approx(expected_i, abs=1e-5)
    assert mutual_information(samples)[0] == 0


@pytest.fixture(scope="module")
def calibrated():
    """A small network trained on separable fake digits, calibrated on 300 held-out ones."""
    return trained_on_synthetic(900, 300, hidden_dim=32, num_samples=20, vae_epochs=10)


def test_calibrated_rule_answers_familiar_digits_and_refuses_noise_as_unfamiliar(calibrated):
    digits = predict_with_abstain(calibrated, synthetic(300, seed=7).images, 20)
    assert digits.mode == "calibrated" and digits.p_value is not None
    assert digits.abstained.float().mean() < 0.1
    noise = predict_with_abstain(calibrated, torch.rand(200, 784), 20)
    blank = predict_with_abstain(calibrated, torch.zeros(5, 784), 20)
    assert (noise.reason == UNFAMILIAR).all() and (noise.prediction == ABSTAIN).all()
    assert (blank.reason == UNFAMILIAR).all(), "a blank page is far *more* likely than a digit: two-sided test"
    assert set(noise.reasons()) == {"unfamiliar input"}


def test_median_rule_is_the_reference_rule_bit_for_bit(calibrated):
    x = torch.cat([synthetic(100, seed=8).images, torch.rand(50, 784)])
    result = predict_with_abstain(calibrated, x, 20, mode="median", return_samples=True)
    prediction, candidates, level = decide(result.samples)
    assert torch.equal(result.prediction, prediction)
    assert torch.equal(result.candidates, candidates) and torch.equal(result.percentile_probs, level)
    assert result.p_value is None
    calibrated_result = predict_with_abstain(calibrated, x, 20, mode="calibrated")
    assert torch.equal(calibrated_result.median_prediction, prediction)  # same candidates under both rules


def test_risk_gate_refuses_only_answers_and_says_why(calibrated):
    x = synthetic(300, seed=9).images
    plain = predict_with_abstain(calibrated, x, 20)
    strict = predict_with_abstain(calibrated, x, 20, max_risk=0.001, delta=0.05)
    assert (strict.abstained >= plain.abstained).all()
    newly = strict.abstained & ~plain.abstained
    assert newly.any() and (strict.reason[newly] == TOO_UNCERTAIN).all()
    assert torch.equal(strict.reason[plain.abstained], plain.reason[plain.abstained])  # other refusals keep their reason


def test_calibrated_answers_repeat_and_carry_their_density(calibrated):
    x = torch.cat([synthetic(40, seed=14).images, torch.rand(10, 784)])
    a, b = predict_with_abstain(calibrated, x, 20), predict_with_abstain(calibrated, x, 20)
    assert a.density is not None and a.density.shape == (50,)
    assert torch.equal(a.density, b.density) and torch.equal(a.p_value, b.p_value)


def test_max_risk_needs_the_calibration_s_percentile(calibrated):
    x = synthetic(20, seed=15).images
    predict_with_abstain(calibrated, x, 20, percentile=40.0)  # the gate alone does not depend on the percentile
    with pytest.raises(ValueError, match=r"max_risk is calibrated for percentile=50 \(got percentile=40\)"):
        predict_with_abstain(calibrated, x, 20, percentile=40.0, max_risk=0.1)


def test_calibration_survives_a_checkpoint(tmp_path, calibrated):
    path = save_checkpoint(tmp_path / "c.pt", calibrated)
    loaded = load_model(path)
    assert loaded.calibration is not None and len(loaded.calibration) == 300
    x = torch.cat([synthetic(50, seed=10).images, torch.rand(20, 784)])
    a, b = predict_with_abstain(calibrated, x, 20), predict_with_abstain(loaded, x, 20)
    assert torch.equal(a.p_value, b.p_value) and torch.equal(a.prediction, b.prediction)
    payload = torch.load(path, weights_only=True)
    payload["calibration"]["density"] = payload["calibration"]["density"][:10]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="density"):
        load_checkpoint(tmp_path / "bad.pt")


def test_a_checkpoint_without_calibration_loads_and_says_how_to_calibrate(tmp_path, tiny):
    path = save_checkpoint(tmp_path / "plain.pt", tiny)
    model = load_model(path)
    assert model.calibration is None
    with pytest.warns(UserWarning, match="inference.calibrate"):
        result = predict_with_abstain(model, torch.rand(3, 784), 10)
    assert result.mode == "median"
    with pytest.raises(ValueError, match="Calibrate it with"):
        predict_with_abstain(model, torch.rand(3, 784), 10, mode="calibrated")
    # A version-1 file (before calibrations existed) still loads.
    payload = torch.load(path, weights_only=True)
    payload["format_version"] = 1
    torch.save(payload, tmp_path / "v1.pt")
    assert load_model(tmp_path / "v1.pt").calibration is None


@pytest.mark.parametrize(
    "kwargs",
    [{"alpha": 0.0}, {"alpha": 1.0}, {"alpha": -0.1}, {"max_risk": 0.0}, {"max_risk": 1.5}, {"delta": 0.0}, {"delta": 1.0}],
)
def test_bad_alpha_risk_and_delta_are_rejected(calibrated, kwargs):
    with pytest.raises(ValueError, match="must be a number strictly between 0 and 1"):
        predict_with_abstain(calibrated, torch.rand(2, 784), 20, **kwargs)
    with pytest.raises(ValueError):
        Rule(**kwargs)


def test_predictions_must_sample_as_many_networks_as_the_calibration(calibrated):
    with pytest.raises(ValueError, match="num_samples=20"):
        predict_with_abstain(calibrated, torch.rand(2, 784), 50)
    with pytest.raises(ValueError, match="max_risk applies to the calibrated rule"):
        predict_with_abstain(calibrated, torch.rand(2, 784), 20, mode="median", max_risk=0.1)


def test_calibration_split_is_seeded_and_disjoint():
    from inference import split_calibration

    data = synthetic(100)
    data.images[:, -1] = torch.arange(100) / 100  # tag each image
    fit, held = split_calibration(data, 20, seed=4)
    again = split_calibration(data, 20, seed=4)[1]
    tags_fit, tags_held = set(fit.images[:, -1].tolist()), set(held.images[:, -1].tolist())
    assert len(held) == 20 and len(fit) == 80 and not tags_fit & tags_held
    assert torch.equal(held.images, again.images)
    assert not np.array_equal(held.images.numpy(), split_calibration(data, 20, seed=5)[1].images.numpy())
    with pytest.raises(ValueError, match="cannot hold out"):
        split_calibration(data, 100)


def test_held_out_size_for_quick_runs_and_the_smallest_p_value():
    from inference.calibration import held_out_size, smallest_gate_p_value

    assert held_out_size(60_000, 5000) == 5000  # a tenth would be 6,000: the request caps it
    assert held_out_size(20_000, 5000) == 2000  # a tenth
    assert held_out_size(3000, 5000) == 1000  # at least 1,000 ...
    assert held_out_size(1500, 5000) == 750  # ... but never more than half
    assert held_out_size(60_000, 0) == 0
    assert held_out_size(12_345, 5000) == 1234
    assert all(type(held_out_size(n, 5000)) is int for n in (1500, 3001, 12_345, 60_000))  # a count, to slice by
    # Two components, the density two-sided: 2 * 2 / (n + 1).
    assert smallest_gate_p_value(3999) == pytest.approx(0.001)
    assert smallest_gate_p_value(199) == pytest.approx(0.02)
    assert smallest_gate_p_value(0) == 1.0
    # Fisher's: 1 / (n + 1), the new input alone the strangest of the set.
    assert smallest_gate_p_value(3999, fisher_combination=True) == pytest.approx(1 / 4000)
    assert smallest_gate_p_value(199, fisher_combination=True) == pytest.approx(1 / 200)


def test_the_risk_gate_is_risk_threshold_on_the_held_out_answers(calibrated, monkeypatch):
    """predict_with_abstain's cutoff is the one computed by hand from the held-out answers and their correctness."""
    from inference.calibration import conformal
    from inference.predictive import answer

    x = synthetic(300, seed=11).images
    cal = calibrated.calibration
    held_answers, _ = answer(cal.percentile_probs, 0.2)
    cutoff = conformal.risk_threshold(
        conformal.gate_scores(cal),
        cal.percentile_probs.max(-1).values,
        answered=held_answers != ABSTAIN,
        correct=held_answers == cal.labels,
        alpha=DEFAULT_RULE.alpha,
        max_risk=0.05,
        delta=0.1,
        fisher_combination=cal.fisher_combination,
    )
    real_risk_threshold, combinations = conformal.risk_threshold, []
    monkeypatch.setattr(
        conformal, "risk_threshold", lambda *a, **k: combinations.append(k["fisher_combination"]) or real_risk_threshold(*a, **k)
    )
    plain = predict_with_abstain(calibrated, x, 20)
    strict = predict_with_abstain(calibrated, x, 20, max_risk=0.05, delta=0.1)
    expected = plain.abstained | (plain.score < cutoff)
    assert torch.equal(strict.abstained, expected)
    assert strict.alpha == DEFAULT_RULE.alpha and plain.alpha == DEFAULT_RULE.alpha
    assert combinations == [cal.fisher_combination]  # the risk gate's held-out digits pass the calibration's own gate


def test_an_answer_whose_confidence_equals_the_risk_cutoff_is_kept(calibrated, monkeypatch):
    from inference.calibration import conformal

    x = synthetic(100, seed=14).images
    plain = predict_with_abstain(calibrated, x, 20)
    cutoff = float(plain.percentile_probs.max(-1).values[~plain.abstained][0])  # an answer's own confidence
    monkeypatch.setattr(conformal, "risk_threshold", lambda *a, **k: cutoff)
    strict = predict_with_abstain(calibrated, x, 20, max_risk=0.05, delta=0.1)
    at_cutoff = (plain.percentile_probs.max(-1).values == cutoff) & ~plain.abstained
    assert at_cutoff.any() and not strict.abstained[at_cutoff].any()  # certified as confidence >= cutoff


def test_an_input_whose_p_value_equals_alpha_is_refused(calibrated):
    x = torch.cat([synthetic(100, seed=12).images, torch.rand(100, 784)])
    first = predict_with_abstain(calibrated, x, 20, alpha=0.5)
    inside = first.p_value[(first.p_value > 0.05) & (first.p_value < 0.9)]
    alpha = float(inside[0])
    again = predict_with_abstain(calibrated, x, 20, alpha=alpha)
    at_alpha = again.p_value == alpha
    assert at_alpha.any() and (again.reason[at_alpha] == UNFAMILIAR).all()


def test_calibrate_with_its_defaults_and_a_chosen_vae(calibrated, monkeypatch):
    import inference.calibration.fit
    from inference import CalibrationConfig, calibrate
    from tests.conftest import synthetic as make

    data = make(1200, seed=13)
    fit = type(data)("fit", data.images[:200], data.labels[:200])
    held_out = type(data)("held", data.images[200:], data.labels[200:])
    model = trained_on_synthetic(200, 1000, hidden_dim=16, num_samples=100, vae_epochs=1)
    config = CalibrationConfig(held_out=len(held_out), vae_epochs=1, vae_hidden_dim=24, vae_latent_dim=3)
    real_train_vae, pens = inference.calibration.fit.train_vae, []
    monkeypatch.setattr(
        inference.calibration.fit, "train_vae", lambda *a, **k: pens.append((a[1], k["wide_pen"])) or real_train_vae(*a, **k)
    )
    result = calibrate(model, held_out, fit, config, progress=False, split_seed=7)
    assert result.num_samples == 100 and len(result) == 1000
    # Conditioned on the ten digits and, by default, the written characters' class.
    assert (result.vae.config.hidden_dim, result.vae.config.latent_dim, result.vae.config.num_classes) == (24, 3, 11)
    assert CalibrationConfig(class_density=False).vae_config(10).num_classes == 0
    assert CalibrationConfig().vae_config(10).num_classes == 11 and CalibrationConfig().vae_config(0).num_classes == 0
    assert CalibrationConfig(character_class=False).vae_config(10).num_classes == 10
    assert not CalibrationConfig().vae_config(10).deskew and CalibrationConfig().vae_config(10, deskew=True).deskew
    assert result.split_seed == 7
    assert result.has_class_doubt and result.class_doubt.shape == (1000,)  # the default gate's third score
    assert pens == [(1, config.density_wide_pen)] and config.density_wide_pen > 0  # its epochs; its digits, both pens
    at_30 = calibrate(model, held_out, fit, config, percentile=30.0, progress=False)
    expected = summarise(model, held_out.images, 100, 30.0, seed=SCORING_SEED).percentile_probs
    assert at_30.percentile == 30.0 and torch.allclose(at_30.percentile_probs, expected)
    with pytest.raises(ValueError, match="at least one labelled image"):
        calibrate(model, type(data)("none", data.images[:0], data.labels[:0]), fit, progress=False)


def test_a_calibration_of_one_digit_is_valid_and_of_none_is_refused(calibrated):
    from bnn.calibration import Calibration, CalibrationError

    state = calibrated.calibration.to_state()
    one = {k: (v[:1] if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
    assert len(Calibration.from_state(one)) == 1
    none = {k: (v[:0] if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
    with pytest.raises(CalibrationError, match="a calibration needs at least one held-out image"):
        Calibration.from_state(none)
    with pytest.raises(CalibrationError, match=r"calibration entropy is .*; expected 1 dimension\(s\) of length -1"):
        Calibration.from_state(state | {"labels": state["labels"].tolist()})


def test_a_corrupt_calibration_is_refused_naming_what_does_not_fit(calibrated):
    from bnn.calibration import Calibration, CalibrationError

    state = calibrated.calibration.to_state()
    n = len(state["labels"])
    with pytest.raises(CalibrationError, match="a calibration must be a dict, got list"):
        Calibration.from_state([state])
    with pytest.raises(CalibrationError, match="the calibration is incomplete or does not fit its VAE: 'vae'"):
        Calibration.from_state({k: v for k, v in state.items() if k != "vae"})
    with pytest.raises(CalibrationError, match=r"calibration entropy is NoneType; expected 1 dimension\(s\)"):
        Calibration.from_state(state | {"entropy": None})  # only the class doubt may be missing
    with pytest.raises(CalibrationError, match=r"calibration density is list; expected 1 dimension\(s\)"):
        Calibration.from_state(state | {"density": state["density"].tolist()})
    with pytest.raises(CalibrationError, match=rf"calibration density is \({n}, 1\) torch.float32; expected 1 dimension"):
        Calibration.from_state(state | {"density": state["density"][:, None]})


def test_a_calibration_s_plain_data_round_trip_keeps_every_field_with_or_without_the_class_doubt(calibrated):
    import dataclasses

    from bnn.calibration import Calibration

    def same(a: Calibration, b: Calibration) -> bool:
        for field in dataclasses.fields(Calibration):
            x, y = getattr(a, field.name), getattr(b, field.name)
            if field.name == "vae":
                if x.config != y.config or any(not torch.equal(v, y.state_dict()[k]) for k, v in x.state_dict().items()):
                    return False
            elif isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
                if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and torch.equal(x, y)):
                    return False
            elif x != y:
                return False
        return True

    three = calibrated.calibration
    two = dataclasses.replace(three, class_doubt=None, split_seed=7)  # a seed no default gives
    for cal in (three, two):
        assert same(Calibration.from_state(cal.to_state()), cal)
    assert not same(two, three)


def test_a_calibration_keeps_its_combination_and_one_saved_before_the_option_keeps_bonferroni(calibrated):
    from bnn.calibration import Calibration
    from inference.calibration import gate_scores

    state = calibrated.calibration.to_state()
    assert state["fisher_combination"] is True  # the default
    old = {k: v for k, v in state.items() if k != "fisher_combination"}
    bonferroni_calibration = Calibration.from_state(old)
    assert bonferroni_calibration.fisher_combination is False
    assert Calibration.from_state(state).fisher_combination is True
    # The prediction uses the calibration's own combination.
    images = synthetic(40, seed=11).images
    model = calibrated
    result = predict_with_abstain(model, images, 20, mode="calibrated")
    try:
        model.calibration = bonferroni_calibration
        bonferroni_p = predict_with_abstain(model, images, 20, mode="calibrated").p_value
    finally:
        model.calibration = Calibration.from_state(state)
    held_out = gate_scores(bonferroni_calibration)
    assert torch.allclose(result.p_value, unfamiliarity_p_value(held_out, gate_scores(result), fisher_combination=True))
    assert torch.allclose(bonferroni_p, bonferroni(list(component_p_values(held_out, gate_scores(result)).values())))
    assert not torch.allclose(result.p_value, bonferroni_p)


@pytest.fixture(scope="module")
def conditional_vae():
    """A class-conditional VAE trained on separable fake digits."""
    from bnn.vae import VAEConfig
    from inference.calibration import train_vae

    config = VAEConfig(hidden_dim=64, latent_dim=2, num_classes=10)
    return train_vae(synthetic(600, seed=3), epochs=30, progress=False, config=config)


def test_a_class_conditional_vae_scores_a_digit_higher_under_its_own_class(conditional_vae):
    """Trained on separable fake digits, log p(x | y) is highest for the class that lit x's block."""
    from inference.calibration import vae_elbo

    vae, data = conditional_vae, synthetic(600, seed=3)
    x = data.images[:50]
    under = torch.stack([vae_elbo(vae, x, 4, classes=torch.full((50,), k)) for k in range(10)], -1)
    assert (under.argmax(-1) == data.labels[:50]).float().mean() > 0.9
    with pytest.raises(ValueError, match="conditioned on the class"):
        vae_elbo(vae, x)


def test_the_class_doubt_is_minus_the_log_posterior_of_the_class_by_hand(conditional_vae):
    """-log p(y | x) = logsumexp_k ELBO(x | k) - ELBO(x | y), one particle each, the same draws for every class; a
    digit doubts its own class least."""
    from bnn.vae import VAE, VAEConfig
    from inference.calibration import class_doubt, vae_elbo

    data = synthetic(600, seed=3)
    x, y = data.images[:50], data.labels[:50]
    under = torch.stack([vae_elbo(conditional_vae, x, 1, 5, classes=torch.full((50,), k)) for k in range(10)], -1)
    by_hand = under.logsumexp(-1) - under[torch.arange(50), y]
    assert torch.allclose(class_doubt(conditional_vae, x, y, seed=5), by_hand, atol=1e-4, rtol=1e-5)
    doubts = torch.stack([class_doubt(conditional_vae, x, torch.full((50,), k), seed=5) for k in range(10)], -1)
    assert (doubts >= 0).all() and (doubts.argmin(-1) == y).float().mean() > 0.9
    with pytest.raises(ValueError, match="conditioned on the class"):
        class_doubt(VAE(VAEConfig(hidden_dim=8, latent_dim=2)), x, y)


def test_the_gate_adds_the_class_doubt_where_the_calibration_holds_it(calibrated):
    """The default calibration scores the class doubt and the gate combines three scores; a calibration saved before
    the option (or made without a class density) has two, and its predictions carry no class doubt."""
    from bnn.calibration import Calibration, CalibrationError
    from inference import CalibrationConfig
    from inference.calibration import class_doubt, fisher_p_values, gate_scores

    cal = calibrated.calibration
    state = cal.to_state()
    assert state["class_doubt"].shape == (300,) and torch.equal(Calibration.from_state(state).class_doubt, cal.class_doubt)
    images = synthetic(40, seed=11).images
    result = predict_with_abstain(calibrated, images, 20, mode="calibrated")
    expected = class_doubt(cal.vae, images, result.percentile_probs.argmax(-1), SCORING_SEED)
    assert torch.allclose(result.class_doubt, expected)
    held_out = gate_scores(cal)
    assert list(held_out) == ["entropy", "density", "class_doubt"]
    assert torch.equal(result.p_value, fisher_p_values(held_out, gate_scores(result)))
    two_score = Calibration.from_state({k: v for k, v in state.items() if k != "class_doubt"})
    try:
        calibrated.calibration = two_score
        two = predict_with_abstain(calibrated, images, 20, mode="calibrated")
    finally:
        calibrated.calibration = Calibration.from_state(state)
    assert two.class_doubt is None and list(gate_scores(two)) == ["entropy", "density"]
    assert cal.has_class_doubt and not two_score.has_class_doubt
    two_held_out = {k: held_out[k] for k in ("entropy", "density")}
    assert torch.equal(two.p_value, fisher_p_values(two_held_out, gate_scores(two)))
    assert not torch.equal(two.p_value, result.p_value)
    assert CalibrationConfig().gate_components == 3 and CalibrationConfig(class_density=False).gate_components == 2
    with pytest.raises(CalibrationError, match="calibration class_doubt is"):
        Calibration.from_state(state | {"class_doubt": state["class_doubt"][:5]})


def test_class_density_calibrates_and_predicts_under_the_answered_class(tmp_path):
    from inference import CalibrationConfig, calibrate

    data = synthetic(1400, seed=11)
    fit = type(data)("fit", data.images[:400], data.labels[:400])
    held_out = type(data)("held", data.images[400:], data.labels[400:])
    model = trained_on_synthetic(400, 1000, hidden_dim=16, num_samples=20, vae_epochs=1)
    config = CalibrationConfig(vae_epochs=2, class_density=True, character_class=False)
    calibrate(model, held_out, fit, config, num_samples=20, progress=False)
    assert model.calibration.vae.config.num_classes == 10
    x = synthetic(30, seed=12).images
    result = predict_with_abstain(model, x, 20)
    from inference.calibration import vae_elbo

    expected = vae_elbo(model.calibration.vae, x, model.calibration.vae_particles, 0, classes=result.percentile_probs.argmax(-1))
    assert torch.allclose(result.density, expected)
    save_checkpoint(tmp_path / "c.pt", model)
    assert torch.equal(predict_with_abstain(load_model(tmp_path / "c.pt"), x, 20).density, result.density)


def test_an_input_gets_the_same_answer_alone_as_in_any_batch(calibrated):
    """The networks' noise and the density's draws are made once per call and shared by every input and chunk: an
    input's scores, p-value and answer do not depend on the batch it comes in or its place there."""
    model = calibrated
    x = synthetic(40, seed=13).images
    batch = predict_with_abstain(model, x, 20, chunk_size=7)
    for i in (0, 8, 39):
        alone = predict_with_abstain(model, x[i : i + 1], 20)
        for field in ("entropy", "density", "p_value", "percentile_probs"):
            assert torch.allclose(getattr(alone, field)[0], getattr(batch, field)[i], atol=1e-5), (i, field)
        assert alone.prediction[0] == batch.prediction[i]
    from inference.calibration import vae_elbo

    vae, classes = model.calibration.vae, batch.percentile_probs.argmax(-1)
    chunked = vae_elbo(vae, x, 4, classes=classes, chunk_size=3)
    assert torch.allclose(chunked, vae_elbo(vae, x, 4, classes=classes), atol=1e-5)
    assert torch.allclose(chunked[5:6], vae_elbo(vae, x[5:6], 4, classes=classes[5:6]), atol=1e-5)


def test_the_density_and_the_class_doubt_score_every_input_whatever_the_chunks(conditional_vae):
    """More inputs than pixels, in chunks or at once: every input is scored, the same as alone."""
    from inference.calibration import class_doubt, vae_elbo

    x, y = synthetic(1000, seed=4).images, torch.arange(1000) % 10
    whole = class_doubt(conditional_vae, x, y, seed=5, chunk_size=1000)
    chunked = class_doubt(conditional_vae, x, y, seed=5, chunk_size=100)
    assert whole.shape == chunked.shape == (1000,) and torch.allclose(chunked, whole, atol=1e-5)
    assert torch.allclose(chunked[995:], class_doubt(conditional_vae, x[995:], y[995:], seed=5), atol=1e-5)
    density = vae_elbo(conditional_vae, x, 2, 5, chunk_size=100, classes=y)
    assert density.shape == (1000,) and torch.allclose(density, vae_elbo(conditional_vae, x, 2, 5, 1000, y), atol=1e-5)


def test_the_gate_s_density_scores_follow_their_seed(conditional_vae):
    from inference.calibration import density_scores, vae_elbo

    x, y = synthetic(20, seed=4).images, torch.arange(20) % 10
    scores = {seed: density_scores(conditional_vae, x, y, 2, seed, True)["density"] for seed in (5, 6)}
    assert torch.equal(scores[5], vae_elbo(conditional_vae, x, 2, 5, classes=y)) and not torch.equal(scores[5], scores[6])


def test_the_density_draws_its_particles_in_the_vae_s_dtype():
    """A float64 VAE scores with float64 draws of ``z`` (not float32 ones promoted), the draws ``elbo`` would make."""
    from bnn import VAE
    from bnn.vae import VAEConfig
    from inference.calibration import vae_elbo
    from inference.rng import forked_rng

    torch.manual_seed(0)
    vae = VAE(VAEConfig(hidden_dim=16, latent_dim=3)).double().eval()
    x = torch.rand(5, 784, dtype=torch.float64)
    got = vae_elbo(vae, x, 4, seed=2)
    with forked_rng(x.device, 2):
        expected = vae.elbo(x, 4)
    assert got.dtype == torch.float64 and torch.equal(got, expected)


def test_held_out_digits_are_scored_as_a_default_prediction_scores_them_whatever_the_training_seed():
    """Conformal p-values need one score function for the held-out digits and a new input: calibration scores with
    the seed predictions use by default, while its own seed only trains the density."""
    from inference import CalibrationConfig, calibrate

    data = synthetic(700, seed=21)
    fit = type(data)("fit", data.images[:400], data.labels[:400])
    held_out = type(data)("held", data.images[400:], data.labels[400:])
    model = trained_on_synthetic(400, 300, hidden_dim=16, num_samples=20, vae_epochs=1)
    calibrate(model, held_out, fit, CalibrationConfig(vae_epochs=1), num_samples=20, seed=3, progress=False)
    again = predict_with_abstain(model, held_out.images, 20)
    assert torch.allclose(again.entropy, model.calibration.entropy, atol=1e-5)
    assert torch.allclose(again.density, model.calibration.density, atol=1e-4)


def test_the_density_s_training_makes_the_updates_of_pyro_s_svi():
    """One fused Adam over the VAE's parameters against ``SVI`` with ``pyro.optim.Adam``, step for step."""
    import pyro
    from pyro.infer import SVI, Trace_ELBO

    from bnn.vae import VAE, VAEConfig
    from inference.calibration import train_vae

    data = synthetic(256, seed=5)
    config = VAEConfig(hidden_dim=32, latent_dim=3, num_classes=10)
    ours = train_vae(data, epochs=2, batch_size=64, seed=4, progress=False, config=config)
    pyro.set_rng_seed(4)
    pyro.clear_param_store()
    reference = VAE(config)
    svi = SVI(reference.model, reference.guide, pyro.optim.Adam({"lr": 1e-3}), Trace_ELBO())
    generator = torch.Generator().manual_seed(4)
    for _ in range(2):
        for idx in torch.randperm(len(data), generator=generator).split(64):
            svi.step(data.images[idx], data.labels[idx])
    pyro.clear_param_store()
    for (name, mine), theirs in zip(ours.state_dict().items(), reference.state_dict().values(), strict=True):
        assert torch.allclose(mine, theirs, atol=1e-6), name
    pyro.set_rng_seed(4)
    initial = VAE(config).state_dict()["decoder.2.bias"]  # as train_vae draws it
    assert (ours.state_dict()["decoder.2.bias"] - initial).abs().max() > 1e-3  # it trained


def test_a_density_trained_with_the_wider_pen_finds_wide_strokes_more_familiar():
    from bnn.vae import VAEConfig
    from inference.calibration import train_vae, vae_elbo
    from inference.training.augment import wider_pen

    data = synthetic(600, seed=5)
    config = VAEConfig(hidden_dim=64, latent_dim=2)
    plain = train_vae(data, epochs=15, progress=False, config=config)
    both = train_vae(data, epochs=15, progress=False, config=config, wide_pen=0.5)
    x = synthetic(100, seed=6).images

    def wide_against_thin(vae) -> float:
        return (vae_elbo(vae, wider_pen(x), 4) - vae_elbo(vae, x, 4)).mean().item()

    assert wide_against_thin(both) > wide_against_thin(plain) + 10  # nats per image


@pytest.mark.parametrize(
    ("fisher", "what", "size", "smallest"),
    [(True, "the gate", 20, "0.048"), (False, "the density", 20, "0.286"), (True, "the gate", 1, "0.500")],
)
def test_too_few_held_out_digits_warn_that_the_gate_can_refuse_nothing(fisher, what, size, smallest):
    """Any number of held-out digits calibrates, one included; too few for the gate to refuse at 1% say so, with the
    smallest p-value: 1 / (n + 1) under Fisher's combination, 2 x 3 / (n + 1) under Bonferroni's over three scores."""
    from bnn import BNNConfig, TrainedBNN
    from inference import CalibrationConfig, calibrate
    from inference.data import ImageSet

    data = synthetic(60 + size)
    fit, held_out = ImageSet("fit", data.images[:60], data.labels[:60]), ImageSet("held", data.images[60:], data.labels[60:])
    trained = TrainedBNN.untrained(BNNConfig(hidden_dim=8, num_data=60), seed=0)
    config = CalibrationConfig(held_out=size, vae_epochs=1, vae_hidden_dim=8, fisher_combination=fisher)
    expected = f"with {size} held-out digits the gate's p-values are at least {smallest}: at alpha below that, {what}"
    with pytest.warns(UserWarning, match=expected):
        assert len(calibrate(trained, held_out, fit, config, num_samples=4, progress=False)) == size


def test_written_characters_join_the_density_s_data_as_one_more_class_the_size_of_a_digit_class():
    from inference.calibration.fit import with_characters

    digits = synthetic(200, seed=3)
    both = with_characters(digits, 10, seed=0)
    characters = both.images[200:]
    assert len(both) == 220 and torch.equal(both.images[:200], digits.images) and torch.equal(both.labels[:200], digits.labels)
    assert (both.labels[200:] == 10).all() and characters.min() >= 0 and characters.max() <= 1 and (characters.sum(-1) > 5).all()
    assert torch.equal(with_characters(digits, 10, seed=0).images, both.images)  # drawn once, by the seed
    assert not torch.equal(with_characters(digits, 10, seed=1).images[200:], characters)


def test_with_every_character_the_characters_class_holds_the_typeset_bank_once(monkeypatch):
    from inference.calibration import CalibrationConfig, fit
    from inference.training import glyphs

    bank = glyphs.glyph_bank()[:37]
    monkeypatch.setattr(glyphs, "glyph_bank", lambda same_shape_case=False: bank)
    digits = synthetic(200, seed=3)
    both = fit.with_characters(digits, 10, seed=0, every_character=True)
    assert len(both) == 237 and (both.labels[200:] == 10).all()
    assert len(fit.with_characters(digits, 10, seed=0)) == 220  # as many as a digit class holds
    assert CalibrationConfig(every_character=True).vae_config(10).num_classes == 11


def test_with_a_stroke_class_the_density_model_gets_pen_strokes_as_a_class_of_their_own():
    from inference.calibration.fit import CalibrationConfig, with_strokes

    digits = synthetic(200, seed=3)
    both = with_strokes(digits, 20, 11, seed=0)
    strokes = both.images[200:]
    assert len(both) == 220 and torch.equal(both.images[:200], digits.images) and (both.labels[200:] == 11).all()
    assert strokes.min() >= 0 and strokes.max() <= 1 and (strokes.sum(-1) > 5).all()
    assert torch.equal(with_strokes(digits, 20, 11, seed=0).images, both.images)  # drawn once, by the seed
    assert CalibrationConfig(stroke_class=True).vae_config(10).num_classes == 12
    assert CalibrationConfig(stroke_class=True, character_class=False).vae_config(10).num_classes == 11
    assert not CalibrationConfig(stroke_class=True, class_doubt=False).with_stroke_class


def test_character_clusters_split_the_characters_by_kmeans_into_classes_after_the_digits():
    from inference.calibration.fit import CalibrationConfig, with_characters

    digits = synthetic(300, seed=3)
    one, three = with_characters(digits, 10, seed=0), with_characters(digits, 10, seed=0, clusters=3)
    assert torch.equal(one.images, three.images) and torch.equal(three.labels[:300], digits.labels)
    labels = three.labels[300:]
    assert sorted(labels.unique().tolist()) == [10, 11, 12]
    # Each character in the class of its nearest k-means centre (a centre is its class's mean image).
    centres = torch.stack([one.images[300:][labels == k].mean(0) for k in (10, 11, 12)]).double()
    assert torch.equal(10 + torch.cdist(one.images[300:].double(), centres).argmin(-1), labels)
    assert CalibrationConfig(character_clusters=3).vae_config(10).num_classes == 13
    assert CalibrationConfig(character_clusters=3, stroke_class=True).vae_config(10).num_classes == 14
    assert CalibrationConfig(character_clusters=3, character_class=False).vae_config(10).num_classes == 10


@pytest.mark.parametrize(
    ("strokes", "clusters", "classes"),
    [(False, 1, 11), (True, 1, 12), (False, 3, 13)],
    ids=["characters", "and strokes", "characters in three classes"],
)
def test_with_a_character_class_the_class_doubt_weighs_each_digit_against_the_characters_too(
    tmp_path, strokes, clusters, classes
):
    """The density model gets an eleventh class (a twelfth, the pen strokes, with ``stroke_class``; the characters
    as several classes with ``character_clusters``); the density term stays under the answered digit, and the class
    doubt's logsumexp runs over every class, so it is never below the doubt among the ten digits."""
    from inference import CalibrationConfig, calibrate
    from inference.calibration import vae_elbo
    from inference.posterior import SCORING_SEED

    data = synthetic(1400, seed=11)
    fit = type(data)("fit", data.images[:400], data.labels[:400])
    held_out = type(data)("held", data.images[400:], data.labels[400:])
    model = trained_on_synthetic(400, 1000, hidden_dim=16, num_samples=20, vae_epochs=1)
    config = CalibrationConfig(vae_epochs=2, stroke_class=strokes, character_clusters=clusters)
    assert config.with_character_class and not CalibrationConfig(character_class=True, class_doubt=False).with_character_class
    calibrate(model, held_out, fit, config, num_samples=20, progress=False)
    vae = model.calibration.vae
    assert vae.config.num_classes == classes
    x = synthetic(30, seed=12).images
    result = predict_with_abstain(model, x, 20)
    answered = result.percentile_probs.argmax(-1)
    assert torch.allclose(result.density, vae_elbo(vae, x, model.calibration.vae_particles, SCORING_SEED, classes=answered))
    under = torch.stack([vae_elbo(vae, x, 1, SCORING_SEED, classes=torch.full((30,), k)) for k in range(classes)], -1)
    by_hand = under.logsumexp(-1) - under[torch.arange(30), answered]
    assert torch.allclose(result.class_doubt, by_hand, atol=1e-4, rtol=1e-5)
    assert (result.class_doubt > under[:, :10].logsumexp(-1) - under[torch.arange(30), answered]).all()
    save_checkpoint(tmp_path / "c.pt", model)
    assert torch.equal(predict_with_abstain(load_model(tmp_path / "c.pt"), x, 20).class_doubt, result.class_doubt)
