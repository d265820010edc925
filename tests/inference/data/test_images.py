"""Image files: a photo stored sideways with an EXIF orientation is read as it is shown."""

import io

import numpy as np
import pytest
from PIL import Image

from inference.data import images, read_image
from inference.data.preprocess import mnist_format
from inference.web.app import decode_image

ORIENTATION = 0x0112  # the EXIF tag


def seven() -> Image.Image:
    """A dark "7" on a light page, taller than wide: no quarter turn of it looks the same."""
    page = np.full((120, 80), 255, dtype=np.uint8)
    page[10:22, 10:70] = 0  # the bar
    for row in range(22, 110):  # the stem, leaning left as it falls
        col = 70 - (row - 22) * 40 // 88
        page[row, col - 6 : col + 6] = 0
    return Image.fromarray(page)


def stored(image: Image.Image, orientation: int, fmt: str) -> bytes:
    """``image`` as a camera stores it: the pixels turned, and the EXIF tag that says how to turn them back."""
    turned = {1: image, 6: image.transpose(Image.Transpose.ROTATE_90), 8: image.transpose(Image.Transpose.ROTATE_270)}
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    out = io.BytesIO()
    turned[orientation].save(out, format=fmt, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize("orientation", [1, 6, 8])
def test_a_file_is_read_upright_whatever_its_exif_orientation(tmp_path, orientation):
    path = tmp_path / "photo.png"
    path.write_bytes(stored(seven(), orientation, "PNG"))
    if orientation != 1:
        assert Image.open(path).size == (120, 80)  # the stored pixels lie sideways
    image = read_image(path)
    assert image.size == (80, 120)
    np.testing.assert_array_equal(np.asarray(image), np.asarray(seven()))


def test_an_upload_is_decoded_upright_and_reads_as_the_upright_digit():
    upright_digit, _ = mnist_format(seven())
    sideways_digit, _ = mnist_format(decode_image(stored(seven(), 6, "JPEG")))
    # JPEG's blocks fall differently on the turned pixels, so the two agree up to its rounding.
    assert np.abs(sideways_digit - upright_digit).mean() < 0.02
    turned_digit, _ = mnist_format(seven().transpose(Image.Transpose.ROTATE_90))
    assert np.abs(turned_digit - upright_digit).mean() > 0.1  # what the network saw before: another shape


def test_a_heic_photo_is_named_as_such_in_the_error(tmp_path, monkeypatch):
    path = tmp_path / "IMG_0001.HEIC"
    path.write_bytes(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(64))  # a HEIF header, no image Pillow reads
    with pytest.raises(ValueError, match="HEIC/HEIF photo that could not be decoded"):
        read_image(path)  # the plugin is there (the dev extra), so the file itself is at fault
    monkeypatch.setattr(images, "HEIF_PLUGIN", False)
    with pytest.raises(ValueError, match=r"HEIC/HEIF photo.*bnn-abstain\[heif\].*convert it to JPEG or PNG"):
        read_image(path)
    other = tmp_path / "notes.png"
    other.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="cannot read") as refused:
        read_image(other)
    assert "HEIC" not in str(refused.value)


def test_a_heic_photo_reads_as_the_same_digit_saved_as_png(tmp_path):
    pytest.importorskip("pillow_heif")
    path = tmp_path / "IMG_0002.HEIC"
    seven().convert("RGB").save(path, format="HEIF", quality=90)
    assert path.read_bytes()[4:12] == b"ftypheic"
    from_heic, has_ink = mnist_format(read_image(path))
    from_png, _ = mnist_format(seven())
    assert has_ink and np.abs(from_heic - from_png).mean() < 0.02  # HEVC's rounding only


def test_a_truncated_heic_photo_is_an_error_naming_the_file(tmp_path):
    pytest.importorskip("pillow_heif")
    whole = io.BytesIO()
    seven().convert("RGB").save(whole, format="HEIF", quality=90)
    path = tmp_path / "cut.heic"
    path.write_bytes(whole.getvalue()[: len(whole.getvalue()) // 2])
    with pytest.raises(ValueError, match="cannot read .*cut.heic.*truncated or corrupt"):
        read_image(path)


def test_the_page_takes_a_heic_upload():
    pytest.importorskip("pillow_heif")
    body = io.BytesIO()
    seven().convert("RGB").save(body, format="HEIF", quality=90)
    from_upload, _ = mnist_format(decode_image(body.getvalue()))
    assert np.abs(from_upload - mnist_format(seven())[0]).mean() < 0.02
