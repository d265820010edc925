"""Measure the served page: a bounded load test on loopback, and the page driven in a real browser.

Used by the tests (``tests/inference/web``) and by ``scripts/serve_check.py``, which writes the
figures to the results page and the README's screenshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import math
import shutil
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Where Debian's ``chromium`` package puts the browser.
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def png_bytes(image: Image.Image | np.ndarray) -> bytes:
    """``image`` (a PIL image, or a uint8 array) encoded as PNG, as an upload carries it."""
    out = io.BytesIO()
    (image if isinstance(image, Image.Image) else Image.fromarray(image)).save(out, format="PNG")
    return out.getvalue()


@contextlib.contextmanager
def serve_in_thread(app: Any) -> Iterator[str]:
    """Run ``app`` with uvicorn on a free loopback port in a background thread; yield its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start within 30 s")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextlib.contextmanager
def serve_in_process(checkpoint: str, *flags: str, timeout: float = 120.0) -> Iterator[tuple[str, int]]:
    """Run ``bnn-abstain serve --checkpoint checkpoint *flags`` on a free loopback port; yield (base URL, pid).

    A process of its own, so that its memory can be measured apart from the client's.
    """
    import subprocess
    import sys
    import urllib.request

    with socket.socket() as sock:  # a port free now (the server binds it a moment later)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "inference", "serve", "--checkpoint", checkpoint, "--port", str(port), *flags]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited with status {server.returncode}: {' '.join(command)}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/api/health", timeout=2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {timeout:g} s")
            time.sleep(0.2)
        yield url, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@dataclass
class Request:
    """One request body of the load test and what must come back."""

    name: str
    body: bytes
    status: int
    answer: dict[str, Any] | None = None  # for a good body: the fields the reply must match


def good_request(model: Any, name: str, body: bytes) -> Request:
    """A request with an image ``body``, carrying the fields of the library's answer that the reply must match."""
    from inference.web.app import answer_image, decode_image

    expected = answer_image(model, decode_image(body), 100)
    return Request(name, body, 200, {k: expected[k] for k in ("prediction", "reason", "candidates")})


def digit_requests(model: Any, data_dir: str | None = None, count: int = 12) -> tuple[list[Request], list[Request]]:
    """The traffic tests' bodies: ``count`` MNIST test digits re-rendered on paper, each larger and further off-centre
    than the last, with the library's answers; and three bad bodies (empty, not an image, a truncated PNG)."""
    from inference.data import load_mnist
    from inference.evaluation.sets import on_paper

    digits = load_mnist(False, data_dir).images[:count].reshape(-1, 28, 28).numpy()
    good = []
    for i, digit in enumerate(digits):
        size, offset = 80 + 10 * i, 5 + i
        good.append(
            good_request(model, f"digit {i}", png_bytes(on_paper(digit, size, (size + 60, size + 40), (offset, 2 * offset))))
        )
    bad = [
        Request("empty", b"", 400),
        Request("not an image", b"<html></html>", 415),
        Request("truncated", good[0].body[:300], 400),
    ]
    return good, bad


@dataclass
class LoadResult:
    """What a load test measured."""

    requests: int
    concurrency: int
    seconds: float
    statuses: dict[int, int]
    wrong: list[str] = field(default_factory=list)  # requests whose status or answer differed from the expected
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def percentile_ms(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q))

    def summary(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "concurrency": self.concurrency,
            "seconds": round(self.seconds, 2),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": self.server_errors,
            "wrong": len(self.wrong),
            "p50_ms": round(self.percentile_ms(50), 1),
            "p95_ms": round(self.percentile_ms(95), 1),
            "requests_per_second": round(self.requests / self.seconds, 1),
        }


def load_test(url: str, bodies: list[Request], requests: int = 500, concurrency: int = 8, timeout: float = 120.0) -> LoadResult:
    """POST ``requests`` bodies (cycling through ``bodies``) to ``url/api/predict``, ``concurrency`` at a time.

    Every reply is checked: its status must be the body's, and a good body's answer must match.
    The whole run is bounded by ``timeout`` seconds (``TimeoutError`` past it).
    """
    import httpx

    async def run() -> LoadResult:
        result = LoadResult(requests, concurrency, 0.0, {})
        statuses: Counter[int] = Counter()
        gate = asyncio.Semaphore(concurrency)

        async def one(client: httpx.AsyncClient, i: int) -> None:
            request = bodies[i % len(bodies)]
            async with gate:
                start = time.perf_counter()
                reply = await client.post(f"{url}/api/predict", content=request.body)
                result.latencies_ms.append(1000 * (time.perf_counter() - start))
            statuses[reply.status_code] += 1
            if reply.status_code != request.status:
                result.wrong.append(f"{request.name}: status {reply.status_code}, expected {request.status}")
            elif request.answer is not None:
                got = reply.json()
                if any(got.get(k) != v for k, v in request.answer.items()):
                    result.wrong.append(f"{request.name}: {got.get('answer')!r}, expected {request.answer}")

        start = time.perf_counter()
        async with httpx.AsyncClient(timeout=timeout) as client:
            await asyncio.wait_for(asyncio.gather(*(one(client, i) for i in range(requests))), timeout)
        result.seconds, result.statuses = time.perf_counter() - start, dict(statuses)
        return result

    return asyncio.run(run())


def find_chromium() -> str | None:
    """The system's Chromium (Debian: ``apt-get install chromium``), or None."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    return found or next((p for p in CHROMIUM_PATHS if Path(p).exists()), None)


def draw(page: Any, digit: str) -> None:
    """Draw ``digit`` (its first way in :data:`inference.evaluation.drawings.DIGITS`) on the page's pad with the mouse."""
    from inference.evaluation.drawings import DIGITS

    draw_strokes(page, DIGITS[digit][0])


def draw_strokes(page: Any, drawing: list[list[tuple[float, float]]]) -> None:
    """Draw ``drawing`` (strokes of points in fractions of the pad) on the page's pad with the mouse."""
    box = page.evaluate("document.getElementById('pad').getBoundingClientRect().toJSON()")  # in the mouse's coordinates
    for polyline in drawing:
        points = [(box["x"] + u * box["width"], box["y"] + v * box["height"]) for u, v in polyline]
        page.mouse.move(*points[0])
        page.mouse.down()
        for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
            steps = max(2, int(math.hypot(x1 - x0, y1 - y0) / 8))  # a point every 8 pixels or so, as a hand moves
            for t in np.linspace(0, 1, steps)[1:]:
                page.mouse.move(x0 + t * (x1 - x0), y0 + t * (y1 - y0))
        page.mouse.up()


def drawn_decision(page: Any, drawing: list[list[tuple[float, float]]], timeout_ms: float = 30_000) -> str:
    """Clear the pad, draw ``drawing`` and return the decision the page shows once every stroke's answer is in.

    Only input events and plain ``evaluate`` calls reach the page: Playwright's selectors and waits would put its
    helper script in the page (26 listeners, 1.2 MiB of heap), and :func:`page_metrics` would count it as the page's."""
    answered: list[int] = []
    listener = lambda response: answered.append(1) if "/api/predict?" in response.url else None  # noqa: E731
    page.evaluate("document.getElementById('clear').click()")
    page.on("response", listener)
    try:
        draw_strokes(page, drawing)
        deadline = time.monotonic() + timeout_ms / 1000
        while True:  # the page asks after every stroke; the last answer is the drawing's, shown once no longer busy
            state = page.evaluate("document.getElementById('decision').dataset.state")
            if len(answered) >= len(drawing) and state != "busy":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"after {timeout_ms:.0f} ms the page had {len(answered)} of {len(drawing)} answers, state {state!r}"
                )
            page.wait_for_timeout(20)
    finally:
        page.remove_listener("response", listener)
    return page.evaluate("document.getElementById('decision').textContent").strip()


#: Chromium's own counters for a page (the DevTools protocol's ``Performance.getMetrics``), as reported by :func:`page_metrics`.
PAGE_METRICS = {"JSHeapUsedSize": "js_heap_mib", "Nodes": "dom_nodes", "JSEventListeners": "event_listeners"}


def page_metrics(page: Any) -> dict[str, float]:
    """What ``page`` (Playwright, Chromium) holds after a garbage collection: its JavaScript heap in MiB, its DOM nodes
    and its event listeners. Sampled over many drawings, a leak in the page's script shows as a slope."""
    session = page.context.new_cdp_session(page)
    try:
        session.send("HeapProfiler.collectGarbage")
        session.send("Performance.enable")
        metrics = {m["name"]: m["value"] for m in session.send("Performance.getMetrics")["metrics"]}
    finally:
        session.detach()
    out = {name: metrics[key] for key, name in PAGE_METRICS.items()}
    out["js_heap_mib"] = round(out["js_heap_mib"] / 2**20, 3)
    return out


def decide_after(page: Any, action: Any, timeout_ms: float = 30_000) -> str:
    """Do ``action()`` on the page (draw, upload, click) and return the decision it then shows."""
    page.evaluate("() => { document.getElementById('decision').dataset.state = 'idle'; }")
    action()
    page.wait_for_function(
        "() => !['busy', 'idle'].includes(document.getElementById('decision').dataset.state)", timeout=timeout_ms
    )
    return page.text_content("#decision").strip()
