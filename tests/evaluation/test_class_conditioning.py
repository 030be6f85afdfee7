"""A tiny class-conditional image model must draw the class it is asked for.

Two synthetic classes of 4x4 images (class 0: top half bright, class 1: bottom half bright,
10 % of the pixels flipped). A `ReformerImageGenerator(num_classes=2)` is trained for a few
seconds; an `ImageJudge` fitted on real examples only judges its samples. If the sampler drops
the class (every row starts from the same token), half the samples are judged wrong.
"""

import keras
import numpy as np
import pytest

from reformer_keras.evaluation import ImageJudge
from reformer_keras.models import ReformerImageGenerator


def synthetic_images(n, seed):
    """uint8 (n, 4, 4, 1) and labels (n,) of the two classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    images = np.zeros((n, 4, 4, 1), np.uint8)
    images[labels == 0, :2] = 255
    images[labels == 1, 2:] = 255
    flips = rng.random(images.shape) < 0.1
    images[flips] = 255 - images[flips]
    return images, labels


@pytest.fixture(scope="module")
def trained():
    keras.utils.set_random_seed(0)
    images, labels = synthetic_images(512, seed=0)
    model = ReformerImageGenerator(image_shape=[4, 4, 1], d_model=32, num_layers=1,
                                   num_heads=2, d_ff=64, num_classes=2,
                                   attention_types=["full"], seed=0)
    token_ids, targets = model.preprocessor(images, labels.astype(np.int32))
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(np.asarray(token_ids), np.asarray(targets), batch_size=32, epochs=6, verbose=0)
    judge = ImageJudge(kind="logistic").fit(*synthetic_images(400, seed=1))
    return model, judge


def test_judge_recognises_real_synthetic_images(trained):
    _, judge = trained
    assert judge.score(*synthetic_images(200, seed=2)) > 0.95


@pytest.mark.parametrize("use_cache", [True, False])
def test_class_conditioned_samples_are_judged_as_their_class(trained, use_cache):
    model, judge = trained
    class_ids = np.repeat(np.arange(2), 16).astype(np.int32)
    samples = model.sample_images(len(class_ids), seed=3, class_ids=class_ids,
                                  use_cache=use_cache)
    verdict = judge.judge(samples, class_ids)
    # chance (class ignored) is 50 %; each class must be drawn, not only one
    assert verdict["overall"] >= 0.9, verdict
    assert min(verdict["per_class"].values()) >= 0.8, verdict
