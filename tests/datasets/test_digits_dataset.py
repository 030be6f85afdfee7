"""digits: prepared offline, checked against `sklearn.datasets.load_digits()`."""
import collections

import numpy as np
import pytest
import tensorflow_datasets as tfds
from sklearn.datasets import load_digits

import reformer_keras.datasets.builders  # noqa: F401  (registers the builders)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("digits")
    splits, info = tfds.load("digits", data_dir=str(data_dir), with_info=True)
    return {split: list(tfds.as_numpy(ds)) for split, ds in splits.items()}, info


def test_features_and_sizes(loaded):
    examples, info = loaded
    assert info.splits["train"].num_examples == 1500 and info.splits["test"].num_examples == 297
    assert info.features["label"].num_classes == 10
    ex = examples["test"][0]
    assert ex["image"].shape == (8, 8, 1) and ex["image"].dtype == np.uint8
    assert max(int(e["image"].max()) for e in examples["train"]) == 255


def test_matches_sklearn(loaded):
    examples, _ = loaded
    bunch = load_digits()
    assert bunch.images.shape == (1797, 8, 8)
    expected_images = np.round(bunch.images * 255 / 16).astype(np.uint8)
    for split, rows in (("train", range(0, 1500)), ("test", range(1500, 1797))):
        labels = [int(e["label"]) for e in examples[split]]
        images = np.stack([e["image"][..., 0] for e in examples[split]])
        expected = collections.Counter(
            (expected_images[i].tobytes(), int(bunch.target[i])) for i in rows)
        assert collections.Counter(zip((im.tobytes() for im in images), labels)) == expected, split
        # The 0..16 grey level is recovered exactly.
        levels = np.round(images.astype(np.float64) * 16 / 255).astype(np.int64)
        expected_levels = collections.Counter(
            (bunch.images[i].astype(np.int64).tobytes(), int(bunch.target[i])) for i in rows)
        assert collections.Counter(zip((lv.tobytes() for lv in levels), labels)) == expected_levels
