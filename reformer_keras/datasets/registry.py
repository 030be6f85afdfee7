"""The dataset registry: name -> modality, feature keys, splits; which task reads which modality.

Pure Python (no TensorFlow), so the trainers validate `--task` / `--dataset` before importing
TensorFlow. `reformer_keras.datasets.pipelines` builds the tf.data pipelines from these entries;
`reformer_keras.datasets.builders` registers this package's own TFDS builders (`offline=True`).

Modalities (one vocabulary for the registry, the pipelines and the trainers):
  text         documents of text (next-token LM)
  image        images with an optional label (pixel LM or classifier)
  music        MIDI files (event LM)
  translation  (source, target) sentence pairs (seq2seq)
  duplication  the synthetic 0 w 0 w task (LM with the loss on the second copy)
"""
from __future__ import annotations

import dataclasses
import re
from typing import Optional

MODALITIES = ("text", "image", "music", "translation", "duplication")
TASK_MODALITIES = {"lm": ("text", "duplication"), "image": ("image",), "music": ("music",),
                   "seq2seq": ("translation",), "classifier": ("image",)}
IMAGE_VOCAB, IMAGE_START = 257, 256


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """One registry entry. `splits[0]` trains, `splits[1]` evaluates.

    Attributes:
      name: the TFDS name (`tfds.load(name)`).
      modality: one of `MODALITIES`.
      keys: the feature keys the pipeline reads (input first).
      splits: the split names.
      offline: a builder of this package (`reformer_keras.datasets.builders`), prepared from
        files that installed wheels ship (no network).
      packing: "crop" (long documents: random-offset windows) or "pack" (short documents joined).
      image_shape: (H, W, C) of an image dataset, else None.
      features: every feature key of an offline builder's examples (() for catalog datasets).
      supervised_keys: `(input, target)` keys for `as_supervised=True`, or None.
      configs: an offline builder's config names (the first is the default), or ().
    """

    name: str
    modality: str
    keys: tuple
    splits: tuple
    offline: bool = False
    packing: str = "crop"
    image_shape: Optional[tuple] = None
    features: tuple = ()
    supervised_keys: Optional[tuple] = None
    configs: tuple = ()

    def __post_init__(self):
        if self.modality not in MODALITIES:
            raise ValueError(f"dataset {self.name!r}: modality must be one of {MODALITIES}, "
                             f"got {self.modality!r}")


_SPLITS3 = ("train", "validation", "test")
DATASETS = {s.name: s for s in (
    DatasetSpec("tiny_shakespeare", "text", ("text",), _SPLITS3),
    DatasetSpec("pg19", "text", ("book_text",), _SPLITS3),
    DatasetSpec("lm1b", "text", ("text",), ("train", "test"), packing="pack"),
    DatasetSpec("shakespeare_plays", "text", ("text",), _SPLITS3, offline=True,
                features=("text", "title", "genre")),
    DatasetSpec("mnist", "image", ("image", "label"), ("train", "test"), image_shape=(28, 28, 1)),
    DatasetSpec("cifar10", "image", ("image", "label"), ("train", "test"),
                image_shape=(32, 32, 3)),
    DatasetSpec("imagenet_resized/64x64", "image", ("image", "label"), ("train", "validation"),
                image_shape=(64, 64, 3)),
    DatasetSpec("downsampled_imagenet/64x64", "image", ("image",), ("train", "validation"),
                image_shape=(64, 64, 3)),
    DatasetSpec("mnist_5k", "image", ("image", "label"), ("train", "test"), offline=True,
                image_shape=(28, 28, 1), features=("image", "label"),
                supervised_keys=("image", "label")),
    DatasetSpec("digits", "image", ("image", "label"), ("train", "test"), offline=True,
                image_shape=(8, 8, 1), features=("image", "label"),
                supervised_keys=("image", "label")),
    DatasetSpec("groove/full-midionly", "music", ("midi",), _SPLITS3, packing="pack"),
    DatasetSpec("bach_chorales", "music", ("midi",), _SPLITS3, offline=True, packing="pack",
                features=("midi", "bwv", "title", "id", "riemenschneider"),
                configs=("full", "tiny")),
    DatasetSpec("wmt14_translate/de-en", "translation", ("de", "en"), _SPLITS3),
    DatasetSpec("duplication", "duplication", ("tokens", "loss_mask"), ("train", "test"),
                offline=True, features=("tokens", "loss_mask"),
                configs=("w127_v128", "w511_v128", "tiny")),
)}


def base_name(name: str) -> str:
    """"bach_chorales/tiny:1.0.0" -> "bach_chorales" (drops the config and version)."""
    return name.split(":", 1)[0].split("/", 1)[0].strip()


def offline_names():
    """Sorted names of this package's own (offline) datasets."""
    return sorted(n for n, s in DATASETS.items() if s.offline)


def get_spec(name: str, task: Optional[str] = None) -> DatasetSpec:
    """The registry entry of `name` ("duplication/tiny" -> duplication with that config).

    Raises:
      ValueError: unknown dataset, unknown task, or a dataset whose modality the task can't use.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset must be a non-empty string, got {name!r}")
    spec = DATASETS.get(name.split(":")[0])
    if spec is None:
        family = [s for s in DATASETS.values() if base_name(s.name) == base_name(name)]
        if not family:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(DATASETS))}")
        spec = dataclasses.replace(family[0], image_shape=_shape_from_config(name, family[0]))
    if task is not None:
        if task not in TASK_MODALITIES:
            raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_MODALITIES)}")
        if spec.modality not in TASK_MODALITIES[task]:
            ok = sorted(n for n, s in DATASETS.items() if s.modality in TASK_MODALITIES[task])
            raise ValueError(f"dataset {name!r} ({spec.modality}) does not fit task {task!r}; "
                             f"datasets for {task}: {', '.join(ok)}")
        if task == "classifier" and "label" not in spec.keys:
            raise ValueError(f"dataset {name!r} has no labels for task 'classifier'")
    return spec


def _shape_from_config(name, spec):
    match = re.search(r"/(\d+)x(\d+)", name)
    if spec.image_shape is None or not match:
        return spec.image_shape
    return (int(match.group(1)), int(match.group(2)), spec.image_shape[2])
