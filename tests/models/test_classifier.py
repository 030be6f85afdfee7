"""ReformerClassifier: padding invariance, a separable toy task, bad inputs."""

import keras
import numpy as np
import pytest

from reformer_keras.models import ReformerClassifier


def _clf(**kw):
    config = dict(num_classes=2, vocab_size=20, d_model=16, num_layers=2, num_heads=2, d_ff=32,
                  attention_types=["lsh", "local"], bucket_size=4, num_buckets=4, max_len=32,
                  seed=0)
    config.update(kw)
    return ReformerClassifier(**config)


def test_padding_does_not_change_the_prediction():
    model = _clf()
    rng = np.random.default_rng(0)
    x = rng.integers(2, 20, (3, 13)).astype("int32")
    want = np.asarray(model(x))
    padded = np.concatenate([x, rng.integers(2, 20, (3, 10)).astype("int32")], axis=1)
    mask = np.repeat(np.arange(23)[None] < 13, 3, 0)
    got = np.asarray(model({"token_ids": padded, "padding_mask": mask}))
    np.testing.assert_allclose(got, want, atol=1e-5)
    assert np.abs(np.asarray(model(padded)) - want).max() > 1e-5   # the mask matters
    # Rows with different real lengths in one batch.
    mask2 = np.stack([np.arange(23) < 13, np.arange(23) < 5, np.arange(23) < 23])
    got2 = np.asarray(model({"token_ids": padded, "padding_mask": mask2}))
    np.testing.assert_allclose(got2[1], np.asarray(model(padded[1:2, :5]))[0], atol=1e-5)


def test_fits_a_separable_toy_task():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 32)
    # Class 0 uses tokens 2..9, class 1 tokens 10..17; random real lengths 6..16 of 16.
    x = np.where(labels[:, None] == 0, rng.integers(2, 10, (32, 16)),
                 rng.integers(10, 18, (32, 16)))
    mask = np.arange(16)[None] < rng.integers(6, 17, (32, 1))
    x = np.where(mask, x, 0).astype("int32")
    model = _clf(num_layers=1, attention_types=["full"])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True, metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    hist = model.fit({"token_ids": x, "padding_mask": mask}, labels, batch_size=16, epochs=5,
                     verbose=0).history
    assert hist["accuracy"][-1] == 1.0, hist
    pred = np.asarray(model({"token_ids": x, "padding_mask": mask})).argmax(-1)
    assert (pred == labels).all()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="num_classes"):
        _clf(num_classes=1)
    model = _clf()
    with pytest.raises(ValueError, match="token_ids.*integer"):
        model(np.ones((1, 5), "float32"))
    with pytest.raises(ValueError, match=r"token_ids.*\[0, vocab_size=20\)"):
        model(np.full((1, 5), 20, "int32"))
