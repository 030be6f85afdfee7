"""`ChunkedFeedForward` with the TensorFlow chunk-wise backward (`tf_chunked_recompute`) against
plain backprop: the whole-sequence layer, and the `keras.ops.map` loop with dropout."""

import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import ChunkedFeedForward


def _layers(dropout=0.0):
    chunked = ChunkedFeedForward(24, chunk_size=7, dropout=dropout, seed=1, chunked_backward=True)
    reference = ChunkedFeedForward(24, chunk_size=None if not dropout else 7, dropout=dropout,
                                   seed=1)
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 30, 16)), tf.float32)
    chunked(x)
    reference(x)
    reference.set_weights(chunked.get_weights())
    return chunked, reference, x


def _grads(layer, x, mode, map_path=False):
    w_out = tf.constant(np.random.default_rng(1).normal(size=(2, 30, 16)), tf.float32)
    rng = tf.constant([3, 4], tf.int32)

    def f(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True, rng=rng)
            loss = tf.reduce_sum(y * w_out)
        return [y] + tape.gradient(loss, [x] + [w.value for w in layer.trainable_weights])

    if mode != "eager":
        f = tf.function(f, jit_compile=mode == "xla")
    if not map_path:
        return f(x)
    layer.chunked_backward = False  # the ops.map loop, differentiated automatically
    try:
        return f(x)
    finally:
        layer.chunked_backward = True


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_gradients_equal_whole_sequence_backprop(mode):
    chunked, whole, x = _layers()
    for got, want in zip(_grads(chunked, x, mode), _grads(whole, x, mode)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gradients_with_dropout_equal_the_map_loop():
    """Same dropout masks per chunk (keyed by chunk index) as the plain loop, in both passes."""
    chunked, looped, x = _layers(dropout=0.4)
    for got, want in zip(_grads(chunked, x, "graph"), _grads(looped, x, "graph", map_path=True)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_stateless_call_weights_get_gradients():
    """Inside reversible blocks the layer runs through `stateless_call`, its weights tensors:
    they must still receive gradients (a custom gradient ignores tensors it closes over)."""
    chunked, whole, x = _layers()
    values = [tf.identity(w.value) for w in chunked.trainable_weights]
    with tf.GradientTape() as tape:
        tape.watch(values)
        y, _ = chunked.stateless_call(
            values, [w.value for w in chunked.non_trainable_variables], x)
        loss = tf.reduce_sum(tf.square(y))
    got = tape.gradient(loss, values)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(whole(x)))
    want = tape.gradient(loss, whole.trainable_weights)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


def _op_types(fn, x):
    return {op.type for op in tf.function(fn).get_concrete_function(x).graph.get_operations()}


def test_chunk_loop_without_a_tape_whole_sequence_under_one():
    """Without dropout and the chunk-wise backward, the layer chunks only when no gradient is
    taken (autodiff of the loop would stack every chunk's activations anyway): the forward
    alone loops over chunks, a taped call runs the whole sequence. Values and gradients of both
    equal the unchunked layer's."""
    layer = ChunkedFeedForward(24, chunk_size=7, seed=1)
    whole = ChunkedFeedForward(24, chunk_size=None, seed=1)
    x = tf.constant(np.random.default_rng(0).normal(size=(2, 30, 16)), tf.float32)
    layer(x)
    whole(x)
    whole.set_weights(layer.get_weights())

    def taped(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(layer(x, training=True)))
        return tape.gradient(loss, [x] + [w.value for w in layer.trainable_weights])

    assert {"While", "StatelessWhile"} & _op_types(lambda x: layer(x, training=True), x)
    assert not {"While", "StatelessWhile"} & _op_types(taped, x)
    np.testing.assert_allclose(tf.function(layer)(x), whole(x), rtol=1e-5, atol=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(tf.sin(whole(x, training=True)))
    want = tape.gradient(loss, [x] + [w.value for w in whole.trainable_weights])
    for got, ref in zip(tf.function(taped)(x), want):
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_map_loop_gradient_equals_whole_sequence(monkeypatch):
    """The differentiated chunk loop itself (what a gradient through the loop would be without
    the whole-sequence shortcut) still matches plain backprop."""
    monkeypatch.setattr(ChunkedFeedForward, "_whole_for_gradient", lambda self, training: False)
    chunked, whole, x = _layers()
    for got, want in zip(_grads(chunked, x, "graph", map_path=True), _grads(whole, x, "graph")):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
