import warnings

import pytest
import torch
from PIL import Image

from inference.data import CorruptDatasetError, DatasetNotFoundError, load_mnist, resolve_data_dir
from inference.evaluation.sets import gaussian_noise, load_fashion_mnist, load_image_folder, load_notmnist, uniform_noise
from tests.conftest import need, skip_or_fail


def test_data_dir_from_argument_environment_or_default(monkeypatch, tmp_path):
    monkeypatch.setenv("BNN_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path
    assert resolve_data_dir("elsewhere").name == "elsewhere"
    monkeypatch.delenv("BNN_DATA_DIR")
    assert str(resolve_data_dir()) == "data"


def test_missing_mnist_names_folder_and_files(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_mnist(False, tmp_path, download=False)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    assert "t10k-images-idx3-ubyte" in message and "BNN_DATA_DIR" in message


def test_missing_notmnist_names_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="notMNIST_459/A"):
        load_notmnist(tmp_path)


@pytest.mark.fault("unreadable and zero-byte PNGs among good ones")
def test_image_folder_skips_and_counts_unreadable_files(tmp_path):
    for letter in "AB":
        (tmp_path / letter).mkdir()
        Image.new("L", (28, 28), 200).save(tmp_path / letter / "good.png")
    (tmp_path / "A" / "empty.png").write_bytes(b"")
    (tmp_path / "B" / "garbage.png").write_bytes(b"not a png at all")
    Image.new("RGB", (40, 40), (255, 0, 0)).save(tmp_path / "B" / "big.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = load_image_folder(tmp_path)
    assert len(data) == 3 and len(data.skipped) == 2
    assert any("skipped 2 unreadable" in str(w.message) for w in caught)
    assert data.labels.tolist() == [0, 1, 1]
    assert data.images.shape == (3, 784) and data.images.min() >= 0 and data.images.max() <= 1


@pytest.mark.fault("empty image folder")
def test_empty_image_folder_is_an_error(tmp_path):
    (tmp_path / "A").mkdir()
    with pytest.raises(DatasetNotFoundError, match="no readable images"):
        load_image_folder(tmp_path)


def test_noise_sets_are_seeded_and_in_range():
    a, b = uniform_noise(100, seed=1), uniform_noise(100, seed=1)
    assert torch.equal(a.images, b.images) and a.images.shape == (100, 784)
    g = gaussian_noise(1000, seed=2)
    assert g.images.min() == 0 and g.images.max() == 1  # clipped
    assert not torch.equal(uniform_noise(10, seed=1).images, uniform_noise(10, seed=2).images)


def test_real_mnist_and_notmnist(mnist_test, data_dir):
    assert mnist_test.images.shape == (10_000, 784) and mnist_test.labels.bincount().tolist()[0] == 980
    assert mnist_test.images.min() >= 0 and mnist_test.images.max() == 1
    letters = need(load_notmnist, data_dir)
    assert len(letters) == 459 and letters.skipped == []


@pytest.mark.fault("truncated IDX file")
def test_truncated_idx_file_is_reported_with_its_path_and_checksum(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x27\x10" + bytes(100))  # 10,000 labels promised
    with pytest.raises(CorruptDatasetError, match="t10k-labels-idx1-ubyte .*108 bytes.*truncated, damaged"):
        load_mnist(False, tmp_path, download=False)


@pytest.mark.fault("archive with a wrong checksum")
def test_archive_with_a_wrong_checksum_is_reported(tmp_path):
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b not really gzip")
    with pytest.raises(CorruptDatasetError, match="8d4fb7e6c68d591d4c3dfef9ec88bf0d"):
        load_fashion_mnist(True, tmp_path, download=False)


@pytest.mark.fault("data directory that does not exist")
def test_missing_data_directory_names_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path / "nowhere")):
        load_mnist(True, tmp_path / "nowhere", download=False)


def test_the_shared_files_pass_the_checksums(data_dir):
    from inference.data import verify_raw_files

    for name in ("MNIST", "FashionMNIST"):
        raw = data_dir / name / "raw"
        for train in (True, False):
            checked = verify_raw_files(name, raw, train)
            if not checked:
                skip_or_fail(f"no {name} IDX files in {raw}")
            # Images and labels, at least one form of each (extracted or .gz), were read and matched.
            assert {path.name.split("-")[1] for path in checked} == {"images", "labels"}, checked
