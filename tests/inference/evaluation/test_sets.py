"""The evaluation sets: every loader reads its files as PROVENANCE.md describes them, or says what is missing."""

import pytest
import torch

from inference.data import DatasetNotFoundError
from inference.evaluation.sets import DIGIT_SETS, OOD_SETS, load_emnist_letters, load_kmnist, load_omniglot, load_usps
from tests.conftest import centres_of_mass, need


def _looks_like_mnist(images: torch.Tensor) -> None:
    """White ink on black, in [0, 1], centred by mass near (14, 14) like MNIST's digits."""
    assert images.min() >= 0 and images.max() <= 1
    centre_y = centres_of_mass(images)[:, 0]
    assert images.view(-1, 28, 28)[:, 0].mean() < 0.05 and 12.5 < centre_y.mean() < 15.5


def test_usps_has_the_published_label_counts_and_mnist_s_format(data_dir):
    usps = need(load_usps, data_dir)
    assert len(usps) == 2007 and torch.equal(load_usps(data_dir, limit=5).images, usps.images[:5])
    assert torch.bincount(usps.labels).tolist() == [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]
    _looks_like_mnist(usps.images)


def test_emnist_letters_are_upright_letters_a_to_s(data_dir):
    letters = need(load_emnist_letters, data_dir)
    assert len(letters) == 1479 and (letters.labels == -1).all()
    _looks_like_mnist(letters.images)


def test_kmnist_is_checked_and_complete(data_dir):
    kmnist = need(load_kmnist, data_dir)
    assert len(kmnist) == 10_000 and torch.bincount(kmnist.labels).tolist() == [1000] * 10


def test_omniglot_leaves_out_the_latin_alphabet_and_thick_strokes_carry_more_ink(data_dir):
    thin = need(load_omniglot, data_dir)
    assert len(thin) == 3000  # 800 one-shot images + 2,720 background images less Latin's 520
    _looks_like_mnist(thin.images)
    thick = load_omniglot(data_dir, pen=9, limit=300)  # a limit stops early and keeps the same images
    assert len(thick) == 300 and torch.equal(load_omniglot(data_dir, limit=300).images, thin.images[:300])
    assert thick.images.sum(-1).mean() > 1.3 * thin.images[:300].sum(-1).mean()


#: The sets read from files in the data folder (the noise is generated, the photos come with scikit-image).
FROM_FILES = [name for name in [*OOD_SETS, *DIGIT_SETS] if name not in ("uniform noise", "Gaussian noise", "photos")]


@pytest.mark.parametrize("name", FROM_FILES)
def test_a_missing_set_names_its_folder(name, tmp_path):
    loader = (OOD_SETS | DIGIT_SETS)[name]
    with pytest.raises(DatasetNotFoundError, match=str(tmp_path)):
        loader(str(tmp_path), 10, 10, 0, None)
