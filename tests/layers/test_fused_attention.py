"""`fused_attention` (written-out backward that recomputes the scores) against automatic
differentiation of the plain composition attention_logits -> mask_logits -> softmax_attend."""

import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import attention_utils as au


def _inputs(shape_q, shape_k, seed):
    rng = np.random.default_rng(seed)
    q = tf.constant(rng.normal(size=shape_q), tf.float32)
    k = tf.constant(rng.normal(size=shape_k), tf.float32)
    v = tf.constant(rng.normal(size=shape_k), tf.float32)
    return q, k, v


def _reference(q, k, v, q_pos, k_pos, k_valid, causal, shared_qk, bias, rate, seed):
    logits = au.mask_logits(au.attention_logits(q, k), q_pos, k_pos, k_valid, causal, shared_qk)
    if bias is not None:
        logits = logits + bias
    return au.softmax_attend(logits, v, rate, seed, salt=5)


@pytest.fixture(params=["kept", "recomputed"])
def scores(request, monkeypatch):
    """Both backward variants: scores kept from the forward (small ones, the default) and
    recomputed (what larger scores get)."""
    if request.param == "recomputed":
        monkeypatch.setattr(au, "KEEP_SCORES_MAX_ENTRIES", 0)
    return request.param


@pytest.mark.parametrize("causal,shared_qk,with_bias,rate", [
    (True, True, False, 0.0), (False, False, False, 0.0), (True, False, True, 0.0),
    (True, True, True, 0.3), (False, True, False, 0.5)])
def test_values_and_gradients_match_autodiff(causal, shared_qk, with_bias, rate, scores):
    del scores
    q, k, v = _inputs((2, 3, 5, 8), (2, 3, 7, 8), 0)
    if shared_qk:
        k = au.unit_keys(k)
    q_pos = tf.constant(np.tile(np.arange(0, 5), (2, 3, 1)), tf.int32)  # query 0: only itself
    k_pos = tf.constant(np.tile(np.arange(0, 7), (2, 3, 1)), tf.int32)
    valid = np.ones((2, 3, 7), bool)
    valid[1, :, 5:] = False                                   # padding keys
    k_valid = tf.constant(valid)
    bias = tf.constant(np.random.default_rng(1).normal(size=(2, 3, 5, 7)), tf.float32) \
        if with_bias else None
    seed = tf.constant([3, 4], tf.int32)
    # a loss that uses both outputs, with non-uniform weights
    w_out = tf.constant(np.random.default_rng(2).normal(size=(2, 3, 5, 8)), tf.float32)
    w_lse = tf.constant(np.random.default_rng(3).normal(size=(2, 3, 5)), tf.float32)

    def loss(fn):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out, lse = fn(q, k, v, q_pos, k_pos, k_valid, causal, shared_qk, bias, rate, seed)
            value = tf.reduce_sum(out * w_out) + tf.reduce_sum(lse * w_lse)
        return (out, lse), tape.gradient(value, [q, k, v])

    def fused(q, k, v, q_pos, k_pos, k_valid, causal, shared_qk, bias, rate, seed):
        return au.fused_attention(q, k, v, q_pos, k_pos, k_valid, causal, shared_qk, bias=bias,
                                  dropout_rate=rate, seed=seed, salt=5)

    (out_f, lse_f), grads_f = loss(fused)
    (out_r, lse_r), grads_r = loss(_reference)
    np.testing.assert_allclose(out_f, out_r, atol=1e-5)
    np.testing.assert_allclose(lse_f, lse_r, atol=1e-5)
    for g_f, g_r in zip(grads_f, grads_r):
        np.testing.assert_allclose(g_f, g_r, atol=2e-5, rtol=1e-4)
        assert np.abs(np.asarray(g_r)).max() > 1e-3            # the check is not vacuous


def test_rows_without_a_visible_key_get_exact_gradients(scores):
    """Queries whose keys are all padding attend uniformly (softmax of equal masked logits);
    lse = MASK_VALUE + log(Lk) rounds to MASK_VALUE in float32, which the recomputing backward
    must not turn into probabilities of 1. Reference: autodiff of tf.nn.softmax."""
    del scores
    q, k, v = _inputs((2, 2, 4, 8), (2, 2, 6, 8), 7)
    pos = tf.constant(np.tile(np.arange(6), (2, 2, 1)), tf.int32)
    valid = np.ones((2, 2, 6), bool)
    valid[0, 1] = False                       # a whole block of keys is padding
    valid[1, 0, :3] = False                   # with causal masking, queries 0-2 see nothing
    valid = tf.constant(valid)
    w_out = tf.constant(np.random.default_rng(8).normal(size=(2, 2, 4, 8)), tf.float32)

    def reference(q, k, v):
        visible, _ = au.visible_keys(pos[..., :4], pos, valid, True, False)
        logits = tf.where(visible, au.attention_logits(q, k), au.MASK_VALUE)
        return tf.einsum("...qk,...kd->...qd", tf.nn.softmax(logits, axis=-1), v)

    def grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = fn(q, k, v)
            value = tf.reduce_sum(out * w_out)
        return [out] + tape.gradient(value, [q, k, v])

    got = grads(lambda q, k, v: au.fused_attention(q, k, v, pos[..., :4], pos, valid, True,
                                                   False)[0])
    want = grads(reference)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, atol=2e-5, rtol=1e-4)
    d_v = np.asarray(want[3])
    assert np.abs(d_v[0, 1]).max() > 1e-2    # the padding block's values do get gradient


def test_gradient_in_a_graph_with_an_unused_lse():
    """Only `out` used (as in full and local attention): the lse gradient arrives as zeros or
    None, inside tf.function."""
    q, k, v = _inputs((1, 2, 6, 4), (1, 2, 6, 4), 4)
    pos = tf.range(6)[None, None]
    valid = tf.ones((1, 1, 6), bool)

    @tf.function
    def grads(fn):
        with tf.GradientTape() as tape:
            tape.watch([q, k, v])
            out = fn(q, k, v)
            value = tf.reduce_sum(tf.sin(out))
        return tape.gradient(value, [q, k, v])

    fused = grads(lambda q, k, v: au.fused_attention(q, k, v, pos, pos, valid, True, False)[0])
    ref = grads(lambda q, k, v: _reference(q, k, v, pos, pos, valid, True, False, None, 0.0,
                                           None)[0])
    for g_f, g_r in zip(fused, ref):
        np.testing.assert_allclose(g_f, g_r, atol=2e-5, rtol=1e-4)


def _numpy_shared_qk(x, qk_kernel, v_kernel, output_kernel, window=None):
    """Causal shared-QK attention as trax and HF transformers compute it: logits q . k/|k| (no
    further 1/sqrt(dh)); a token sees itself only when nothing else is visible."""
    q = np.einsum("ld,dhk->hlk", x, qk_kernel)
    k = q / np.linalg.norm(q, axis=-1, keepdims=True)
    logits = np.einsum("hqd,hkd->hqk", q, k)
    n = len(x)
    pos = np.arange(n)
    visible = pos[None, :] < pos[:, None]
    if window is not None:  # local: own chunk and the previous one
        visible &= pos[None, :] // window >= pos[:, None] // window - 1
    visible[0, 0] = True
    logits = np.where(visible, logits, -np.inf)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    out = np.einsum("hqk,hkd->hqd", probs, np.einsum("ld,dhk->hlk", x, v_kernel))
    return np.einsum("hlk,hkd->ld", out, output_kernel)


@pytest.mark.parametrize("kind", ["full", "local"])
def test_shared_qk_logits_are_q_dot_unit_key(kind):
    """The library's shared-QK logit scale is trax's and HF's (reformer-pytorch divides once more
    by sqrt(dh)); large inputs make the softmax sharp enough that a wrong scale shows."""
    from reformer_keras.layers import FullSelfAttention, LocalSelfAttention
    layer = (FullSelfAttention(num_heads=2, head_dim=16, causal=True, shared_qk=True, seed=0)
             if kind == "full" else
             LocalSelfAttention(num_heads=2, head_dim=16, causal=True, shared_qk=True,
                                chunk_size=4, seed=0))
    x = np.random.default_rng(0).normal(size=(1, 12, 8)).astype("float32") * 3
    got = np.asarray(layer(x))[0]
    want = _numpy_shared_qk(x[0].astype("float64"), *(np.asarray(w, "float64") for w in (
        layer.qk_kernel, layer.v_kernel, layer.output_kernel)),
        window=None if kind == "full" else 4)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
