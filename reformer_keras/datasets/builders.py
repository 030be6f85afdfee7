"""Registers this package's TFDS builders: `import reformer_keras.datasets.builders`, then
`tfds.load("shakespeare_plays", data_dir=...)` works (imports tensorflow_datasets).

`reformer_keras.datasets.load` and the pipelines import this module themselves; import it when
calling `tfds.load` / `tfds.builder` directly.
"""
import tensorflow_datasets as tfds  # noqa: F401  (the builders register on class creation)

from reformer_keras.datasets.bach_chorales import BachChorales
from reformer_keras.datasets.digits import Digits
from reformer_keras.datasets.duplication import Duplication
from reformer_keras.datasets.mnist_5k import Mnist5k
from reformer_keras.datasets.shakespeare_plays import ShakespearePlays

BUILDERS = {cls.name: cls for cls in (ShakespearePlays, BachChorales, Mnist5k, Digits,
                                      Duplication)}

__all__ = ["BUILDERS", "BachChorales", "Digits", "Duplication", "Mnist5k", "ShakespearePlays"]
