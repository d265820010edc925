"""The served page under overload, on loopback: 503 with Retry-After when the queue is full, 408 for
a body that does not arrive, no prediction for a client that left, and a short soak and burst
(``scripts/serve_check.py`` runs the full form)."""

import asyncio
import time
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

import inference.web.app as app_module  # noqa: E402
from inference.evaluation.serving import png_bytes, serve_in_process, serve_in_thread  # noqa: E402
from inference.evaluation.sets import on_paper  # noqa: E402
from inference.evaluation.soak import SOAK_MIX, exchange, run_traffic  # noqa: E402
from inference.web import create_app  # noqa: E402
from inference.web.app import answer_image  # noqa: E402

DIGIT = png_bytes(on_paper(np.tri(28, dtype=np.float32), 90, (140, 120), (20, 10)))


@pytest.fixture
def calls(monkeypatch):
    """Make every prediction take ``delay[0]`` seconds more; yields (delay, calls made)."""
    delay, made = [0.5], []

    def slow(model, image, num_samples):
        made.append(time.perf_counter())
        time.sleep(delay[0])
        return answer_image(model, image, num_samples)

    monkeypatch.setattr(app_module, "answer_image", slow)
    return delay, made


async def post_all(url: str, n: int) -> list[tuple[httpx.Response, float]]:
    async with httpx.AsyncClient(timeout=30) as client:

        async def one():
            start = time.perf_counter()
            reply = await client.post(f"{url}/api/predict", content=DIGIT)
            return reply, time.perf_counter() - start

        return await asyncio.gather(*(one() for _ in range(n)))


def loopback_port(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def test_a_full_queue_gets_503_with_retry_after_at_once(tiny_model, calls):
    with serve_in_thread(create_app(tiny_model, num_samples=10, queue_size=2)) as url:
        replies = asyncio.run(post_all(url, 6))
        health = httpx.get(f"{url}/api/health").json()["queue"]
    assert Counter(r.status_code for r, _ in replies) == {200: 2, 503: 4}
    for reply, seconds in replies:
        if reply.status_code == 503:
            assert seconds < 0.4  # answered at once, not after the queue drains
            assert int(reply.headers["Retry-After"]) >= 1
            assert "busy" in reply.json()["error"] and reply.json()["retry_after"] >= 1
    assert health["rejected"] == 4 and health["answered"] == 2 and health["depth"] == 0


def test_a_body_that_does_not_arrive_gets_408_and_the_server_goes_on(tiny_model):
    with serve_in_thread(create_app(tiny_model, num_samples=10, body_timeout=0.5)) as url:
        start = time.perf_counter()
        status, _ = asyncio.run(exchange("127.0.0.1", loopback_port(url), "POST", "/api/predict", DIGIT, len(DIGIT) // 2, 10))
        seconds = time.perf_counter() - start
        assert httpx.post(f"{url}/api/predict", content=DIGIT).status_code == 200
    assert status == 408 and 0.45 < seconds < 3


def test_clients_that_leave_before_their_turn_are_never_predicted(tiny_model, calls):
    delay, made = calls

    async def scenario(url):
        first = asyncio.ensure_future(post_all(url, 1))
        await asyncio.sleep(0.2)  # the first prediction is running
        leave = [exchange("127.0.0.1", loopback_port(url), "POST", "/api/predict", DIGIT, len(DIGIT), -0.05) for _ in range(3)]
        await asyncio.gather(*leave)
        return await first

    with serve_in_thread(create_app(tiny_model, num_samples=10)) as url:
        [(reply, _)] = asyncio.run(scenario(url))
        time.sleep(0.3)
        health = httpx.get(f"{url}/api/health").json()["queue"]
    assert reply.status_code == 200
    assert len(made) == 1 and health["dropped"] == 3 and health["answered"] == 1 and health["depth"] == 0


@pytest.fixture(scope="module")
def tiny_model():
    from tests.conftest import trained_on_synthetic

    return trained_on_synthetic(num_fit=300, num_held_out=600, hidden_dim=16, num_samples=10, vae_epochs=1)


@pytest.fixture(scope="module")
def served(mnist_model, tmp_path_factory):
    """``bnn-abstain serve`` in a process of its own, with a small queue and a short body timeout."""
    from bnn import save_checkpoint

    checkpoint = save_checkpoint(tmp_path_factory.mktemp("served") / "bnn.pt", mnist_model)
    with serve_in_process(str(checkpoint), "--queue-size", "4", "--body-timeout", "1") as (url, pid):
        yield url, pid


def test_a_short_soak_of_every_kind_of_client_gets_no_5xx_and_the_library_s_answers(served, mixed):
    (url, pid), (good, bad) = served, mixed
    traffic = run_traffic(url, good, bad, 1000, 10.0, SOAK_MIX, server_pid=pid, trace_every=2.0)
    summary = traffic.summary()
    print("soak:", summary)
    assert traffic.wrong == [] and traffic.server_errors == 0 and traffic.unanswered == 0
    assert all(n > 0 for n in summary["kinds"].values())
    assert summary["statuses"]["200"] > 0 and summary["statuses"]["408"] == summary["kinds"]["slow"]
    assert summary["server"]["depth"] == 0 and summary["server"]["dropped"] > 0
    assert summary["rss_mib_end"] > 0
    # The server sampled every 2 s: each sample counts only its own interval's answers to good images.
    trace = summary["trace"]
    assert 4 <= len(trace) <= 6 and [row["seconds"] for row in trace] == sorted(row["seconds"] for row in trace)
    assert all(row["rss_mib"] > 0 and row["fds"] > 0 and row["threads"] > 0 for row in trace)
    answered_good = sum(status == 200 for status, _ in traffic.replies["good"])
    assert 0 < sum(row["answered"] for row in trace) <= answered_good
    assert all((row["p50_ms"] is None) == (row["answered"] == 0) for row in trace)
    assert set(summary["drift"]) == {"rss_mib", "fds", "threads", "p50_ms"}


def test_a_burst_against_a_small_queue_is_answered_at_once_or_within_the_queue_s_bound(served, mixed):
    (url, pid), (good, bad) = served, mixed
    traffic = run_traffic(url, good, bad, 400, 0.0, {"good": 1.0}, client_timeout=30, server_pid=pid)
    summary = traffic.summary()
    print("burst:", summary)
    assert traffic.wrong == [] and traffic.server_errors == 0 and traffic.unanswered == 0
    assert summary["statuses"]["503"] > 0 and summary["statuses"]["200"] >= 4
    assert summary["max_ms"] < 20_000  # nobody waits without limit (the client's own timeout is 30 s)
    assert summary["server"]["rejected"] == summary["statuses"]["503"]
