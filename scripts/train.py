"""Train the Bayesian MLP on MNIST, calibrate its abstention rule and evaluate it: ``bnn-abstain train``."""

from inference.commands.train import main

if __name__ == "__main__":
    raise SystemExit(main())
