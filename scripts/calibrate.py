"""Calibrate a trained checkpoint's abstention rule on its held-out digits: ``bnn-abstain calibrate``."""

from inference.commands.calibrate import main

if __name__ == "__main__":
    raise SystemExit(main())
