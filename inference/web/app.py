"""A FastAPI app: the drawing page at ``/`` and ``POST /api/predict`` for one image.

FastAPI (on Starlette, run by uvicorn) rather than Gradio: the page is one static file and one
JSON endpoint, so a small framework gives explicit control of what matters here: the request
size limit, a 4xx with a message for every bad upload, and prediction off the event loop.

The model is loaded once. Predictions wait in a bounded queue and run one at a time
(:mod:`inference.web.queue`); the app answers at once, without predicting, when it cannot help:

- ``503`` with ``Retry-After`` when the queue is full;
- ``408`` when a body has not fully arrived within ``body_timeout`` seconds;
- nothing (the prediction is dropped) when the client disconnects before its turn.

A request may carry ``?sequence=N`` (the page numbers its requests); the answer echoes it, so a
client can tell an answer to an older drawing from the answer to the newest.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator
from importlib.resources import files
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image, UnidentifiedImageError

from bnn import TrainedBNN
from inference.data.images import upright
from inference.predictive import predict_with_abstain
from inference.web.limits import BODY_TIMEOUT_S, MAX_PIXELS, MAX_UPLOAD_BYTES, QUEUE_SIZE
from inference.web.queue import ClientGone, PredictionQueue, QueueFull


class BadUpload(Exception):
    """An upload the page cannot answer: its HTTP status and a message for people."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def decode_image(body: bytes) -> Image.Image:
    """The image in ``body``, fully decoded and upright (:func:`inference.data.images.upright`); :class:`BadUpload`
    (4xx) for anything else."""
    if not body:
        raise BadUpload(400, "the upload is empty: send a PNG or JPEG image")
    try:
        with Image.open(io.BytesIO(body)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise BadUpload(413, f"the image is {image.width}x{image.height}; at most {MAX_PIXELS:,} pixels")
            return upright(image)
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


def create_app(
    model: TrainedBNN,
    num_samples: int = 100,
    max_upload_bytes: int = MAX_UPLOAD_BYTES,
    queue_size: int = QUEUE_SIZE,
    body_timeout: float = BODY_TIMEOUT_S,
) -> FastAPI:
    """The app serving ``model``: ``GET /`` (the page), ``POST /api/predict`` (image bytes in, JSON out), ``GET /api/health``.

    Parameters
    ----------
    model : TrainedBNN
        The model to answer with.
    num_samples : int
        Networks sampled per image.
    max_upload_bytes : int
        Largest request body accepted (413 above it).
    queue_size : int
        Predictions that may be pending at once, the running one included (503 above it).
    body_timeout : float
        Seconds a request body may take to arrive (408 past it).
    """
    if body_timeout <= 0:
        raise ValueError(f"body_timeout must be positive, got {body_timeout}")
    queue = PredictionQueue(queue_size)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        queue.close()

    app = FastAPI(title="bnn-abstain", docs_url=None, redoc_url=None, lifespan=lifespan)
    page = files("inference.web").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.exception_handler(BadUpload)
    async def bad_upload(request: Request, err: BadUpload) -> JSONResponse:
        return JSONResponse({"error": err.message}, status_code=err.status)

    @app.exception_handler(QueueFull)
    async def busy(request: Request, err: QueueFull) -> JSONResponse:
        headers = {"Retry-After": str(err.retry_after)}
        return JSONResponse({"error": str(err), "retry_after": err.retry_after}, status_code=503, headers=headers)

    @app.get("/", response_class=HTMLResponse)
    async def index() -> str:
        return page

    @app.get("/api/health")
    async def health() -> dict[str, Any]:
        return {"status": "ok", "calibrated": model.calibration is not None, "queue": queue.stats()}

    async def read_body(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > max_upload_bytes):
            raise BadUpload(413, f"the upload is larger than {max_upload_bytes:,} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > max_upload_bytes:  # a chunked upload that declared no length
                raise BadUpload(413, f"the upload is larger than {max_upload_bytes:,} bytes")
        return bytes(body)

    async def disconnected(request: Request) -> None:
        # Once the body is read, the server's next message is the disconnect (or the end of the response).
        while (await request.receive())["type"] != "http.disconnect":
            pass

    @app.post("/api/predict")
    async def predict(request: Request) -> Any:
        sequence = request.query_params.get("sequence")
        if sequence is not None and not sequence.isdigit():
            raise BadUpload(400, f"sequence must be a non-negative integer, got {sequence!r}")
        try:
            body = await asyncio.wait_for(read_body(request), body_timeout)
        except asyncio.TimeoutError:
            raise BadUpload(408, f"the upload did not arrive within {body_timeout:g} s") from None
        queue.check()  # a full queue answers at once, before any decoding
        image = await asyncio.get_running_loop().run_in_executor(None, decode_image, body)
        try:
            answer = await queue.run(lambda: answer_image(model, image, num_samples), lambda: disconnected(request))
        except ClientGone:
            return Response(status_code=499)  # nobody reads it; the status is for the logs
        return answer if sequence is None else {**answer, "sequence": int(sequence)}

    return app
