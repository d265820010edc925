"""The drawing page: ``bnn-abstain serve`` (needs the ``serve`` extra: FastAPI and uvicorn)."""

from inference.web.app import MAX_UPLOAD_BYTES, create_app

__all__ = ["MAX_UPLOAD_BYTES", "create_app"]
