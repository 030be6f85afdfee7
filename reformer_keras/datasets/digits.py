"""`digits`: scikit-learn's 8x8 handwritten digits (UCI optical recognition, 1,797 images).

Source: `sklearn.datasets.load_digits()`, which reads `sklearn/datasets/data/digits.csv.gz`
shipped in the scikit-learn wheel (no download).

Features:
  image: uint8 (8, 8, 1) (tfds Image, PNG-encoded on disk). sklearn's grey levels 0..16 are
         scaled to 0..255 as `np.round(x * 255 / 16)` (0 -> 0, 8 -> 128, 16 -> 255); the
         original level is recovered exactly by `np.round(image.astype(float) * 16 / 255)`.
  label: int64 scalar, ClassLabel(num_classes=10).
Supervised keys: ("image", "label").

Splits (by sklearn's sample order): samples 0..1499 -> train (1,500), 1500..1796 -> test (297).
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

NUM_EXAMPLES = 1797
NUM_TRAIN = 1500

_DESCRIPTION = """\
The 1,797 8x8 handwritten digits of scikit-learn (`sklearn.datasets.load_digits`, a copy of the
test set of the UCI ML "Optical Recognition of Handwritten Digits" dataset), grey levels scaled
from 0..16 to uint8 0..255. Split by sample order: the first 1,500 train, the last 297 test.
"""

_CITATION = """\
@misc{alpaydin1998optical,
  title = {Optical Recognition of Handwritten Digits},
  author = {Alpaydin, E. and Kaynak, C.},
  year = {1998},
  howpublished = {UCI Machine Learning Repository},
  url = {https://archive.ics.uci.edu/ml/datasets/Optical+Recognition+of+Handwritten+Digits}
}
"""


def scale_levels(images: np.ndarray) -> np.ndarray:
    """sklearn's 0..16 grey levels (any shape) -> uint8 0..255, `np.round(x * 255 / 16)`."""
    images = np.asarray(images, np.float64)
    if images.min() < 0 or images.max() > 16:
        raise ValueError("digits grey levels must lie in 0..16")
    return np.round(images * 255.0 / 16.0).astype(np.uint8)


def load_arrays() -> tuple[np.ndarray, np.ndarray]:
    """images uint8 (1797, 8, 8, 1) and labels int64 (1797,), in sklearn's order."""
    from sklearn.datasets import load_digits  # Lazy: importing sklearn takes ~1 s.

    bunch = load_digits()
    images = scale_levels(bunch.images)[..., np.newaxis]
    return images, np.asarray(bunch.target, np.int64)


class Digits(tfds.core.GeneratorBasedBuilder):
    """TFDS builder for scikit-learn's 8x8 digits (see module docstring)."""

    name = "digits"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: sklearn's load_digits, uint8 0..255, 1,500/297."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
            homepage="https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # The data ships with scikit-learn.
        images, labels = load_arrays()
        if len(labels) != NUM_EXAMPLES:
            raise ValueError(f"expected {NUM_EXAMPLES} digits, sklearn has {len(labels)}")
        return {
            "train": self._generate_examples(images, labels, range(0, NUM_TRAIN)),
            "test": self._generate_examples(images, labels, range(NUM_TRAIN, NUM_EXAMPLES)),
        }

    def _generate_examples(self, images, labels, rows):
        for row in rows:
            yield int(row), {"image": images[row], "label": int(labels[row])}
