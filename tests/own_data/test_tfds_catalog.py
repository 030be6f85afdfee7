"""Any TFDS catalog dataset by name (not in the registry table), with feature flags and split
slicing, through the same pipelines as own files; data from `tfds.testing.mock_data`."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from reformer_keras.datasets import catalog
from reformer_keras.datasets.sources import DataError
from reformer_keras.datasets import registry
from reformer_keras.training.data_plan import SourcePlan
from reformer_keras.training.loop import TrainConfig


def _plan(scan, task, **cfg):
    return SourcePlan(scan, TrainConfig(task=task, seq_len=16, batch_size=2, **cfg),
                      num_classes=cfg.pop("num_classes", None))


def test_catalog_images_with_slicing_and_labels(tmp_path):
    assert "fashion_mnist" not in registry.DATASETS
    scan = catalog.tfds_source("classifier", "fashion_mnist", str(tmp_path),
                               train_split="train[:50%]", validation_split="train[50%:]")
    assert scan.source.image_size == (28, 28) and scan.source.color_mode == "grayscale"
    assert len(scan.source.class_names) == 10
    with tfds.testing.mock_data(num_examples=8):
        reference = list(tfds.load("fashion_mnist", split="train[:50%]").as_numpy_iterator())
        plan = _plan(scan, "classifier")
        batches = list(plan.dataset("train", training=False, repeat=False, batch_size=2))
    assert plan.info.seq_len == 784 and plan.info.num_classes == 10
    pixels = np.concatenate([b[0].numpy() for b in batches])
    labels = np.concatenate([b[1].numpy() for b in batches])
    np.testing.assert_array_equal(pixels, np.stack([r["image"].reshape(-1) for r in reference]))
    np.testing.assert_array_equal(labels, [r["label"] for r in reference])


def test_catalog_text_feature_and_missing_feature(tmp_path):
    scan = catalog.tfds_source("lm", "imdb_reviews", str(tmp_path), text_feature="text",
                               validation_split="test[:10%]")
    assert scan.source.features == {"text": "text"}
    with tfds.testing.mock_data(num_examples=4):
        plan = _plan(scan, "lm")
        inputs, targets = next(iter(plan.dataset("train", training=True)))
    assert inputs.shape == (2, 16) and np.array_equal(inputs[:, 1:], targets[:, :-1])
    with pytest.raises(DataError, match=r"'imdb_reviews' has no feature 'review' \(features: "
                                        r"label, text\)") as err:
        catalog.tfds_source("lm", "imdb_reviews", str(tmp_path), text_feature="review")
    assert err.value.flag == "text_feature"
    with pytest.raises(DataError, match="neither a reformer_keras dataset nor in the TFDS"):
        catalog.tfds_source("lm", "no_such_dataset_xyz", str(tmp_path))
