"""Reversible gradients equal plain backprop (same weights, seeds, dropout masks, hash
buckets)."""


import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import (ChunkedFeedForward, LocalSelfAttention, LSHSelfAttention,
                                   PreNormBranch, ReversibleSequence)

D, L, LAYERS = 16, 48, 4


def _stack(reversible, dropout, per_example=False, stored=0):
    blocks = []
    for i in range(LAYERS):
        attn = (LSHSelfAttention(2, 8, bucket_size=8, num_hashes=2, causal=True,
                                 attention_dropout=dropout, output_dropout=dropout, seed=i,
                                 rotations_per_example=per_example)
                if i % 2 == 0 else
                LocalSelfAttention(2, 8, chunk_size=8, causal=True, attention_dropout=dropout,
                                   output_dropout=dropout, seed=i))
        ff = ChunkedFeedForward(32, chunk_size=16, dropout=dropout, seed=100 + i)
        blocks.append((PreNormBranch(attn), PreNormBranch(ff)))
    seq = ReversibleSequence(blocks, reversible=reversible, seed=7, stored_top_blocks=stored)
    seq.build((2, L, D))
    return seq


def _grads(seq, x, rng, length=L):
    target = tf.random.stateless_normal((2, length, 2 * D), seed=[3, 4])

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = seq(x, training=True, rng=rng)
            loss = tf.reduce_sum(y * target)
        return loss, tape.gradient(loss, [x] + [w.value for w in seq.trainable_weights])

    return step(x)


def _rel_err(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)


@pytest.mark.parametrize("dropout,per_example,stored", [
    (0.0, False, 0), (0.2, False, 0), (0.2, True, 0), (0.2, False, 1), (0.2, False, LAYERS)])
def test_reversible_gradients_equal_plain_backprop(dropout, per_example, stored):
    x = tf.random.stateless_normal((2, L, D), seed=[1, 2])
    rng = tf.constant([11, 12], tf.int32)
    rev = _stack(True, dropout, per_example, stored)
    plain = _stack(False, dropout, per_example)
    plain.set_weights(rev.get_weights())
    loss_r, grads_r = _grads(rev, x, rng)
    loss_p, grads_p = _grads(plain, x, rng)
    assert abs(float(loss_r) - float(loss_p)) <= 1e-5 * abs(float(loss_p))
    assert len(grads_r) == len(grads_p) == 1 + len(rev.trainable_weights)
    names = ["input"] + [w.path for w in rev.trainable_weights]
    for name, gr, gp in zip(names, grads_r, grads_p):
        assert gr is not None and gp is not None, name
        assert np.abs(np.asarray(gp)).max() > 0, f"{name}: zero reference gradient"
        assert _rel_err(gr, gp) <= 1e-5, f"{name}: rel err {_rel_err(gr, gp):.2e}"


def test_dropout_is_active_and_reused():
    """With dropout the training output differs from inference, yet is reproducible per seed:
    the property the recompute relies on."""
    x = tf.random.stateless_normal((2, L, D), seed=[1, 2])
    seq = _stack(True, 0.3)
    a = seq(x, training=True, rng=tf.constant([1, 1]))
    b = seq(x, training=True, rng=tf.constant([1, 1]))
    c = seq(x, training=True, rng=tf.constant([2, 1]))
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert np.abs(a.numpy() - c.numpy()).max() > 1e-3
    assert np.abs(a.numpy() - seq(x, training=False).numpy()).max() > 1e-3


@pytest.mark.parametrize("stored", [0, 2])
@pytest.mark.parametrize("training", [True, False])
def test_reversible_gradients_in_eager_mode(stored, training, monkeypatch):
    """Eager gradients equal plain backprop, with seeds (training: the shared block programs)
    and without (inference: blocks inline). Only the blocks below the `stored` top ones are
    recomputed in the backward pass."""
    from reformer_keras.layers import tf_reversible
    recomputed = []  # training: one backward per block; inference: the inline stack's blocks
    backward, per_block = tf_reversible._BlockProgram.backward, tf_reversible._per_block_stack

    def backward_spy(self, *args):
        recomputed.append(1)
        return backward(self, *args)

    def per_block_spy(x1, x2, context, blocks, kwargs):
        recomputed.extend([1] * len(blocks))
        return per_block(x1, x2, context, blocks, kwargs)

    monkeypatch.setattr(tf_reversible._BlockProgram, "backward", backward_spy)
    monkeypatch.setattr(tf_reversible, "_per_block_stack", per_block_spy)
    x = tf.random.stateless_normal((1, 24, D), seed=[5, 6])
    rev, plain = _stack(True, 0.1, stored=stored), _stack(False, 0.1)
    plain.set_weights(rev.get_weights())
    rng = tf.constant([4, 2]) if training else None
    out = []
    for seq in (rev, plain):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(tf.sin(seq(x, training=training, rng=rng)))
        out.append(tape.gradient(loss, [x] + [w.value for w in seq.trainable_weights]))
    for gr, gp in zip(*out):
        assert gr is not None and _rel_err(gr, gp) <= 1e-5
    assert len(recomputed) == LAYERS - stored


@pytest.mark.parametrize("bad", [-1, 1.5, True, "1"])
def test_stored_top_blocks_is_checked(bad):
    with pytest.raises(ValueError, match="stored_top_blocks"):
        ReversibleSequence([(PreNormBranch(ChunkedFeedForward(8)),
                             PreNormBranch(ChunkedFeedForward(8)))], stored_top_blocks=bad)


def test_block_recompute_attends_with_the_forward_buckets():
    """A reversible block's forward hands its LSH branch's buckets to the backward pass, whose
    recompute attends with them (rehashing the reconstructed input could sort differently): given
    other buckets, the reconstructed block input changes; given the forward's, it is exact."""
    from reformer_keras.layers import tf_reversible
    f = PreNormBranch(LSHSelfAttention(2, 8, bucket_size=8, num_hashes=2, causal=True, seed=1))
    g = PreNormBranch(ChunkedFeedForward(32, seed=2))
    for layer in (f, g):
        layer.build((2, L, D))
    prog = tf_reversible._BlockProgram(f, g, dict(training=True), dict(training=True))
    weights = lambda layer: ([w.value for w in layer.trainable_variables],
                             [w.value for w in layer.non_trainable_variables])
    x1, x2 = (tf.random.stateless_normal((2, L, D), seed=[s, 0]) for s in (1, 2))
    seeds = dict(rng=tf.constant([4, 5])), dict(rng=tf.constant([6, 7]))
    y1, y2, f_t = prog.forward(x1, x2, [], weights(f), weights(g), *seeds)
    np.testing.assert_array_equal(f_t["buckets"], f.compute_buckets(x2, training=True, **seeds[0]))

    def reconstructed_x1(buckets):
        dy = tf.ones_like(y1)
        return prog.backward(y1, y2, dy, dy, [], weights(f), weights(g),
                             dict(f_t, buckets=buckets), seeds[1])[0]

    np.testing.assert_allclose(reconstructed_x1(f_t["buckets"]), x1, atol=1e-5)
    other = (f_t["buckets"] + 1) % 4
    assert np.abs(reconstructed_x1(other) - x1).max() > 1e-2


def test_inference_stack_recompute_gets_the_forward_buckets(monkeypatch):
    """Without seeds (training=False) each block runs inline; its LSH branch returns the
    buckets it hashed into in the forward pass, and its recompute in the backward pass is
    given them."""
    calls = []
    original = PreNormBranch.call

    def spy(self, x, *args, buckets=None, return_buckets=False, **kwargs):
        result = original(self, x, *args, buckets=buckets, return_buckets=return_buckets,
                          **kwargs)
        if self.hashes:
            assert return_buckets == (buckets is None)  # forward: hashes; recompute: given
            calls.append(np.asarray(result[1] if return_buckets else buckets))
        return result

    seq = _stack(True, 0.0)
    x = tf.random.stateless_normal((2, L, D), seed=[1, 2])
    monkeypatch.setattr(PreNormBranch, "call", spy)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(seq(x, training=False))
    grad = tape.gradient(loss, x)
    assert grad is not None and len(calls) == 4  # 2 LSH blocks: forward + recompute each
    np.testing.assert_array_equal(calls[0], calls[3])   # block 0: forward, then recompute last
    np.testing.assert_array_equal(calls[1], calls[2])
