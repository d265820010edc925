"""The libraries a user would pick instead, on the same work: a 784-1024-10 mean-field BNN with a N(0, 1) prior.

Each contender trains on MNIST's 60,000 training digits with the same batch size and number of
epochs, then samples 100 networks per image. One interface: ``fit(train_set, epochs, batch_size,
on_epoch)`` calls ``on_epoch(seconds)`` after every epoch, and ``sample_probs(x, num_samples)``
returns ``(S, N, 10)`` probabilities. :func:`measure` turns a contender into the figures of the
comparison, from the same samples for every figure.

- ``this project``: its defaults (one weight sample per step, KL weight 0.1, noise-contrastive prior),
  and the same engine on the peers' objective (the plain ELBO, no contrast).
- ``plain Pyro``: ``BayesianMLP`` with ``AutoNormal`` and ``TraceMeanField_ELBO`` through ``SVI.step``;
  prediction with ``pyro.infer.Predictive``.
- ``bayesian-torch``: IntelLabs' ``LinearReparameterization`` or ``LinearFlipout`` layers; loss
  cross-entropy + KL / N (the per-example ELBO), ``torch.optim.Adam``.
- ``TyXe``: ``VariationalBNN`` with an ``IIDPrior(Normal(0, 1))``, its ``AutoNormal`` guide and
  ``Categorical`` likelihood, trained by its own ``fit``.
- ``torch-uncertainty``: its ``BayesLinear`` layers (a Gaussian-mixture prior, here all on N(0, 1);
  a one-sample Monte Carlo KL), its ``ELBOLoss``, and its ``StochasticModel`` for the 100 networks.

The peers are not the project's dependencies: ``scripts/benchmark_peers.py`` runs each in a virtual
environment of its own. A contender whose library does not import reports the error instead of figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn

from bnn import BayesianMLP, BNNConfig, TrainedBNN
from inference.data import ImageSet
from inference.evaluation.metrics import auroc
from inference.evaluation.speed import median_seconds, peak_rss_bytes
from inference.posterior import mutual_information
from inference.predictive import decide, predict_with_abstain
from inference.training import TrainConfig, train

#: The learning rate every peer's Adam uses (this project keeps its own two rates).
PEER_LR = 2e-3
#: Images per forward pass when a peer samples networks one at a time.
PREDICT_CHUNK = 2500


def _batches(train_set: ImageSet, batch_size: int, generator: torch.Generator) -> Any:
    order = torch.randperm(len(train_set), generator=generator)
    for start in range(0, len(train_set), batch_size):
        idx = order[start : start + batch_size]
        yield train_set.images[idx], train_set.labels[idx]


def _adam_epochs(
    parameters: Iterable[Tensor],
    loss_of: Callable[[Tensor, Tensor], Tensor],
    train_set: ImageSet,
    epochs: int,
    batch_size: int,
    seed: int,
    on_epoch: Callable[[float], None],
) -> None:
    """A plain PyTorch loop, as the peers' examples train: Adam at :data:`PEER_LR` on ``loss_of(x, y)``, one
    ``on_epoch(seconds)`` per epoch."""
    optimizer = torch.optim.Adam(parameters, lr=PEER_LR)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        started = time.perf_counter()
        for x, y in _batches(train_set, batch_size, generator):
            loss = loss_of(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        on_epoch(time.perf_counter() - started)


class ThisProject:
    """This project's training; by default its defaults, or (``plain=True``) the peers' objective: the
    plain ELBO (KL weight 1) without the noise-contrastive prior."""

    def __init__(self, num_data: int, seed: int = 0, plain: bool = False):
        self.trained = TrainedBNN.untrained(BNNConfig(num_data=num_data), seed=seed)
        self.seed, self.plain = seed, plain
        self.name = "this project, plain ELBO (KL weight 1, no contrast)" if plain else "this project (default)"

    def fit(self, train_set: ImageSet, epochs: int, batch_size: int, on_epoch: Callable[[float], None]) -> None:
        objective = {"kl_weight": 1.0, "contrast_weight": 0.0} if self.plain else {}
        config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=self.seed, checkpoint_every=0, **objective)
        train(self.trained, train_set, config, progress=False, on_epoch=lambda summary: on_epoch(summary["seconds"]))

    def sample_probs(self, x: Tensor, num_samples: int) -> Tensor:
        return predict_with_abstain(self.trained, x, num_samples, mode="median", return_samples=True).samples


class PlainPyro:
    name = "plain Pyro (AutoNormal, TraceMeanField_ELBO)"

    def __init__(self, num_data: int, seed: int = 0):
        import pyro
        from pyro.infer.autoguide import AutoNormal

        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        self.model = BayesianMLP(BNNConfig(num_data=num_data))
        self.guide = AutoNormal(self.model, init_scale=1e-3)
        self.seed = seed

    def fit(self, train_set: ImageSet, epochs: int, batch_size: int, on_epoch: Callable[[float], None]) -> None:
        import pyro
        from pyro.infer import SVI, TraceMeanField_ELBO

        svi = SVI(self.model, self.guide, pyro.optim.Adam({"lr": PEER_LR}), TraceMeanField_ELBO())
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(epochs):
            started = time.perf_counter()
            for x, y in _batches(train_set, batch_size, generator):
                svi.step(x, y)
            on_epoch(time.perf_counter() - started)

    def sample_probs(self, x: Tensor, num_samples: int) -> Tensor:
        from pyro.infer import Predictive

        predictive = Predictive(self.model, guide=self.guide, num_samples=num_samples, return_sites=["_RETURN"])
        with torch.no_grad():
            return torch.cat([predictive(chunk)["_RETURN"].softmax(-1) for chunk in x.split(PREDICT_CHUNK)], dim=1)


class BayesianTorch:
    """bayesian-torch's layers, trained the way its examples train them."""

    def __init__(self, num_data: int, seed: int = 0, flipout: bool = False):
        from bayesian_torch.layers import LinearFlipout, LinearReparameterization

        torch.manual_seed(seed)
        layer = LinearFlipout if flipout else LinearReparameterization
        options = {"prior_mean": 0.0, "prior_variance": 1.0, "posterior_mu_init": 0.0, "posterior_rho_init": -7.0}
        self.fc1, self.fc2 = layer(784, 1024, **options), layer(1024, 10, **options)
        self.name = f"bayesian-torch 0.5 ({layer.__name__})"
        self.num_data, self.seed = num_data, seed
        self.params = nn.ModuleList([self.fc1, self.fc2])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        hidden, kl1 = self.fc1(x)
        logits, kl2 = self.fc2(torch.relu(hidden))
        return logits, kl1 + kl2

    def fit(self, train_set: ImageSet, epochs: int, batch_size: int, on_epoch: Callable[[float], None]) -> None:
        def loss_of(x: Tensor, y: Tensor) -> Tensor:
            logits, kl = self.forward(x)
            return nn.functional.cross_entropy(logits, y) + kl / self.num_data

        _adam_epochs(self.params.parameters(), loss_of, train_set, epochs, batch_size, self.seed, on_epoch)

    def sample_probs(self, x: Tensor, num_samples: int) -> Tensor:
        with torch.no_grad():
            return torch.stack(
                [torch.cat([self.forward(chunk)[0].softmax(-1) for chunk in x.split(PREDICT_CHUNK)]) for _ in range(num_samples)]
            )


class TyXe:
    name = "TyXe 0.0.2 (VariationalBNN, AutoNormal)"

    def __init__(self, num_data: int, seed: int = 0):
        import pyro
        import pyro.distributions as dist
        import tyxe

        pyro.clear_param_store()
        pyro.set_rng_seed(seed)
        net = nn.Sequential(nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 10))
        prior = tyxe.priors.IIDPrior(dist.Normal(torch.tensor(0.0), torch.tensor(1.0)))
        likelihood = tyxe.likelihoods.Categorical(num_data)
        guide = partial(tyxe.guides.AutoNormal, init_scale=1e-3)
        self.bnn = tyxe.VariationalBNN(net, prior, likelihood, guide)
        self.seed = seed

    def fit(self, train_set: ImageSet, epochs: int, batch_size: int, on_epoch: Callable[[float], None]) -> None:
        import pyro

        generator = torch.Generator().manual_seed(self.seed)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(train_set.images, train_set.labels),
            batch_size=batch_size,
            shuffle=True,
            generator=generator,
        )
        clock = [time.perf_counter()]

        def epoch_done(bnn: Any, epoch: int, elbo: float) -> bool:
            on_epoch(time.perf_counter() - clock[0])
            clock[0] = time.perf_counter()
            return False

        self.bnn.fit(loader, pyro.optim.Adam({"lr": PEER_LR}), epochs, callback=epoch_done)

    def sample_probs(self, x: Tensor, num_samples: int) -> Tensor:
        chunks = [
            self.bnn.predict(chunk, num_predictions=num_samples, aggregate=False).softmax(-1) for chunk in x.split(PREDICT_CHUNK)
        ]
        return torch.cat(chunks, dim=1)


class TorchUncertainty:
    """torch-uncertainty's Bayesian layers (``BayesLinear``), its ``ELBOLoss`` and its ``StochasticModel`` predictive."""

    name = "torch-uncertainty 0.13 (BayesLinear, ELBOLoss)"

    def __init__(self, num_data: int, seed: int = 0):
        from torch_uncertainty.layers.bayesian import BayesLinear
        from torch_uncertainty.losses import ELBOLoss
        from torch_uncertainty.methods.stochastic import StochasticModel

        torch.manual_seed(seed)
        prior = {"prior_sigma_1": 1.0, "prior_pi": 1.0}  # a mixture with all its weight on N(0, 1)
        core = nn.Sequential(BayesLinear(784, 1024, **prior), nn.ReLU(), BayesLinear(1024, 10, **prior))
        self.model = StochasticModel(core, num_samples=1)
        # ELBOLoss averages the layers' KL terms (over 2 layers), so 2 / N gives every peer's KL / N.
        self.loss = ELBOLoss(self.model, nn.CrossEntropyLoss(), kl_weight=2 / num_data, num_samples=1)
        self.seed = seed

    def fit(self, train_set: ImageSet, epochs: int, batch_size: int, on_epoch: Callable[[float], None]) -> None:
        self.model.train()
        _adam_epochs(self.model.parameters(), self.loss, train_set, epochs, batch_size, self.seed, on_epoch)

    def sample_probs(self, x: Tensor, num_samples: int) -> Tensor:
        self.model.num_samples = num_samples
        self.model.eval()  # eval_forward: num_samples sampled networks, stacked along the batch
        with torch.no_grad():
            chunks = [self.model(chunk).softmax(-1).view(num_samples, len(chunk), -1) for chunk in x.split(PREDICT_CHUNK)]
        return torch.cat(chunks, dim=1)


CONTENDERS: dict[str, Callable[[int, int], Any]] = {
    "ours": ThisProject,
    "ours-plain": partial(ThisProject, plain=True),
    "pyro": PlainPyro,
    "bayesian-torch": BayesianTorch,
    "bayesian-torch-flipout": partial(BayesianTorch, flipout=True),
    "tyxe": TyXe,
    "torch-uncertainty": TorchUncertainty,
}


def measure(
    key: str,
    train_set: ImageSet,
    test_set: ImageSet,
    ood_sets: dict[str, ImageSet],
    *,
    epochs: int,
    batch_size: int,
    num_samples: int = 100,
    timing_repeats: int = 3,
    seed: int = 0,
) -> dict[str, Any]:
    """Train contender ``key`` and measure it: seconds per epoch and per prediction, accuracy, the median rule, AUROC."""
    torch.manual_seed(seed)
    contender = CONTENDERS[key](len(train_set), seed)
    epoch_seconds: list[float] = []
    contender.fit(train_set, epochs, batch_size, epoch_seconds.append)
    timings = []
    for _ in range(timing_repeats):  # the last repetition's samples serve the MNIST figures too
        started = time.perf_counter()
        mnist = contender.sample_probs(test_set.images, num_samples)
        timings.append(time.perf_counter() - started)
    samples = {"MNIST": mnist} | {name: contender.sample_probs(s.images, num_samples) for name, s in ood_sets.items()}
    refused = {name: float((decide(p, 0.2, 50.0)[0] == -1).float().mean()) for name, p in samples.items()}
    info = {name: mutual_information(p) for name, p in samples.items()}
    mean = samples["MNIST"].mean(0)
    epoch_seconds.sort()
    return {
        "name": contender.name,
        "epochs": epochs,
        "batch_size": batch_size,
        "epoch_seconds": epoch_seconds[len(epoch_seconds) // 2],
        "predict_seconds": sorted(timings)[len(timings) // 2],
        "forced_accuracy": float((mean.argmax(-1) == test_set.labels).float().mean()),
        "refused": refused,
        "auroc_mutual_information": {name: auroc(-info["MNIST"], -info[name]) for name in ood_sets},
        "peak_rss_mib": round(peak_rss_bytes() / 2**20),
    }


def _error_line(err: Exception) -> str:
    """``"TypeName: first line of the message"`` (at most 200 characters of it), for a figure that reports a failure."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0][:200]}" if lines else type(err).__name__


def compile_probe(train_set: ImageSet, steps: int = 30, repeats: int = 3, seed: int = 0) -> dict[str, Any]:
    """``torch.compile`` on the SVI step and on the predictive, against eager, in one process.

    The SVI step compiles :func:`inference.training.minibatch_loss` (Pyro's tracing included) and
    times ``steps`` optimisation steps; the predictive compiles ``BayesianMLP.sampled_logits`` (the
    local path's tensor work) and times 10,000 images x 100 networks. Medians of ``repeats``; the
    compiled figures exclude the first call, which compiles.
    """
    from inference.posterior import iter_predictive_probs
    from inference.training import make_optimizer, minibatch_loss

    trained = TrainedBNN.untrained(BNNConfig(num_data=len(train_set)), seed=seed)
    config = TrainConfig(seed=seed)
    optimizer = make_optimizer(trained, config)
    batches = [
        torch.randint(len(train_set), (config.batch_size,), generator=torch.Generator().manual_seed(i)) for i in range(steps)
    ]

    def svi_steps(loss_fn: Callable[..., Tensor]) -> None:
        for idx in batches:
            loss = loss_fn(trained, train_set.images[idx], train_set.labels[idx], config)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    x = train_set.images[:10_000]

    def predict() -> None:
        for _ in iter_predictive_probs(trained.model, trained.guide, x, 100, "local", seed=seed):
            pass

    figures: dict[str, Any] = {"steps": steps}
    figures["svi_eager"] = median_seconds(lambda: svi_steps(minibatch_loss), repeats)
    try:
        compiled_loss = torch.compile(minibatch_loss)
        started = time.perf_counter()
        svi_steps(compiled_loss)
        figures["svi_compile_first_call"] = time.perf_counter() - started
        figures["svi_compiled"] = median_seconds(lambda: svi_steps(compiled_loss), repeats, warmup=0)
    except Exception as err:  # torch.compile's failures are many and version-dependent: report, do not crash
        figures["svi_error"] = _error_line(err)
    figures["predict_eager"] = median_seconds(predict, repeats)
    eager_logits = trained.model.sampled_logits
    try:
        trained.model.sampled_logits = torch.compile(eager_logits)
        started = time.perf_counter()
        predict()
        figures["predict_compile_first_call"] = time.perf_counter() - started
        figures["predict_compiled"] = median_seconds(predict, repeats, warmup=0)
    except Exception as err:
        figures["predict_error"] = _error_line(err)
    finally:
        trained.model.sampled_logits = eager_logits
    return figures
