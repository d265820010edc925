"""A FastAPI app: the drawing page at ``/`` and ``POST /api/predict`` for one image.

FastAPI (on Starlette, run by uvicorn) rather than Gradio: the page is one static file and one
JSON endpoint, so a small framework gives explicit control of what matters here: the request
size limit, a 4xx with a message for every bad upload, and prediction off the event loop.

The model is loaded once. Predictions run one at a time on a worker thread: the predictive
seeds its own draws under a forked global RNG, which threads must not interleave, and one
prediction already uses every core through torch's intra-op threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from PIL import Image, UnidentifiedImageError

from bnn import TrainedBNN
from inference.predictive import predict_with_abstain

#: Largest request body accepted (a phone photo fits; anything larger gets 413).
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
#: Largest image accepted, in pixels (PIL's own bomb check would only warn below twice its limit).
MAX_PIXELS = 40_000_000


class BadUpload(Exception):
    """An upload the page cannot answer: its HTTP status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def decode_image(body: bytes) -> Image.Image:
    """The image in ``body``, fully decoded; :class:`BadUpload` (4xx) for anything else."""
    if not body:
        raise BadUpload(400, "the upload is empty: send a PNG or JPEG image")
    try:
        with Image.open(io.BytesIO(body)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise BadUpload(413, f"the image is {image.width}x{image.height}; at most {MAX_PIXELS:,} pixels")
            image.load()
            return image.copy()
    except UnidentifiedImageError:
        raise BadUpload(415, "this is not an image PIL can read: send a PNG or JPEG") from None
    except Image.DecompressionBombError as err:
        raise BadUpload(413, f"the image is too large: {err}") from None
    except (OSError, SyntaxError, ValueError) as err:  # truncated or corrupt data
        raise BadUpload(400, f"the image could not be decoded (truncated or corrupt?): {err}") from None


def answer_image(model: TrainedBNN, image: Image.Image, num_samples: int) -> dict[str, Any]:
    """What the page shows for one image: the answer, its reason, the 28x28 input and every network's vote."""
    result = predict_with_abstain(model, image, num_samples=num_samples, preprocess="mnist", return_samples=True)
    assert result.images is not None and result.samples is not None
    return {
        **result.records()[0],
        "mode": result.mode,
        "threshold": result.threshold,
        "percentile": result.percentile,
        "percentile_probs": [round(float(v), 4) for v in result.percentile_probs[0]],
        "alpha": result.alpha,
        "image": [round(float(v), 3) for v in result.images[0]],
        # (S, C): each sampled network's probability of each digit.
        "votes": [[round(float(v), 4) for v in row] for row in result.samples[:, 0, :]],
    }


def create_app(model: TrainedBNN, num_samples: int = 100, max_upload_bytes: int = MAX_UPLOAD_BYTES) -> FastAPI:
    """The app serving ``model``: ``GET /`` (the page), ``POST /api/predict`` (image bytes in, JSON out), ``GET /api/health``."""
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        worker.shutdown(wait=False, cancel_futures=True)

    app = FastAPI(title="bnn-abstain", docs_url=None, redoc_url=None, lifespan=lifespan)
    page = files("inference.web").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.exception_handler(BadUpload)
    async def bad_upload(request: Request, err: BadUpload) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "calibrated": model.calibration is not None}

    @app.post("/api/predict")
    async def predict(request: Request) -> dict[str, Any]:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_upload_bytes):
            raise BadUpload(413, f"the upload is larger than {max_upload_bytes:,} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_upload_bytes:  # a chunked upload that declared no length
                raise BadUpload(413, f"the upload is larger than {max_upload_bytes:,} bytes")
        image = decode_image(bytes(body))
        return await asyncio.get_running_loop().run_in_executor(worker, answer_image, model, image, num_samples)

    return app
