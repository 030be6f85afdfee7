"""Class-conditional digit models for the gallery: training, sampling, judging.

A `ReformerImageGenerator(num_classes=10)` is trained on the real training split of `digits`
(8x8) or `mnist_5k` (28x28), each image put through `transform_images` first (block-average
downsampling, grey levels quantised); the start token 256 + label carries the class. Samples
for class c start from that token; `ImageJudge` (fitted on the same transform of the real
training split, its accuracy measured on the real test split) says which digit each sample is.
"""

import dataclasses
import json
import math
import os
import time

import numpy as np

from reformer_keras.evaluation.image_judge import ImageJudge, transform_images


@dataclasses.dataclass(frozen=True)
class ImageRun:
    """One gallery image model: data transform, model size, schedule and sampling."""

    dataset: str                  # "digits" or "mnist_5k"
    levels: int = 256             # grey levels after quantisation
    factor: int = 1               # downsampling factor
    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 4
    d_ff: int = 256
    attention: str = "full"
    dropout: float = 0.1
    batch_size: int = 32
    steps: int = 1500
    learning_rate: float = 2e-3
    warmup_steps: int = 100
    temperature: float = 1.0
    top_k: int = 0                # 0: no top-k


IMAGE_RUNS = {
    # digits' grey levels are already 17 (0..16 scaled to 0..255): levels=17 is the identity.
    "digits": ImageRun("digits", levels=17, factor=1, steps=1500),
    "mnist_5k": ImageRun("mnist_5k", levels=4, factor=2, steps=1500, temperature=0.8),
}


def load_split(dataset, split):
    """Real images uint8 (N, H, W, 1) and labels int64 (N,) of a split, read with the builders'
    own array loaders (same rows as `tfds.load(dataset, split=split)`)."""
    if dataset == "digits":
        from reformer_keras.datasets import digits  # pylint: disable=import-outside-toplevel
        images, labels = digits.load_arrays()
        rows = slice(0, digits.NUM_TRAIN) if split == "train" else slice(digits.NUM_TRAIN, None)
        return images[rows], labels[rows]
    if dataset == "mnist_5k":
        from reformer_keras.datasets import mnist_5k  # pylint: disable=import-outside-toplevel
        images, labels = mnist_5k.read_csv()
        rows = mnist_5k.split_indices(labels)[split]
        return images[rows], labels[rows]
    raise ValueError(f"unknown image dataset {dataset!r}; expected digits or mnist_5k")


def fit_judge(run, kind="logistic", seed=0):
    """(judge fitted on the transformed real train split, its accuracy on the real test split)."""
    judge = ImageJudge(run.levels, run.factor, kind=kind, seed=seed)
    judge.fit(*load_split(run.dataset, "train"))
    return judge, judge.score(*load_split(run.dataset, "test"))


def build_model(run, image_shape, seed=0):
    from reformer_keras.models import ReformerImageGenerator  # pylint: disable=import-outside-toplevel
    return ReformerImageGenerator(
        image_shape=list(image_shape), d_model=run.d_model, num_layers=run.num_layers,
        num_heads=run.num_heads, d_ff=run.d_ff, num_classes=10,
        attention_types=[run.attention], bucket_size=32, num_hashes=2, dropout=run.dropout,
        seed=seed)


def train_model(run, model_path, max_minutes=30.0, steps=None, seed=0, verbose=2):
    """Trains a class-conditional model on the transformed train split; saves `model_path`.

    Returns (model, record) with steps done, wall seconds and the final training loss."""
    import keras  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.callbacks import StepLimit  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.metrics import WarmupSchedule  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.tf_fused_adam import FusedAdam  # pylint: disable=import-outside-toplevel
    steps = int(steps or run.steps)
    images, labels = load_split(run.dataset, "train")
    images = transform_images(images, run.levels, run.factor)
    keras.utils.set_random_seed(seed)
    model = build_model(run, images.shape[1:], seed=seed)
    token_ids, targets = model.preprocessor(images, labels.astype(np.int32))
    data = (tf.data.Dataset.from_tensor_slices((token_ids, targets))
            .shuffle(len(images), seed=seed, reshuffle_each_iteration=True).repeat()
            .batch(run.batch_size, drop_remainder=True).prefetch(2))
    schedule = WarmupSchedule(run.learning_rate, "cosine", run.warmup_steps, steps)
    model.compile(optimizer=FusedAdam(schedule, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=True)
    per_epoch = min(100, steps)
    limit = StepLimit(steps, max_minutes)
    start = time.perf_counter()
    history = model.fit(data, epochs=math.ceil(steps / per_epoch), steps_per_epoch=per_epoch,
                        callbacks=[limit], verbose=verbose)
    seconds = time.perf_counter() - start
    os.makedirs(os.path.dirname(os.path.abspath(model_path)), exist_ok=True)
    model.save(model_path)
    losses = history.history.get("loss", [float("nan")])
    record = dict(steps=int(model.optimizer.iterations.numpy()), planned_steps=steps,
                  stopped_by=limit.reason, train_seconds=round(seconds, 1),
                  train_loss=round(float(losses[-1]), 4),
                  bits_per_dim=round(float(losses[-1]) / math.log(2), 4))
    save_training_record(model_path, record)
    return model, record


def save_training_record(model_path, record):
    """Writes the training record beside the model (read back with `--reuse`)."""
    with open(model_path + ".json", "w") as f:
        json.dump(record, f)


def training_record(model_path):
    """The record `train_model` wrote beside the model (None if there is none)."""
    if not os.path.exists(model_path + ".json"):
        return None
    with open(model_path + ".json") as f:
        return json.load(f)


def sample_per_class(model, per_class, seed=0, temperature=1.0, top_k=0, batch=100):
    """(images uint8 (10 * per_class, H, W, 1), class ids (10 * per_class,)), class-major."""
    class_ids = np.repeat(np.arange(10), per_class).astype(np.int32)
    out = []
    for i, begin in enumerate(range(0, len(class_ids), batch)):
        chunk = class_ids[begin:begin + batch]
        out.append(model.sample_images(len(chunk), seed=seed + 7919 * i, class_ids=chunk,
                                       temperature=temperature, top_k=top_k or None))
    return np.concatenate(out), class_ids


def judge_model(model, run, judge, per_class=50, seed=0):
    """Samples `per_class` images of every digit and judges them; returns (images, record)."""
    start = time.perf_counter()
    images, class_ids = sample_per_class(model, per_class, seed=seed,
                                         temperature=run.temperature, top_k=run.top_k)
    seconds = time.perf_counter() - start
    verdict = judge.judge(images, class_ids)
    record = dict(judged_accuracy=round(verdict["overall"], 4),
                  per_class={str(c): round(a, 3) for c, a in verdict["per_class"].items()},
                  samples=int(len(images)), sample_seconds=round(seconds, 1),
                  temperature=run.temperature, top_k=run.top_k or None)
    return images, record


def grid_rows(images, class_ids, per_row):
    """The first `per_row` images of each class, one row per class (class-major order)."""
    picks = [np.flatnonzero(class_ids == c)[:per_row] for c in range(10)]
    return images[np.concatenate(picks)]
