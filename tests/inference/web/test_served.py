"""The page served by uvicorn on loopback: under a bounded load, and driven in a real browser (Chromium)."""

import os

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from inference.evaluation.serving import (  # noqa: E402
    Request,
    decide_after,
    draw,
    find_chromium,
    load_test,
    png_bytes,
    serve_in_thread,
)
from inference.evaluation.sets import on_paper  # noqa: E402
from inference.web import create_app  # noqa: E402
from inference.web.app import answer_image, decode_image  # noqa: E402
from tests.inference.web.test_app import truncated  # noqa: E402

REQUIRE_BROWSER = os.environ.get("BNN_REQUIRE_BROWSER") == "1"


@pytest.fixture(scope="module")
def server(mnist_model):
    with serve_in_thread(create_app(mnist_model)) as url:
        yield url


@pytest.fixture(scope="module")
def noise_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("uploads") / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (96, 96), dtype=np.uint8)).save(path)
    return path


def test_500_requests_at_concurrency_8_get_no_5xx_and_the_right_answers(server, mnist_model, mnist_test):
    digits = [on_paper(d, 90, (140, 120), (10 + i, 20)) for i, d in enumerate(mnist_test.images[:6].reshape(-1, 28, 28).numpy())]
    good = []
    for i, digit in enumerate(digits):
        body = png_bytes(digit)
        expected = answer_image(mnist_model, decode_image(body), 100)
        good.append(Request(f"digit {i}", body, 200, {k: expected[k] for k in ("prediction", "reason", "candidates")}))
    bad = [Request("empty", b"", 400), Request("text", b"hello", 415), Request("truncated", truncated(), 400)]
    result = load_test(server, good + bad, requests=500, concurrency=8, timeout=300)
    assert result.server_errors == 0 and result.wrong == []
    assert sum(result.statuses.values()) == 500 and result.statuses[200] == sum(i % 9 < 6 for i in range(500))
    print("load test:", result.summary())


@pytest.fixture(scope="module")
def browser():
    chromium = find_chromium()
    if chromium is None:
        why = "no Chromium found (Debian: apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(f"BNN_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(server)
    yield page
    page.close()


def test_an_empty_canvas_asks_for_a_digit(page):
    assert decide_after(page, lambda: page.click("#ask")) == "Draw a digit first"
    assert page.text_content("#reason") == "The canvas is empty."


def test_a_drawn_one_is_answered_with_the_networks_votes(page):
    decision = decide_after(page, lambda: draw(page, "1"))
    assert decision == "1", page.text_content("#reason")
    seen = page.evaluate("() => Array.from(document.getElementById('seen').getContext('2d').getImageData(0, 0, 28, 28).data)")
    assert max(seen) == 255  # the 28x28 input is drawn
    dots = page.evaluate("() => Array.from(document.getElementById('votes').getContext('2d').getImageData(0, 0, 640, 330).data)")
    assert sum(1 for v in dots[3::4] if v) > 1000  # the votes are plotted


def test_an_uploaded_noise_image_gets_i_dont_know(page, noise_png):
    decision = decide_after(page, lambda: page.set_input_files("#upload", str(noise_png)))
    assert decision == "I don't know"
    assert "doesn't look like a digit" in page.text_content("#reason")


def test_a_bad_upload_shows_the_server_s_message(page, tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a PNG at all")
    assert decide_after(page, lambda: page.set_input_files("#upload", str(junk))) == "That upload did not work"
    assert "not an image" in page.text_content("#reason")


def test_a_screenshot_of_an_answer(page, tmp_path):
    decide_after(page, lambda: draw(page, "1"))
    path = tmp_path / "page.png"
    page.screenshot(path=str(path), full_page=True)
    with Image.open(path) as shot:
        assert shot.width == 1000 and shot.height >= 700
