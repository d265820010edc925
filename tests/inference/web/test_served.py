"""The page served by uvicorn on loopback: under a bounded load, and driven in a real browser (Chromium)."""

import base64

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from inference.evaluation.drawings import DIGITS  # noqa: E402
from inference.evaluation.serving import (  # noqa: E402
    decide_after,
    draw,
    drawn_decision,
    load_test,
    page_metrics,
    serve_in_thread,
)
from inference.web import create_app  # noqa: E402
from inference.web.app import answer_image, decode_image  # noqa: E402
from tests.conftest import need_chromium  # noqa: E402


@pytest.fixture(scope="module")
def server(mnist_model):
    with serve_in_thread(create_app(mnist_model)) as url:
        yield url


@pytest.fixture(scope="module")
def noise_png(tmp_path_factory):
    path = tmp_path_factory.mktemp("uploads") / "noise.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (96, 96), dtype=np.uint8)).save(path)
    return path


def test_500_requests_at_concurrency_8_get_no_5xx_and_the_right_answers(server, mixed):
    good, bad = mixed
    result = load_test(server, good + bad, requests=500, concurrency=8, timeout=300)
    assert result.server_errors == 0 and result.wrong == []
    assert sum(result.statuses.values()) == 500 and result.statuses[200] == sum(i % 9 < 6 for i in range(500))
    print("load test:", result.summary())


@pytest.fixture(scope="module")
def browser():
    chromium = need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
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


def test_drawing_again_and_again_leaves_nothing_behind_in_the_page(page):
    """A page left open and drawn on for hours: after the first drawings have set up what the page keeps, each further
    drawing must add no DOM node or event listener and retain less than one pad-sized image (280x280 RGBA, 0.3 MiB)."""
    seven = DIGITS["7"][0]  # drawn last before each reading, so that the page shows the same answer both times
    for i in range(4):
        drawn_decision(page, DIGITS[str(i)][0])
    drawn_decision(page, seven)
    before = page_metrics(page)
    for i in range(4, 10):
        drawn_decision(page, DIGITS[str(i)][0])
    drawn_decision(page, seven)
    after = page_metrics(page)
    assert before["js_heap_mib"] > 0 and before["dom_nodes"] > 0 and before["event_listeners"] > 0
    assert after["dom_nodes"] == before["dom_nodes"] and after["event_listeners"] == before["event_listeners"]
    assert after["js_heap_mib"] - before["js_heap_mib"] < 280 * 280 * 4 / 2**20


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


RECORD_DECISIONS = """() => {
  const decision = document.getElementById("decision");
  window.shown = [];
  new MutationObserver(() => window.shown.push([decision.textContent, decision.dataset.state]))
    .observe(decision, { childList: true, characterData: true, subtree: true, attributes: true });
}"""


def draw_and_watch(page, strokes):
    """Draw ``strokes`` on the page: the decision it settles on, each (text, state) it showed from the first
    stroke on, the requests it sent, and the drawing as a PNG."""
    sent = []
    page.on("request", lambda r: sent.append(r.url) if "/api/predict" in r.url else None)
    page.click("#clear")
    page.evaluate(RECORD_DECISIONS)
    final = drawn_decision(page, strokes)
    shown = page.evaluate("() => window.shown")
    first_stroke = next(i for i, (text, _) in enumerate(shown) if text == "Thinking…")
    png = base64.b64decode(page.evaluate("() => document.getElementById('pad').toDataURL('image/png')").split(",")[1])
    return final, shown[first_stroke:], sent, png


def decision_text(answer: dict) -> str:
    """What the page shows for the server's ``answer`` (as its render() does)."""
    if answer["reason"] == "no ink":
        return "Draw a digit first"
    return "I don't know" if answer["prediction"] is None else answer["answer"]


@pytest.fixture
def slowed_page(browser, mnist_model, monkeypatch):
    """The page on a server whose every prediction takes a second longer."""
    import time

    import inference.web.app as app_module

    def slow(model, image, num_samples):
        time.sleep(1.0)
        return answer_image(model, image, num_samples)

    monkeypatch.setattr(app_module, "answer_image", slow)
    with serve_in_thread(create_app(mnist_model)) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(url)
        yield page
        page.close()


def test_a_slow_server_never_shows_the_first_stroke_s_answer_to_a_two_stroke_digit(slowed_page, mnist_model):
    final, shown, sent, drawing = draw_and_watch(slowed_page, DIGITS["4"][0])
    assert len(sent) == 2  # one request per stroke
    assert final == decision_text(answer_image(mnist_model, decode_image(drawing), 100))
    answers = [text for text, state in shown if state != "busy"]
    assert set(answers) == {final}, shown  # until the newest answer came, the page said it was thinking


@pytest.fixture
def late_first_page(browser, mnist_model):
    """The page on a server that holds back its first answer for two seconds, so answers arrive out of order."""
    import asyncio

    app, held = create_app(mnist_model), []

    @app.middleware("http")
    async def hold_the_first_answer(request, call_next):
        response = await call_next(request)
        if request.url.path == "/api/predict" and not held:
            held.append(request.query_params.get("sequence"))
            await asyncio.sleep(2.0)
        return response

    with serve_in_thread(app) as url:
        page = browser.new_page(viewport={"width": 1000, "height": 900})
        page.goto(url)
        yield page, held
        page.close()


def test_an_answer_older_than_the_drawing_is_ignored_when_it_arrives_last(late_first_page, mnist_model):
    page, held = late_first_page
    final, _, sent, drawing = draw_and_watch(page, DIGITS["4"][0])  # returns once both answers are in
    expected = decision_text(answer_image(mnist_model, decode_image(drawing), 100))
    assert len(sent) == 2 and held == [sent[0].rsplit("=", 1)[1]] and final == expected
    page.wait_for_timeout(300)
    assert page.text_content("#decision").strip() == expected  # the late first-stroke answer changed nothing
    shown_after = [text for text, state in page.evaluate("() => window.shown") if state in ("answered", "refused")]
    assert set(shown_after) <= {expected, "Draw a digit"}, shown_after
