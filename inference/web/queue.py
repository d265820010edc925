"""The page's bounded queue of pending predictions, run one at a time on a worker thread.

One at a time: the predictive seeds its own draws under a forked global RNG, which threads must
not interleave, and one prediction already uses every core through torch's intra-op threads.

Bounded: a request that finds the queue full is told at once to come back later (:class:`QueueFull`,
which the app answers with 503 and ``Retry-After``) instead of waiting behind work it will time out on.
A request whose client leaves before its turn is taken out of the queue and never predicted.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from inference.web.limits import QUEUE_SIZE


class QueueFull(Exception):
    """The queue holds ``capacity`` pending predictions; try again in ``retry_after`` seconds."""

    def __init__(self, depth: int, retry_after: int) -> None:
        super().__init__(f"the server is busy: {depth} predictions are pending; try again in {retry_after} s")
        self.depth, self.retry_after = depth, retry_after


class ClientGone(Exception):
    """The client disconnected before its prediction was made; nobody is left to answer."""


@dataclass
class _Job:
    work: Callable[[], Any]
    future: asyncio.Future[Any]


class PredictionQueue:
    """A FIFO of at most ``capacity`` pending predictions (the running one included), run by one thread.

    ``await queue.run(work, gone)`` queues ``work()`` and returns its result; it raises
    :class:`QueueFull` at once when the queue is full, and :class:`ClientGone` as soon as the
    awaitable ``gone()`` completes (the client disconnected): a job still waiting is then dropped.
    """

    def __init__(self, capacity: int = QUEUE_SIZE) -> None:
        if capacity < 1:
            raise ValueError(f"the queue's capacity must be at least 1, got {capacity}")
        self.capacity = capacity
        self.answered = self.rejected = self.dropped = 0
        self._waiting: deque[_Job] = deque()
        self._running = False
        self._seconds = 0.05  # running mean of a prediction's time, for Retry-After
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        self._wake: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        """Predictions pending now: waiting, plus the one running."""
        return len(self._waiting) + self._running

    @property
    def full(self) -> bool:
        return self.depth >= self.capacity

    def retry_after(self) -> int:
        """Seconds until the queue has likely drained to below its capacity (at least 1)."""
        return max(1, math.ceil(self.depth * self._seconds))

    def stats(self) -> dict[str, int]:
        return {
            "depth": self.depth,
            "capacity": self.capacity,
            "answered": self.answered,
            "rejected": self.rejected,
            "dropped": self.dropped,
        }

    def check(self) -> None:
        """Raise :class:`QueueFull` (and count the rejection) when there is no room."""
        if self.full:
            self.rejected += 1
            raise QueueFull(self.depth, self.retry_after())

    async def run(self, work: Callable[[], Any], gone: Callable[[], Awaitable[Any]]) -> Any:
        """Queue ``work()``; its result, or :class:`QueueFull` / :class:`ClientGone`."""
        self.check()
        loop = asyncio.get_running_loop()
        self._start(loop)
        job = _Job(work, loop.create_future())
        self._waiting.append(job)
        assert self._wake is not None
        self._wake.set()
        gone_task = asyncio.ensure_future(gone())
        try:
            await asyncio.wait({job.future, gone_task}, return_when=asyncio.FIRST_COMPLETED)
            if job.future.done():
                return job.future.result()
            if job in self._waiting:  # its turn had not come: nobody will read the answer
                self._waiting.remove(job)
                self.dropped += 1
            job.future.cancel()
            raise ClientGone
        finally:
            gone_task.cancel()

    def close(self) -> None:
        """Stop the worker; waiting jobs are cancelled."""
        if self._worker is not None:
            self._worker.cancel()
        for job in self._waiting:
            job.future.cancel()
        self._waiting.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        # Started on first use, on the loop that serves the requests (a test client may run several).
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._wake = asyncio.Event()
            self._worker = loop.create_task(self._serve(loop))

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                job = self._waiting.popleft()
                self._running = True
                start = time.perf_counter()
                try:
                    result = await loop.run_in_executor(self._executor, job.work)
                except Exception as err:  # handed to the request that asked
                    if not job.future.done():
                        job.future.set_exception(err)
                else:
                    self.answered += 1
                    if not job.future.done():
                        job.future.set_result(result)
                finally:
                    self._running = False
                    self._seconds = 0.9 * self._seconds + 0.1 * (time.perf_counter() - start)
