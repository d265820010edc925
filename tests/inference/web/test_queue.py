"""The page's prediction queue: FIFO and one at a time, bounded, and it drops work nobody waits for."""

import asyncio
import threading
import time

import pytest

from inference.web.queue import ClientGone, PredictionQueue, QueueFull


def never() -> asyncio.Future:
    """A client that never leaves."""
    return asyncio.get_running_loop().create_future()


def test_jobs_run_one_at_a_time_in_the_order_they_came():
    queue, order, running, most = PredictionQueue(8), [], [0], [0]
    lock = threading.Lock()

    def work(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.01)
        order.append(i)
        with lock:
            running[0] -= 1
        return i * i

    async def main():
        return await asyncio.gather(*(queue.run(lambda i=i: work(i), never) for i in range(6)))

    assert asyncio.run(main()) == [0, 1, 4, 9, 16, 25]
    assert order == list(range(6)) and most[0] == 1
    assert queue.stats() == {"depth": 0, "capacity": 8, "answered": 6, "rejected": 0, "dropped": 0}


def test_a_full_queue_refuses_at_once_and_says_when_to_come_back():
    queue, release = PredictionQueue(2), threading.Event()

    async def main():
        held = [asyncio.ensure_future(queue.run(release.wait, never)) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert queue.depth == 2 and queue.full  # one running, one waiting
        start = time.perf_counter()
        with pytest.raises(QueueFull) as refused:
            await queue.run(release.wait, never)
        assert time.perf_counter() - start < 0.05
        release.set()
        await asyncio.gather(*held)
        return refused.value

    refused = asyncio.run(main())
    assert refused.depth == 2 and refused.retry_after >= 1 and "busy" in str(refused)
    assert queue.stats()["rejected"] == 1 and queue.stats()["answered"] == 2 and queue.depth == 0


def test_a_client_that_leaves_before_its_turn_is_dropped_and_never_predicted():
    queue, release, ran = PredictionQueue(8), threading.Event(), []

    async def main():
        first = asyncio.ensure_future(queue.run(release.wait, never))
        await asyncio.sleep(0.05)
        leaves = asyncio.get_running_loop().create_future()
        second = asyncio.ensure_future(queue.run(lambda: ran.append("second"), lambda: leaves))
        await asyncio.sleep(0.05)
        assert queue.depth == 2
        leaves.set_result(None)  # the client disconnects while the first job runs
        with pytest.raises(ClientGone):
            await second
        assert queue.depth == 1
        release.set()
        await first
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert ran == [] and queue.stats()["dropped"] == 1 and queue.stats()["answered"] == 1


def test_a_client_that_leaves_mid_prediction_is_not_counted_as_dropped():
    queue, started, release = PredictionQueue(8), threading.Event(), threading.Event()

    def work():
        started.set()
        release.wait()

    async def main():
        leaves = asyncio.get_running_loop().create_future()
        job = asyncio.ensure_future(queue.run(work, lambda: leaves))
        await asyncio.get_running_loop().run_in_executor(None, started.wait)
        leaves.set_result(None)
        with pytest.raises(ClientGone):
            await job
        release.set()
        await asyncio.sleep(0.05)

    asyncio.run(main())
    assert queue.stats()["dropped"] == 0 and queue.stats()["answered"] == 1


def test_an_error_in_the_work_reaches_the_request_that_asked():
    queue = PredictionQueue(2)

    def broken():
        raise RuntimeError("boom")

    async def main():
        with pytest.raises(RuntimeError, match="boom"):
            await queue.run(broken, never)
        return await queue.run(lambda: "still serving", never)

    assert asyncio.run(main()) == "still serving"


def test_a_queue_needs_room_for_one():
    with pytest.raises(ValueError, match="at least 1"):
        PredictionQueue(0)
