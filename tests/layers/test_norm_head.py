"""The fused final norm + dense head (`tf_norm_head`) against Keras' LayerNormalization and
Dense differentiated by TensorFlow, and inside a causal LM against the two layers."""

import numpy as np
import pytest
import tensorflow as tf

import keras
from reformer_keras.layers import tf_norm_head
from reformer_keras.models import ReformerLM
from reformer_keras.models import causal_lm_task


def _reference_layers(d, v, dtype=None):
    norm = keras.layers.LayerNormalization(epsilon=1e-6, dtype="float32")
    head = keras.layers.Dense(v, dtype=dtype)
    norm.build((None, d))
    head.build((None, d))
    rng = np.random.default_rng(7)
    norm.set_weights([rng.normal(1.0, 0.3, size=d), rng.normal(0.0, 0.3, size=d)])
    head.set_weights([rng.normal(size=(d, v)) * 0.3, rng.normal(size=v)])
    return norm, head


@pytest.mark.parametrize("shape,piece,graph", [((2, 13, 8), 4, False), ((2, 13, 8), 4, True),
                                               ((1, 9, 8), 100, True), ((3, 8), 5, False),
                                               ((2, 12, 8), 4, "xla"), ((2, 13, 8), 4, "xla"),
                                               ((1, 9, 8), 100, "xla")])
def test_values_and_gradients_match_the_keras_layers(shape, piece, graph):
    norm, head = _reference_layers(shape[-1], 5)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(2.0, 3.0, size=shape), tf.float32)
    w = tf.constant(rng.normal(size=shape[:-1] + (5,)), tf.float32)
    variables = [norm.gamma, norm.beta, head.kernel, head.bias]

    def run(fn):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = fn(x)
            loss = tf.reduce_sum(out * w) + tf.reduce_sum(tf.square(out))
        return [out] + tape.gradient(loss, [x] + [v.value for v in variables])

    def fused(x):
        return tf_norm_head.norm_dense(x, norm.gamma, norm.beta, head.kernel, head.bias,
                                       norm.epsilon, piece=piece)

    got = run(tf.function(fused, jit_compile=graph == "xla") if graph else fused)
    want = run(lambda x: head(norm(x)))
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=2e-5, atol=2e-5)


def test_mixed_precision_head_matmul():
    """compute_dtype float16: the head's matmul in half precision, as a mixed Dense does."""
    norm, head = _reference_layers(8, 6, dtype="mixed_float16")
    x = tf.constant(np.random.default_rng(1).normal(size=(2, 10, 8)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        got = tf_norm_head.norm_dense(x, norm.gamma, norm.beta, head.kernel, head.bias,
                                      norm.epsilon, "float16", piece=3)
        loss = tf.reduce_sum(got * got)
    d_got = tape.gradient(loss, [x, head.kernel.value])
    with tf.GradientTape() as tape:
        tape.watch(x)
        want = tf.cast(head(norm(x)), tf.float32)
        loss = tf.reduce_sum(want * want)
    d_want = tape.gradient(loss, [x, head.kernel.value])
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got, want, rtol=1e-2, atol=1e-2)
    for g, r in zip(d_got, d_want):
        np.testing.assert_allclose(g, tf.cast(r, tf.float32), rtol=2e-2, atol=5e-2)


def test_language_model_uses_it_and_matches_the_two_layers(monkeypatch):
    """A ReformerLM's logits and training gradients (every variable) with the fused head, in
    pieces of 7 positions, equal those of its final norm and head layers."""
    model = ReformerLM(vocab_size=40, d_model=16, num_layers=2, num_heads=2, d_ff=32,
                       bucket_size=4, max_len=64, seed=1)
    ids = np.random.default_rng(0).integers(0, 40, size=(2, 30)).astype("int32")
    model(ids)
    w = tf.constant(np.random.default_rng(1).normal(size=(2, 30, 40)), tf.float32)
    calls = []
    fused = tf_norm_head.norm_dense

    def in_pieces(*args, **kwargs):
        calls.append(1)
        return fused(*args, **dict(kwargs, piece=7))

    monkeypatch.setattr(tf_norm_head, "norm_dense", in_pieces)

    @tf.function
    def run():
        with tf.GradientTape() as tape:
            out = model(ids, training=True, rng=tf.constant([1, 2]))
            loss = tf.reduce_sum(out * w)
        grads = tape.gradient(loss, [v.value for v in model.trainable_weights])
        return [out] + [tf.convert_to_tensor(g) for g in grads]

    got = run()
    assert calls, "the model did not take the fused path"
    previous = causal_lm_task.set_fused_head(False)
    try:
        want = tf.function(run.python_function)()
    finally:
        causal_lm_task.set_fused_head(previous)
    assert len(calls) == 1
    for g, r in zip(got, want):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-5)


def test_piece_sizes_are_static_and_equal_when_the_row_count_is_known():
    assert tf_norm_head._piece_size(None, 8) == 8          # pylint: disable=protected-access
    assert tf_norm_head._piece_size(6, 8) == 8             # pylint: disable=protected-access
    for rows, piece in [(60, 7), (131072, 8192), (592, 100), (97, 10)]:
        size = tf_norm_head._piece_size(rows, piece)      # pylint: disable=protected-access
        assert rows % size == 0 and (size <= piece or size == rows)
