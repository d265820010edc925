"""Evaluate a trained checkpoint under both rules: ``bnn-abstain evaluate``."""

from inference.commands.evaluate import main

if __name__ == "__main__":
    raise SystemExit(main())
