"""Padding never influences real positions; any length works; chunked FF and axial positions
equal their dense NumPy definitions."""

import numpy as np
import pytest

from reformer_keras.layers import (AxialPositionalEmbedding, ChunkedFeedForward,
                                   FullSelfAttention, LocalSelfAttention, LSHSelfAttention)


def _x(b, l, d, seed):
    return np.random.default_rng(seed).normal(size=(b, l, d)).astype("float32")


LAYERS = {
    "lsh": lambda causal: LSHSelfAttention(2, 8, bucket_size=8, num_hashes=2, num_buckets=4,
                                           causal=causal, seed=1),
    "lsh_dedup": lambda causal: LSHSelfAttention(2, 8, bucket_size=8, num_hashes=3,
                                                 num_buckets=[2, 2], causal=causal,
                                                 allow_duplicate_attention=False, seed=1),
    "local": lambda causal: LocalSelfAttention(2, 8, chunk_size=8, num_chunks_after=1,
                                               causal=causal, seed=1),
    "full": lambda causal: FullSelfAttention(2, 8, causal=causal, seed=1),
}


@pytest.mark.parametrize("kind", sorted(LAYERS))
@pytest.mark.parametrize("causal", [False, True])
def test_padding_changes_nothing_at_real_positions(kind, causal):
    layer = LAYERS[kind](causal)
    real = _x(2, 37, 16, seed=1)  # 37: not a multiple of the chunk length
    junk = _x(2, 11, 16, seed=2) * 5
    padded = np.concatenate([real, junk], axis=1)
    mask = np.concatenate([np.ones((2, 37), bool), np.zeros((2, 11), bool)], axis=1)
    want = np.asarray(layer(real))
    got = np.asarray(layer(padded, padding_mask=mask))
    np.testing.assert_allclose(got[:, :37], want, atol=1e-5)
    # The junk really is there: without the mask, real outputs change.
    if not causal:
        assert np.abs(np.asarray(layer(padded))[:, :37] - want).max() > 1e-4


@pytest.mark.parametrize("length", [1, 5, 8, 9, 63])
def test_any_length(length):
    x = _x(1, length, 16, seed=3)
    for make in LAYERS.values():
        layer = make(True)
        assert tuple(layer(x).shape) == (1, length, 16)
        assert tuple(layer(x, training=True).shape) == (1, length, 16)


def test_chunked_feed_forward_equals_dense_numpy():
    x = _x(2, 30, 16, seed=4)
    ff = ChunkedFeedForward(24, chunk_size=7, activation="relu")
    got = np.asarray(ff(x))
    w1, b1, w2, b2 = (w.numpy() for w in ff.weights)
    want = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    np.testing.assert_allclose(got, want, atol=1e-5)
    ff_whole = ChunkedFeedForward(24, chunk_size=None, activation="relu")
    ff_whole(x)
    ff_whole.set_weights(ff.get_weights())
    np.testing.assert_allclose(np.asarray(ff_whole(x)), want, atol=1e-5)


def test_chunked_feed_forward_dropout_differs_per_chunk_and_is_reproducible():
    x = np.ones((1, 32, 8), "float32")
    ff = ChunkedFeedForward(64, chunk_size=8, dropout=0.5)
    a = np.asarray(ff(x, training=True, rng=np.array([3, 4], "int32")))
    b = np.asarray(ff(x, training=True, rng=np.array([3, 4], "int32")))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[:, :8] - a[:, 8:16]).max() > 1e-4  # chunks get different masks


def test_axial_positional_embedding_equals_row_major_definition():
    x = np.zeros((2, 29, 12), "float32")
    axial = AxialPositionalEmbedding(axial_shape=(4, 8), axial_dims=(4, 8))
    got = np.asarray(axial(x))
    t0, t1 = (w.numpy() for w in axial.weights)
    want = np.stack([np.concatenate([t0[p // 8], t1[p % 8]]) for p in range(29)])
    np.testing.assert_allclose(got[0], want, atol=1e-7)
    np.testing.assert_allclose(got[1], want, atol=1e-7)
    with pytest.raises(ValueError, match="exceeds"):
        axial(np.zeros((1, 33, 12), "float32"))
    with pytest.raises(ValueError, match="axial_dims"):
        AxialPositionalEmbedding((4, 8), (4, 4))(x)


def test_aligned_length_needs_no_pad_and_no_slice():
    """At a multiple of the chunk length the layers neither pad nor slice: the slice's gradient
    would allocate a zero-filled copy of the whole output in every backward pass."""
    import tensorflow as tf
    from reformer_keras.layers import attention_utils as au
    x = tf.zeros((1, 16, 4))
    assert au.pad_length_to_multiple(x, 8, axis=1) == (x, 0)
    assert au.trim_length(x, 16, axis=1) is x

    def grad_ops(layer, length):
        x = tf.random.stateless_normal((1, length, 16), seed=[1, 2])
        layer(x)

        @tf.function
        def step(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = layer(x, training=True, rng=tf.constant([1, 2]))
            return tape.gradient(y, x)

        graph = step.get_concrete_function(x).graph
        names = [op.type for op in graph.get_operations()]
        for fn in graph._functions.values():  # pylint: disable=protected-access
            names += [node.op for node in fn.definition.node_def]
        return names.count("StridedSliceGrad"), names.count("Pad") + names.count("PadV2")

    for layer in (LSHSelfAttention(2, 8, bucket_size=8, num_hashes=2, seed=1),
                  LocalSelfAttention(2, 8, chunk_size=8, seed=1)):
        aligned = grad_ops(layer, 32)
        unaligned = grad_ops(type(layer).from_config(layer.get_config()), 30)
        assert aligned[0] < unaligned[0] and aligned[1] < unaligned[1], (aligned, unaligned)
