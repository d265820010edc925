"""The contenders: the common refusal threshold, ensembles' averaging and the lockstep training."""

import math

import pytest
import torch

from inference.evaluation import contenders as c
from inference.evaluation.report import contenders_page, contenders_seeds_page
from tests.conftest import synthetic


@pytest.mark.parametrize("n", [49, 100, 999])
def test_the_gate_refuses_at_most_the_rate_of_exchangeable_digits(n):
    # With n validation scores and a new exchangeable one, the chance the new one's conformal p-value is at most
    # the rate is floor(rate (n+1)) / (n+1) <= rate: it must rank among the floor(rate (n+1)) strangest of n+1.
    rate, draws = 0.02, 4000
    g = torch.Generator().manual_seed(n)
    refused = 0
    for _ in range(draws // 100):
        probs = torch.softmax(3 * torch.randn(n + 100, 10, generator=g), -1)
        refused += 100 * c.set_figures(probs[n:], torch.zeros(100, dtype=torch.long), c.entropy(probs[:n]), rate)["refused"]
    exact = math.floor(rate * (n + 1)) / (n + 1)
    assert exact <= rate and refused / draws == pytest.approx(exact, abs=0.012)


def test_an_ensemble_averages_its_members_probabilities():
    a, b = torch.nn.Linear(784, 10), torch.nn.Linear(784, 10)
    x = torch.rand(7, 784)
    expected = (torch.softmax(a(x), -1) + torch.softmax(b(x), -1)) / 2
    assert torch.allclose(c.predictive([a, b], x), expected, atol=1e-6)
    assert torch.allclose(c.predictive([a], x, passes=5), torch.softmax(a(x), -1), atol=1e-6)  # no dropout: passes agree


def test_mc_dropout_passes_differ_and_average_towards_the_mean_network():
    torch.manual_seed(0)
    net, x = c.DropoutMLP(0.5, hidden_dim=64), torch.rand(3, 784)
    one, many = c.predictive([net], x, passes=2), c.predictive([net], x, passes=400)
    assert not torch.allclose(one, many, atol=1e-3) and not net.training  # dropout was on for the passes, off after
    assert torch.allclose(many.sum(-1), torch.ones(3))


def test_lockstep_training_learns_and_outlier_exposure_flattens_non_digits():
    data = synthetic(2000, seed=0)  # two batches an epoch
    test = synthetic(300, seed=1)
    nets, trajectory = c.train_networks(data, test, count=2, epochs=10)
    assert len(nets) == 2 and len(trajectory.accuracy) == 10 and trajectory.accuracy[-1] > 0.95
    assert trajectory.seconds == sorted(trajectory.seconds) and trajectory.seconds_to(0.95) is not None
    assert trajectory.seconds_to(1.01) is None
    oe, _ = c.train_networks(data, test, oe_weight=c.OE_WEIGHT, epochs=10)
    noise = torch.rand(200, 784)
    assert c.entropy(c.predictive(oe, noise)).mean() > c.entropy(c.predictive(nets[:1], noise)).mean() + 0.5


def test_set_figures_count_every_answer_to_a_non_digit_as_wrong():
    probs = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    validation = torch.linspace(0.0, 0.6, 49)  # the gate at 2% refuses only entropies above all of these
    f = c.set_figures(probs, torch.full((3,), -1), validation)  # entropies 0.33, 0.69, 0.50
    assert f["refused"] == pytest.approx(1 / 3) and f["wrong"] == pytest.approx(2 / 3) and "forced_accuracy" not in f
    g = c.set_figures(probs, torch.tensor([0, 1, 0]), validation)
    assert g["wrong"] == pytest.approx(1 / 3) and g["forced_accuracy"] == pytest.approx(1 / 3)


def _row(wrong, seconds, accuracy=0.98):
    sets = {
        "MNIST": {"refused": 0.02, "wrong": 0.01, "forced_accuracy": accuracy},
        "Omniglot": {"refused": 1 - wrong, "wrong": wrong, "auroc": 0.9, "fpr95": 0.4},
    }
    return {"epoch_seconds": 1.0, "seconds_to_98": seconds, "train_seconds": 30.0, "predict_seconds": 1.0, "networks": 1,
            "sets": sets}  # fmt: skip


def _run(seed, rows):
    return {"seed": seed, "epochs": 30, "refusal_rate": 0.02, "contenders": {n: _row(*r) for n, r in rows.items()}}


def test_the_page_names_who_answers_wrong_least():
    oe = "outlier exposure (MLP + contrast inputs)"
    results = _run(0, {"BNN (SVI, 100 networks)": (0.4, 20.0), "MLP": (0.3, 10.0), oe: (0.5, None)})
    page = contenders_page(results)
    assert "**Omniglot**: answered wrong 40.0% (BNN) against 30.0% (MLP" in page and "MLP is ahead by 10.0 points" in page
    assert "**MNIST**: answered wrong 1.0% (BNN) against 1.0% (MLP, the best alternative): level." in page
    assert "within 1 point of the BNN's answered-wrong on 1 of 2 sets" in page and "on Omniglot (+10.0);" in page
    assert "MLP is fastest (10 s)" in page and "| never |" in page


def test_a_run_of_the_bnn_alone_has_a_page_and_no_comparison():
    page = contenders_page(_run(0, {"BNN (SVI, 100 networks)": (0.4, 20.0)}))
    assert "(no alternative in this run)" in page and "| never |" not in page


def test_the_seeds_page_gives_mean_and_sd_and_how_often_a_lead_held():
    bnn, oe = "BNN (SVI, 100 networks)", "outlier exposure (MLP + contrast inputs)"
    runs = [
        _run(0, {bnn: (0.40, 20.0, 0.97), oe: (0.50, 10.0)}),
        _run(1, {bnn: (0.44, 30.0, 0.99), oe: (0.40, None)}),
        _run(2, {bnn: (0.36, 40.0, 0.98), oe: (0.48, 12.0)}),
    ]
    page = contenders_seeds_page(runs)
    assert "| 98.00 ± 1.00% |" in page  # the BNN's forced accuracy over 0.97, 0.99, 0.98
    assert "30.0 ± 10.0 s" in page and "never in 1 of 3 seeds" in page
    # Omniglot wrong: BNN 0.40 mean, OE 0.46 mean; the BNN was ahead in seeds 0 and 2.
    assert "the BNN is ahead by 6.0 points, in 2 of 3 seeds" in page
    assert "Omniglot (+6.0 ± 8.7)" in page  # ablation minus BNN: +10, -4, +12 points
    assert "BNN (SVI, 100 networks) is fastest on the mean" in page  # OE never reached 98% in one seed
    with pytest.raises(ValueError, match="repeat a seed"):
        contenders_seeds_page([runs[0], runs[0]])
    with pytest.raises(ValueError, match="do not aggregate"):
        contenders_seeds_page([runs[0], {**runs[1], "epochs": 10}])


def test_the_calibrated_rule_s_heading_gives_the_level_each_run_recorded():
    bnn = "BNN (SVI, 100 networks)"
    rule = {"MNIST": {"refused": 0.02, "wrong": 0.01}}
    old = {**_run(0, {bnn: (0.4, 20.0), "MLP": (0.3, 10.0)}), "bnn_calibrated_rule": rule}  # before runs recorded it
    new = {**_run(1, {bnn: (0.4, 20.0), "MLP": (0.3, 10.0)}), "bnn_calibrated_rule": rule, "bnn_rule_alpha": 0.02}
    assert "density, alpha 0.01)" in contenders_page(old) and "density, alpha 0.02)" in contenders_page(new)
    assert "density, alpha 0.01)" in contenders_seeds_page([old, {**old, "seed": 1}])
    three = {**new, "gate_components": ["entropy", "density", "class_doubt"]}
    assert "(entropy, class-conditional density and class doubt, alpha 0.02)" in contenders_page(three)
    with pytest.raises(ValueError, match="do not aggregate"):  # a mean over two gates' levels would mean nothing
        contenders_seeds_page([old, new])


def test_the_calibrated_gate_refuses_at_most_alpha_of_exchangeable_digits_whatever_the_contender():
    # Any contender's two scores, exchangeable with the validation digits' (the density correlated with the entropy,
    # as a sloppy digit is doubted by both): Fisher's statistic, ranked among the validation digits', refuses at most
    # alpha of them.
    g = torch.Generator().manual_seed(0)
    n, alpha, refused, draws = 499, 0.02, 0.0, 0
    for _ in range(40):
        probs = torch.softmax(3 * torch.randn(n + 100, 10, generator=g), -1)
        density = -50 * c.entropy(probs) + 10 * torch.randn(n + 100, generator=g)
        held_out = {"entropy": c.entropy(probs[:n]), "density": density[:n]}
        f = c.gated_figures(probs[n:], probs[n:].argmax(-1), {"density": density[n:]}, held_out, alpha)
        assert f["wrong"] == 0.0  # every answer is the argmax, and the labels are the argmax
        refused, draws = refused + 100 * f["refused"], draws + 100
    assert refused / draws == pytest.approx(math.floor(alpha * (n + 1)) / (n + 1), abs=0.008)


def test_the_calibrated_gate_refuses_a_confident_answer_whose_density_is_unlike_the_digits():
    g = torch.Generator().manual_seed(1)
    held_out = {"entropy": torch.rand(999, generator=g), "density": -100 + 10 * torch.randn(999, generator=g)}
    confident = torch.tensor([[0.999] + [0.001 / 9] * 9] * 3)  # entropy below every validation digit's
    density = torch.tensor([-100.0, -400.0, 0.0])  # typical, far too unlikely, far too likely (tested two-sided)
    labels = torch.tensor([0, -1, -1])
    assert c.gated_figures(confident[:1], labels[:1], {"density": density[:1]}, held_out) == {"refused": 0.0, "wrong": 0.0}
    assert c.gated_figures(confident[1:], labels[1:], {"density": density[1:]}, held_out) == {"refused": 1.0, "wrong": 0.0}


def test_the_pages_put_every_contender_behind_the_calibrated_gate_where_the_runs_did():
    bnn, oe = "BNN (SVI, 100 networks)", "outlier exposure (MLP + contrast inputs)"

    def gated(run, wrong):
        for name, w in wrong.items():
            sets = run["contenders"][name]["sets"]
            run["contenders"][name]["gated"] = {s: {"refused": 1 - w if s != "MNIST" else 0.02, "wrong": w} for s in sets}
        return run

    runs = [
        gated(_run(0, {bnn: (0.4, 20.0), oe: (0.5, 10.0)}), {bnn: 0.30, oe: 0.20}),
        gated(_run(1, {bnn: (0.4, 20.0), oe: (0.5, 10.0)}), {bnn: 0.32, oe: 0.26}),
    ]
    page = contenders_page(runs[0])
    assert "## Refused / answered wrong behind the calibrated rule's gate (alpha 0.01)" in page
    assert "| Omniglot | 60.0% / 40.0% | 50.0% / 50.0% |" in page  # the one-score gate's, unchanged
    assert "| Omniglot | 70.0% / 30.0% | 80.0% / 20.0% |" in page
    behind = page.split("## Verdict behind the calibrated rule's gate")[1]
    assert "answered wrong 30.0% (BNN) against 20.0% (outlier exposure" in behind and "Time to 98%" not in behind
    seeds = contenders_seeds_page(runs)
    assert "| Omniglot | 31.00 ± 1.41% | 23.00 ± 4.24% |" in seeds
    assert "is ahead by 8.0 points, in 2 of 2 seeds" in seeds.split("## Verdict behind the calibrated rule's gate")[1]
    plain = contenders_seeds_page([_run(0, {bnn: (0.4, 20.0), oe: (0.5, 10.0)}), _run(1, {bnn: (0.4, 20.0), oe: (0.5, 10.0)})])
    assert "calibrated rule's gate" not in plain  # runs made before the gate was given to every contender


def test_the_gate_s_method_names_the_scores_the_runs_combined():
    from inference.evaluation.report.contenders import gated_method

    assert "class doubt" not in gated_method([_run(0, {})])  # runs before the class doubt recorded none
    three = {**_run(1, {}), "gate_components": ["entropy", "density", "class_doubt"]}
    assert "than the others do (the class doubt)" in gated_method([three])
    with pytest.raises(ValueError, match="do not aggregate"):
        gated_method([_run(0, {}), three])
