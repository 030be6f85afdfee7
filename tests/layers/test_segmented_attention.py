"""`fused_attention` in pieces along a batch axis (`tf_segmented_attention`) and the LSH layer's
`query_chunk_len`, against the whole computation and automatic differentiation."""

import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import LSHSelfAttention
from reformer_keras.layers import attention_utils as au


def _inputs(seed=0, chunks=7):
    """Chunked-attention shaped inputs: (B, nc, C, dh) queries, (B, nc, 2C, dh) key windows."""
    rng = np.random.default_rng(seed)
    q = tf.constant(rng.normal(size=(2, chunks, 4, 8)), tf.float32)
    k = tf.constant(rng.normal(size=(2, chunks, 8, 8)), tf.float32)
    v = tf.constant(rng.normal(size=(2, chunks, 8, 8)), tf.float32)
    q_pos = tf.reshape(tf.range(chunks * 4), (1, chunks, 4)) + tf.zeros((2, 1, 1), tf.int32)
    k_pos = tf.concat([q_pos - 4, q_pos], axis=-1)
    k_valid = k_pos >= 0
    bias = tf.constant(rng.normal(size=(2, chunks, 4, 8)), tf.float32)
    return q, k, v, q_pos, k_pos, k_valid, bias


def _values_and_grads(fn, q, k, v, w_out, w_lse):
    """[out, lse, d_q, d_k, d_v] of fn(q, k, v) -> (out, lse) under a weighted-sum loss."""
    with tf.GradientTape() as tape:
        tape.watch([q, k, v])
        out, lse = fn(q, k, v)
        loss = tf.reduce_sum(out * w_out) + tf.reduce_sum(lse * w_lse)
    return [out, lse] + tape.gradient(loss, [q, k, v])


def _reference(q, k, v, q_pos, k_pos, k_valid, bias, segment, rate):
    """Plain ops, piece by piece, with the same per-piece dropout: autodiff-able."""
    outs, lses = [], []
    for i, start in enumerate(range(0, q.shape[1], segment)):
        part = lambda t: t[:, start:start + segment]
        drop = (lambda x, i=i: au.dropout(x, rate, tf.constant([3, 4]), 5 * 7919 + 1 + i)
                ) if rate else None
        masks = au.attention_masks(part(q_pos), part(k_pos), part(k_valid), True, True)
        out, lse = au.attention_forward(part(q), part(k), part(v), masks, part(bias), drop)
        outs.append(out)
        lses.append(lse[..., 0])
    return tf.concat(outs, 1), tf.concat(lses, 1)


@pytest.mark.parametrize("segment,rate,graph", [(2, 0.0, False), (3, 0.0, True), (7, 0.0, True),
                                                (3, 0.3, True), (1, 0.3, False)])
def test_pieces_match_autodiff_of_the_whole(segment, rate, graph):
    q, k, v, q_pos, k_pos, k_valid, bias = _inputs()
    w_out = tf.constant(np.random.default_rng(1).normal(size=(2, 7, 4, 8)), tf.float32)
    w_lse = tf.constant(np.random.default_rng(2).normal(size=(2, 7, 4)), tf.float32)

    run = lambda fn: _values_and_grads(fn, q, k, v, w_out, w_lse)

    def pieces(q, k, v):
        return au.fused_attention(q, k, v, q_pos, k_pos, k_valid, True, True, bias=bias,
                                  dropout_rate=rate, seed=tf.constant([3, 4]), salt=5,
                                  segment_axis=1, segment=segment)

    got = run(tf.function(pieces) if graph else pieces)
    want = run(lambda q, k, v: _reference(q, k, v, q_pos, k_pos, k_valid, bias, segment, rate))
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    if not rate:  # without dropout, also the same as one piece
        whole = run(lambda q, k, v: au.fused_attention(q, k, v, q_pos, k_pos, k_valid, True,
                                                       True, bias=bias))
        for g, w in zip(got, whole):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("attn_chunks,query_chunk_len,dedup", [
    (1, 16, True), (8, 16, True), (8, 24, True), (2, 8, False)])
def test_lsh_query_chunks_change_nothing(attn_chunks, query_chunk_len, dedup):
    """Values and training gradients (input, every kernel) with the sorted queries attended in
    pieces equal those of the whole layer (45 tokens: 6 chunks of 8, pieces may not divide)."""
    args = dict(num_heads=4, head_dim=8, bucket_size=8, num_hashes=2, num_buckets=4, seed=9,
                causal=True, attn_chunks=attn_chunks, allow_duplicate_attention=dedup)
    whole = LSHSelfAttention(**args)
    pieces = LSHSelfAttention(query_chunk_len=query_chunk_len, **args)
    x = np.random.default_rng(3).normal(size=(2, 45, 16)).astype("float32")
    whole(x)
    pieces(x)
    pieces.set_weights(whole.get_weights())
    np.testing.assert_allclose(pieces(x), whole(x), atol=1e-6)
    x = tf.constant(x)
    w_out = tf.constant(np.random.default_rng(4).normal(size=(2, 45, 16)), tf.float32)

    @tf.function
    def grads(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True, rng=tf.constant([7, 8])) * w_out)
        return tape.gradient(loss, [x] + [w.value for w in layer.trainable_weights])

    for got, want in zip(grads(pieces), grads(whole)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_query_chunk_len_is_checked_and_saved():
    with pytest.raises(ValueError, match="multiple of bucket_size"):
        LSHSelfAttention(2, 8, bucket_size=8, query_chunk_len=12)
    layer = LSHSelfAttention(2, 8, bucket_size=8, query_chunk_len=32)
    assert LSHSelfAttention.from_config(layer.get_config()).query_chunk_len == 32


@pytest.mark.parametrize("before,after,segment,graph", [
    (1, 0, 2, False), (1, 0, 3, True), (1, 0, 7, True), (1, 1, 3, True), (2, 0, 1, False),
    (0, 1, 4, True), (2, 1, 5, True), (1, 0, 9, True)])
def test_windows_built_per_piece_match_whole_windows(before, after, segment, graph):
    """Per-chunk keys with `window` (each piece builds its own key windows and folds their
    gradients back, halos by a scatter-add) against windows made for the whole length by
    `look_adjacent` and attended in one piece: values and q / k / v gradients."""
    rng = np.random.default_rng(before * 10 + after)
    chunks, c, dh = 7, 4, 8
    q = tf.constant(rng.normal(size=(2, chunks, c, dh)), tf.float32)
    k = tf.constant(rng.normal(size=(2, chunks, c, dh)), tf.float32)
    v = tf.constant(rng.normal(size=(2, chunks, c, dh)), tf.float32)
    pos = tf.reshape(tf.range(chunks * c), (1, chunks, c)) + tf.zeros((2, 1, 1), tf.int32)
    valid = tf.constant(rng.random(size=(2, chunks, c)) > 0.2)
    width = (before + 1 + after) * c
    bias = tf.constant(rng.normal(size=(2, chunks, c, width)), tf.float32)
    w_out = tf.constant(rng.normal(size=(2, chunks, c, dh)), tf.float32)
    w_lse = tf.constant(rng.normal(size=(2, chunks, c)), tf.float32)
    window = dict(before=before, after=after, axis=1)

    run = lambda fn: _values_and_grads(fn, q, k, v, w_out, w_lse)

    def pieces(q, k, v):
        return au.fused_attention(q, k, v, pos, pos, valid, True, True, bias=bias,
                                  segment_axis=1, segment=segment, window=window)

    def whole(q, k, v):
        adj = lambda t, **kw: au.look_adjacent(t, before, after, 1, **kw)
        return au.fused_attention(q, adj(k), adj(v), pos, adj(pos), adj(valid, fill=False),
                                  True, True, bias=bias)

    got = run(tf.function(pieces) if graph else pieces)
    want = run(whole)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
    # Not a vacuous comparison: keys of the neighbouring chunks do get gradient.
    assert float(tf.reduce_max(tf.abs(want[3]))) > 0


def test_windows_per_piece_draw_the_same_dropout_masks():
    """With dropout, per-piece windows equal whole-length windows attended in the same pieces
    (the masks are drawn per piece from the same seeds)."""
    rng = np.random.default_rng(5)
    q, k, v = (tf.constant(rng.normal(size=(1, 6, 4, 8)), tf.float32) for _ in range(3))
    pos = tf.reshape(tf.range(24), (1, 6, 4))
    valid = tf.ones((1, 6, 4), tf.bool)
    adj = lambda t, **kw: au.look_adjacent(t, 1, 0, 1, **kw)
    args = dict(dropout_rate=0.4, seed=tf.constant([1, 2]), salt=3, segment_axis=1, segment=4)

    def run(windowed):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            if windowed:
                out, _ = au.fused_attention(q, k, v, pos, pos, valid, True, True,
                                            window=dict(before=1, after=0, axis=1), **args)
            else:
                out, _ = au.fused_attention(q, adj(k), adj(v), pos, adj(pos),
                                            adj(valid, fill=False), True, True, **args)
            loss = tf.reduce_sum(out * tf.sin(out))
        return [out] + tape.gradient(loss, [q, k, v])

    for g, w in zip(run(True), run(False)):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5)
