"""The drawing page: ``bnn-abstain serve`` (needs the ``serve`` extra: FastAPI and uvicorn)."""

from typing import Any

from inference.web.limits import BODY_TIMEOUT_S, MAX_UPLOAD_BYTES, QUEUE_SIZE

__all__ = ["BODY_TIMEOUT_S", "MAX_UPLOAD_BYTES", "QUEUE_SIZE", "create_app"]


def __getattr__(name: str) -> Any:
    # The app needs FastAPI; the limits (and the command's --help) do not.
    if name == "create_app":
        from inference.web.app import create_app

        return create_app
    raise AttributeError(f"module 'inference.web' has no attribute {name!r}")
