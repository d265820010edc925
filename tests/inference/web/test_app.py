"""The page's HTTP API: answers match the library's, and every bad upload gets a 4xx with a message."""

import io

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from inference import predict_with_abstain  # noqa: E402
from inference.evaluation.serving import png_bytes  # noqa: E402
from inference.web import create_app  # noqa: E402
from inference.web.app import MAX_PIXELS  # noqa: E402


@pytest.fixture(scope="module")
def model():
    from tests.conftest import trained_on_synthetic

    return trained_on_synthetic(num_fit=400, num_held_out=1000, hidden_dim=32, num_samples=20, vae_epochs=2)


@pytest.fixture(scope="module")
def client(model):
    with TestClient(create_app(model, num_samples=20, max_upload_bytes=200_000)) as c:
        yield c


def test_the_page_and_health(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="pad"' in page.text and "/api/predict" in page.text
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["calibrated"] is True
    assert health["queue"]["depth"] == 0 and health["queue"]["capacity"] == 32


def test_an_answer_echoes_the_request_s_sequence_number(client):
    body = png_bytes(np.full((28, 28), 255, dtype=np.uint8))
    assert client.post("/api/predict?sequence=41", content=body).json()["sequence"] == 41
    assert "sequence" not in client.post("/api/predict", content=body).json()
    reply = client.post("/api/predict?sequence=-1", content=body)
    assert reply.status_code == 400 and "non-negative integer" in reply.json()["error"]


def test_the_app_s_limits_must_make_sense(model):
    with pytest.raises(ValueError, match="body_timeout"):
        create_app(model, body_timeout=0)
    with pytest.raises(ValueError, match="at least 1"):
        create_app(model, queue_size=0)


def test_an_answer_is_the_library_s_answer_with_every_network_s_vote(client, model):
    image = np.zeros((28, 28), dtype=np.uint8)
    image.reshape(-1)[70:140] = 255  # a synthetic "1"
    reply = client.post("/api/predict", content=png_bytes(image))
    assert reply.status_code == 200
    data = reply.json()
    direct = predict_with_abstain(model, Image.fromarray(image), num_samples=20, preprocess="mnist")
    assert data["prediction"] == (None if direct.abstained[0] else int(direct.prediction[0]))
    assert data["answer"] == direct.answers()[0] and data["reason"] == direct.reasons()[0]
    assert len(data["votes"]) == 20 and all(len(v) == 10 for v in data["votes"])
    assert np.allclose(np.median(np.array(data["votes"]), axis=0), data["percentile_probs"], atol=1e-3)
    assert len(data["image"]) == 784 and max(data["image"]) == pytest.approx(1.0, abs=0.01)


def test_a_blank_canvas_is_asked_for_a_digit(client):
    data = client.post("/api/predict", content=png_bytes(np.full((280, 280), 255, dtype=np.uint8))).json()
    assert data["prediction"] is None and data["reason"] == "no ink" and "draw or upload a digit" in data["answer"]


def truncated() -> bytes:
    return png_bytes(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8))[:200]


def huge() -> bytes:
    out = io.BytesIO()
    Image.new("1", (8000, 8000)).save(out, format="PNG")  # small on the wire, 64 megapixels decoded
    return out.getvalue()


@pytest.mark.fault("bad uploads to the page")
@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"", 400, "empty"),
        (b"GIF89a but not really", 415, "not an image"),
        (b"%PDF-1.4 a document", 415, "not an image"),
        (truncated(), 400, "truncated or corrupt"),
        (b"\x89PNG" + b"\x00" * 250_000, 413, "larger than 200,000 bytes"),
        (huge(), 413, f"at most {MAX_PIXELS:,} pixels"),
    ],
    ids=["zero bytes", "not an image", "a PDF", "truncated", "too large", "too many pixels"],
)
def test_bad_uploads_get_a_4xx_with_a_message(client, body, status, message):
    reply = client.post("/api/predict", content=body)
    assert reply.status_code == status and message in reply.json()["error"]


def test_a_chunked_upload_is_cut_off_at_the_limit(client):
    def chunks():
        for _ in range(30):
            yield b"\x00" * 10_000

    reply = client.post("/api/predict", content=chunks())  # no Content-Length
    assert reply.status_code == 413
