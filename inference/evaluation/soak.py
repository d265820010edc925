"""Overload and soak tests of the served page on loopback: good, bad, slow and vanishing clients.

Each request is one of four kinds:

- ``good``: a digit image; the reply must be 200 with the library's answer, or 503 (busy);
- ``bad``: a body that is no image; its 4xx, or 503 (busy);
- ``slow``: half a body, then nothing: the server must answer 408 after its body timeout;
- ``gone``: a whole body, then the client disconnects without reading the reply.

Requests start on a fixed schedule (open loop, as independent users arrive), or all at once for a
burst. Every request is bounded by a client timeout, so the run is bounded in time; only
127.0.0.1 is ever targeted. Over a long run the server is sampled at a fixed interval (its memory,
open descriptors and threads, and the latency of the answers in each interval), so that a slow leak
shows as a slope. Used by ``tests/inference/web/test_overload.py`` (a short form),
``scripts/serve_check.py`` (minutes, written to the results page) and ``scripts/soak_check.py`` (hours).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import numpy as np

from inference.evaluation.serving import Request

KINDS = ("good", "bad", "slow", "gone")
#: What a slow or vanishing client may get back (``None``: it left before any reply). A good or bad
#: body must get its own :attr:`Request.status`, or 503 (busy).
ALLOWED = {"slow": {408}, "gone": {None}}
#: The soaks' mix of clients (``scripts/serve_check.py`` for minutes, ``scripts/soak_check.py`` for hours).
SOAK_MIX = {"good": 0.5, "bad": 0.2, "slow": 0.05, "gone": 0.25}


@dataclass
class Traffic:
    """What one run of :func:`run_traffic` measured."""

    requests: int
    seconds: float = 0.0
    #: Per kind, each reply's (status, milliseconds); status None: the client left before any reply.
    replies: dict[str, list[tuple[int | None, float]]] = field(default_factory=lambda: {k: [] for k in KINDS})
    wrong: list[str] = field(default_factory=list)  # a reply whose status or answer was not allowed
    unanswered: int = 0  # requests with no reply within the client timeout
    rss_mib: tuple[float, float] | None = None  # the server's RSS before and after
    server: dict[str, Any] = field(default_factory=dict)  # the queue's counters over the run (/api/health), and its depth after
    #: The server sampled every ``trace_every`` seconds (:func:`server_sample`), with each interval's answers to good images.
    trace: list[dict[str, float | None]] = field(default_factory=list)

    def statuses(self) -> Counter[int | None]:
        return Counter(status for replies in self.replies.values() for status, _ in replies)

    @property
    def server_errors(self) -> int:
        """Replies with a 5xx other than 503 (busy, which is the answer under overload)."""
        return sum(n for status, n in self.statuses().items() if status is not None and status >= 500 and status != 503)

    def summary(self) -> dict[str, Any]:
        timed = [(s, ms) for replies in self.replies.values() for s, ms in replies if s is not None]
        answered = [ms for _, ms in timed]
        busy = [ms for s, ms in timed if s == 503]
        out: dict[str, Any] = {
            "requests": self.requests,
            "seconds": round(self.seconds, 1),
            "kinds": {k: len(self.replies[k]) for k in KINDS},
            "statuses": {
                ("no reply read" if s is None else str(s)): n for s, n in sorted(self.statuses().items(), key=lambda x: x[0] or 0)
            },
            "server_errors": self.server_errors,
            "wrong": len(self.wrong),
            "unanswered": self.unanswered,
            "server": self.server,
        }
        for q in (50, 95, 99):
            out[f"p{q}_ms"] = round(float(np.percentile(answered, q)), 1) if answered else None
        out["max_ms"] = round(max(answered), 1) if answered else None
        out["busy_max_ms"] = round(max(busy), 1) if busy else None
        if self.rss_mib is not None:
            out["rss_mib_start"], out["rss_mib_end"] = (round(v, 1) for v in self.rss_mib)
        if self.trace:
            out["trace"] = self.trace
            out["drift"] = {key: drift(self.trace, key) for key in ("rss_mib", "fds", "threads", "p50_ms")}
        return out


def drift(trace: list[dict[str, float | None]], key: str, along: str = "seconds", per: float = 3600.0) -> dict[str, float] | None:
    """The Theil-Sen slope of ``key`` over the trace's second half, after the start-up's allocations have settled, per
    ``per`` units of ``along`` (by default per hour), with its 95% interval; None with fewer than 4 samples there.
    Robust to the odd slow sample. Keys: ``slope`` (per ``per``), ``low`` and ``high``."""
    from scipy.stats import theilslopes

    half = trace[len(trace) // 2 :]
    points = [(row[along], row[key]) for row in half if row.get(key) is not None]
    if len(points) < 4:
        return None
    position, values = np.array(points, dtype=float).T
    slope, _, low, high = theilslopes(values, position, alpha=0.95)
    return {"slope": round(per * slope, 3), "low": round(per * low, 3), "high": round(per * high, 3)}


def server_rss_mib(pid: int) -> float:
    """The resident set size of process ``pid``, in MiB."""
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def server_sample(pid: int) -> dict[str, float]:
    """Process ``pid``'s resident memory (MiB), open file descriptors (sockets included) and threads."""
    import psutil

    process = psutil.Process(pid)
    return {"rss_mib": round(server_rss_mib(pid), 1), "fds": process.num_fds(), "threads": process.num_threads()}


async def exchange(host: str, port: int, method: str, path: str, body: bytes, send: int, then: float) -> tuple[int | None, bytes]:
    """One HTTP/1.1 request on a connection of its own (parsed by h11): its status and body.

    ``send`` of the body's bytes go out, though the request declares all of them. Then the client
    reads the reply for up to ``then`` seconds, or, when ``send`` is the whole body and ``then``
    is negative, waits ``-then`` seconds and leaves without reading (status None).
    """
    import h11

    client = h11.Connection(our_role=h11.CLIENT)
    headers = [("Host", f"{host}:{port}"), ("Content-Length", str(len(body))), ("Connection", "close")]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(client.send(h11.Request(method=method, target=path, headers=headers)))
        if send:
            writer.write(client.send(h11.Data(data=body[:send])))
        if send == len(body):
            writer.write(client.send(h11.EndOfMessage()))
        await writer.drain()
        if then < 0:  # a client that leaves before the reply
            await asyncio.sleep(-then)
            return None, b""

        async def reply() -> tuple[int | None, bytes]:
            status, content = None, bytearray()
            while True:
                event = client.next_event()
                if event is h11.NEED_DATA:
                    client.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.Data):
                    content += event.data
                elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                    return status, bytes(content)

        return await asyncio.wait_for(reply(), then)
    finally:
        writer.close()


def run_traffic(
    url: str,
    good: list[Request],
    bad: list[Request],
    requests: int,
    seconds: float,
    mix: dict[str, float],
    client_timeout: float = 60.0,
    server_pid: int | None = None,
    seed: int = 0,
    trace_every: float = 0.0,
) -> Traffic:
    """Send ``requests`` requests to ``url`` (loopback only) over ``seconds`` (0: all at once).

    ``mix`` weighs the kinds (:data:`KINDS`); ``good`` bodies carry the answer they must get.
    Each request is a client of its own, on its own connection, bounded by ``client_timeout``;
    each starts at its time, so a run of hours holds only the requests in flight.
    Returns what came back, with the server's queue counters and, given ``server_pid``, its RSS,
    and with ``trace_every`` > 0 a sample of the server every ``trace_every`` seconds
    (:attr:`Traffic.trace`: :func:`server_sample` and the interval's answers to good images).
    """
    if trace_every < 0 or (trace_every and not server_pid):
        raise ValueError("trace_every must be 0 (no trace), or positive with a server_pid to sample")
    parts = urlsplit(url)
    if parts.hostname != "127.0.0.1":
        raise ValueError(f"the traffic test targets 127.0.0.1 only, not {parts.hostname!r}")
    host, port = parts.hostname, parts.port or 80
    rng = np.random.default_rng(seed)
    weights = np.array([mix.get(k, 0.0) for k in KINDS], dtype=float)
    kinds = rng.choice(KINDS, size=requests, p=weights / weights.sum())
    leave_after = rng.uniform(0.01, 0.2, size=requests)
    result = Traffic(requests)
    answered_ms: list[float] = []  # good images answered 200 since the last trace sample

    async def one(i: int) -> None:
        kind = str(kinds[i])
        request = bad[i % len(bad)] if kind == "bad" else good[i % len(good)]
        body = request.body
        send, then = {"slow": (len(body) // 2, client_timeout), "gone": (len(body), -leave_after[i])}.get(
            kind, (len(body), client_timeout)
        )
        begin = time.perf_counter()
        try:
            status, content = await exchange(host, port, "POST", "/api/predict", body, send, then)
        except asyncio.TimeoutError:
            result.unanswered += 1
            return
        except (OSError, ValueError) as err:  # refused, reset, or a reply h11 cannot parse
            result.wrong.append(f"{kind} {request.name}: {type(err).__name__}: {err}")
            return
        milliseconds = 1000 * (time.perf_counter() - begin)
        result.replies[kind].append((status, milliseconds))
        if kind == "good" and status == 200:
            answered_ms.append(milliseconds)
        expected = {request.status, 503} if kind in ("good", "bad") else ALLOWED[kind]
        if status not in expected:
            result.wrong.append(f"{kind} {request.name}: status {status}, expected one of {sorted(expected, key=str)}")
        elif kind == "good" and status == 200 and request.answer is not None:
            got = json.loads(content)
            if any(got.get(k) != v for k, v in request.answer.items()):
                result.wrong.append(f"{kind} {request.name}: {got.get('answer')!r}, expected {request.answer}")

    async def health() -> dict[str, Any]:
        status, content = await exchange(host, port, "GET", "/api/health", b"", 0, client_timeout)
        return json.loads(content)["queue"]

    async def sample_every(start: float) -> None:
        assert server_pid is not None
        while True:
            await asyncio.sleep(trace_every)
            latencies = answered_ms[:]
            answered_ms.clear()
            row: dict[str, float | None] = {"seconds": round(time.perf_counter() - start, 1), **server_sample(server_pid)}
            row["answered"] = len(latencies)
            for q in (50, 99):
                row[f"p{q}_ms"] = round(float(np.percentile(latencies, q)), 1) if latencies else None
            result.trace.append(row)

    async def run() -> None:
        rss_start = server_rss_mib(server_pid) if server_pid else None
        before = await health()
        start = time.perf_counter()
        sampler = asyncio.create_task(sample_every(start)) if trace_every else None
        in_flight: set[asyncio.Task[None]] = set()
        failed: list[BaseException] = []

        def finished(task: asyncio.Task[None]) -> None:
            in_flight.discard(task)
            if not task.cancelled() and task.exception() is not None:
                failed.append(task.exception())  # type: ignore[arg-type]

        for i in range(requests):
            await asyncio.sleep(max(0.0, start + i * seconds / requests - time.perf_counter()))
            task = asyncio.create_task(one(i))
            in_flight.add(task)
            task.add_done_callback(finished)
        if in_flight:
            await asyncio.wait_for(asyncio.gather(*in_flight, return_exceptions=True), 2 * client_timeout)
        if failed:  # a fault of the client itself, which must not pass unseen
            raise failed[0]
        result.seconds = time.perf_counter() - start
        if sampler is not None:
            sampler.cancel()
        await asyncio.sleep(0.5)  # let the server notice the last departures before reading its counters
        after = await health()
        result.server = {k: v - before[k] if k in ("answered", "rejected", "dropped") else v for k, v in after.items()}
        if server_pid:
            assert rss_start is not None
            result.rss_mib = (rss_start, server_rss_mib(server_pid))

    asyncio.run(run())
    return result
