"""The accelerator paths on the CPU: XLA (`jit_compile`) and mixed precision, in training and
generation, each against the float32 eager run of the same weights (docs/gpu.md)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.generation import generate
from reformer_keras.models import ReformerLM

VOCAB = 32
# num_buckets=1: LSH without random rotations (shared-QK attention over chunk windows), so that
# XLA's stateless random kernels, which differ from TensorFlow's, cannot change the hashing.
CONFIG = dict(vocab_size=VOCAB, d_model=32, num_layers=2, num_heads=2, d_ff=64,
              attention_types=("lsh", "local"), bucket_size=8, num_hashes=2, num_buckets=1,
              ff_chunk_size=16, max_len=64, seed=3)


@pytest.fixture(autouse=True)
def _float32_policy():
    yield
    keras.config.set_dtype_policy("float32")


def _batch(seed=0):
    data = np.random.default_rng(seed).integers(0, VOCAB, size=(4, 49)).astype("int32")
    return data[:, :-1], data[:, 1:]


def _train(policy="float32", jit_compile=False, weights=None, steps=2):
    """Losses and final weights of `steps` Adam steps of a fresh model from `weights`."""
    keras.config.set_dtype_policy(policy)
    model = ReformerLM(**CONFIG)
    x, y = _batch()
    model(x[:1])
    if weights is not None:
        model.set_weights(weights)
    start = [w.copy() for w in model.get_weights()]
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    losses = [float(model.train_on_batch(x, y)) for _ in range(steps)]
    keras.config.set_dtype_policy("float32")
    return model, start, losses, model.get_weights()


def test_xla_train_steps_match_eager():
    _, start, eager_losses, eager = _train()
    model, _, xla_losses, xla = _train(jit_compile=True, weights=start)
    assert model.jit_compile
    np.testing.assert_allclose(xla_losses, eager_losses, rtol=1e-5)
    for a, b in zip(xla, eager):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_mixed_bfloat16_train_steps_close_to_float32():
    _, start, ref_losses, ref = _train()
    model, _, losses, weights = _train("mixed_bfloat16", weights=start)
    assert model.backbone.stack.blocks[0][0].compute_dtype == "bfloat16"
    # bfloat16 keeps 8 significant bits: the loss within 1 %; Adam's first steps move every
    # weight by about the learning rate, so the updates agree in sign where they are large.
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-2)
    moved = [np.abs(w - s) for w, s in zip(ref, start)]
    for w, r, s, m in zip(weights, ref, start, moved):
        big = m > 5e-3
        assert np.mean(np.sign(w - s)[big] == np.sign(r - s)[big]) > 0.95


def test_mixed_float16_uses_loss_scaling_and_stays_close_to_float32():
    _, start, ref_losses, _ = _train()
    model, _, losses, weights = _train("mixed_float16", weights=start, steps=3)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert all(np.all(np.isfinite(w)) for w in weights)
    np.testing.assert_allclose(losses[:2], ref_losses, rtol=5e-3)


def _generation_model(policy="float32", weights=None):
    keras.config.set_dtype_policy(policy)
    model = ReformerLM(**CONFIG)
    model(_batch()[0][:1])
    if weights is not None:
        model.set_weights(weights)
    keras.config.set_dtype_policy("float32")
    return model


def test_xla_generation_equals_eager():
    model = _generation_model()
    prompt = _batch(seed=1)[0][:2, :5]
    eager = np.asarray(generate(model, prompt, 12, temperature=0.0))
    xla = tf.function(lambda p: generate(model, p, 12, temperature=0.0), jit_compile=True)
    np.testing.assert_array_equal(np.asarray(xla(tf.constant(prompt))), eager)


def test_generation_under_mixed_precision_equals_float32():
    """Cached decoding computes in float32 whatever the policy: same tokens as float32."""
    ref = _generation_model()
    mixed = _generation_model("mixed_bfloat16", weights=ref.get_weights())
    prompt = _batch(seed=2)[0][:2, :5]
    np.testing.assert_array_equal(
        np.asarray(generate(mixed, prompt, 12, temperature=0.0)),
        np.asarray(generate(ref, prompt, 12, temperature=0.0)))
