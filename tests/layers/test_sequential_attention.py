"""`LSHSelfAttention(attn_chunks=G)`: (head, round) groups one at a time with a written-out
backward (`tf_sequential_attention`), against the all-at-once computation and autodiff."""

import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import LSHSelfAttention
from reformer_keras.layers import attention_utils as au
from reformer_keras.layers import tf_sequential_attention


def _pair(attn_chunks, num_hashes=2, **kwargs):
    args = dict(num_heads=4, head_dim=8, bucket_size=8, num_hashes=num_hashes, num_buckets=4,
                seed=9, **kwargs)
    whole, grouped = LSHSelfAttention(**args), LSHSelfAttention(attn_chunks=attn_chunks, **args)
    x = np.random.default_rng(3).normal(size=(2, 45, 16)).astype("float32")
    whole(x)
    grouped(x)
    grouped.set_weights(whole.get_weights())
    return whole, grouped, x


def test_group_layout():
    layout = lambda n, **kw: LSHSelfAttention(4, 8, num_hashes=n, **kw).group_layout(n)
    assert layout(2, attn_chunks=2) == (2, 2)      # a divisor of H: groups of heads
    assert layout(4, attn_chunks=8) == (1, 2)      # a multiple: rounds split in equal parts
    assert layout(3, attn_chunks=8) == (1, 3)      # 3 rounds do not split in 2
    assert layout(6, attn_chunks=12) == (1, 2)
    assert layout(2, attn_chunks=64) == (1, 1)
    # without duplicate attention a group needs all rounds (the counts span them): heads only
    assert layout(2, attn_chunks=8, allow_duplicate_attention=False) == (1, 2)
    with pytest.raises(ValueError, match="attn_chunks"):
        LSHSelfAttention(4, 8, attn_chunks=6)


@pytest.mark.parametrize("attn_chunks,num_hashes,causal,dedup", [
    (2, 2, True, True), (4, 2, False, True), (8, 2, True, True), (8, 3, True, True),
    (12, 6, True, True), (16, 2, False, True), (8, 2, True, False)])
def test_same_output_as_all_groups_at_once(attn_chunks, num_hashes, causal, dedup):
    whole, grouped, x = _pair(attn_chunks, num_hashes, causal=causal,
                              allow_duplicate_attention=dedup)
    mask = np.ones(x.shape[:2], bool)
    mask[1, 40:] = False
    np.testing.assert_allclose(grouped(x, padding_mask=mask), whole(x, padding_mask=mask),
                               atol=1e-5)
    rng = np.array([5, 6], "int32")  # training: rotations drawn from the call's seed
    np.testing.assert_allclose(grouped(x, training=True, rng=rng),
                               whole(x, training=True, rng=rng), atol=1e-5)
    np.testing.assert_allclose(grouped(x, num_hashes=5), whole(x, num_hashes=5), atol=1e-5)


@pytest.mark.parametrize("mode,attn_chunks", [
    ("eager", 8), ("graph", 8), ("xla", 8), ("graph", 4)])
def test_gradients_equal_plain_backprop(mode, attn_chunks):
    """Training-mode gradients (input and every kernel) of the recomputing groups equal
    automatic differentiation of the all-at-once layer."""
    whole, grouped, x = _pair(attn_chunks, causal=True)
    x = tf.constant(x)
    w_out = tf.constant(np.random.default_rng(4).normal(size=(2, 45, 16)), tf.float32)
    rng = tf.constant([7, 8], tf.int32)

    def grads(layer):
        def f(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(layer(x, training=True, rng=rng) * w_out)
            return tape.gradient(loss, [x] + [w.value for w in layer.trainable_weights])
        if mode != "eager":
            f = tf.function(f, jit_compile=mode == "xla")
        return f(x)

    for g_grouped, g_whole in zip(grads(grouped), grads(whole)):
        np.testing.assert_allclose(g_grouped, g_whole, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("keep_merged", [False, True])
def test_custom_gradient_matches_autodiff_of_the_merge(keep_merged):
    """The module alone, with a stand-in group function that has attention dropout: its written-
    out backward (per-block projections, recompute, online merge of round groups; the merged
    output recomputed or kept) against autodiff of the plain projections and merge."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(2, 10, 6)), tf.float32)
    w_qk, w_v = (tf.constant(0.4 * rng.normal(size=(6, 4, 4)), tf.float32) for _ in range(2))
    w_o = tf.constant(0.1 * rng.normal(size=(4, 4, 6)), tf.float32)
    weights = [x, w_qk, w_v, w_o]
    pos = tf.range(10)[None, None, :]
    valid = tf.ones((2, 1, 10), bool)
    heads, rounds, num_hashes = 2, 2, 6                       # 2 head blocks x 3 round parts

    def attend_group(qk_g, v_g, h0, r0, g):
        outs, lses = [], []
        for j in range(rounds):  # a stand-in "round" r: keys shifted by r positions
            r = r0 + j
            k = au.unit_keys(tf.roll(qk_g, r, axis=2))
            # not causal: with causal masking, query 0 sees only itself and its lse is the
            # self-mask value (-1e5), where float32 spacing (0.008) blurs any merge of rounds
            out, lse = au.fused_attention(qk_g, k, v_g * tf.cast(1 + h0, tf.float32), pos, pos,
                                          valid, False, True, dropout_rate=0.3,
                                          seed=tf.constant([1, 2]), salt=10 * g + j)
            outs.append(out)
            lses.append(lse)
        lse = tf.stack(lses, 2)
        total = tf.reduce_logsumexp(lse, axis=2)
        return tf.reduce_sum(tf.stack(outs, 2) * tf.exp(lse - total[:, :, None])[..., None],
                             axis=2), total

    def plain(x, w_qk, w_v, w_o):  # every round of a head in one softmax over the rounds' lse
        qk, v = (tf.einsum("bld,dhk->bhlk", x, w) for w in (w_qk, w_v))
        outs = []
        for b in range(2):
            parts = [attend_group(qk[:, 2 * b:2 * b + 2], v[:, 2 * b:2 * b + 2],
                                  tf.constant(2 * b), tf.constant(2 * p), tf.constant(3 * b + p))
                     for p in range(3)]
            w = tf.nn.softmax(tf.stack([p[1] for p in parts], 2), axis=2)[..., None]
            outs.append(tf.reduce_sum(tf.stack([p[0] for p in parts], 2) * w, axis=2))
        return tf.einsum("bhlk,hkd->bld", tf.concat(outs, axis=1), w_o)

    def grouped(*weights):
        return tf_sequential_attention.sequential_attention(*weights, heads, rounds, num_hashes,
                                                            attend_group, keep_merged)

    w_out = tf.constant(rng.normal(size=(2, 10, 6)), tf.float32)
    results = []
    for fn in (plain, grouped, tf.function(grouped)):
        with tf.GradientTape() as tape:
            tape.watch(weights)
            out = fn(*weights)
            loss = tf.reduce_sum(out * w_out)
        results.append([out] + tape.gradient(loss, weights))
    for result in results[1:]:
        for got, want in zip(result, results[0]):
            np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_reversible_language_model_gradients_unchanged():
    """Inside the reversible stack (whose backward recomputes each block under its own tape),
    a model with grouped attention gets the same gradients as one without."""
    from reformer_keras.models import ReformerLM
    config = dict(vocab_size=32, d_model=16, num_layers=2, num_heads=4, d_ff=32, head_dim=8,
                  attention_types=("lsh",), bucket_size=8, num_hashes=2, max_len=48,
                  ff_chunk_size=16, dropout=0.1, seed=3)
    ids = np.random.default_rng(5).integers(0, 32, size=(2, 48)).astype("int32")
    grads = []
    for attn_chunks in (1, 8):
        model = ReformerLM(attn_chunks=attn_chunks, **config)
        model(ids)
        if grads:
            model.set_weights(weights)
        weights = model.get_weights()

        @tf.function
        def step(ids, model=model):
            with tf.GradientTape() as tape:
                logits = model(ids, training=True)
                loss = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
                    ids[:, 1:], logits[:, :-1], from_logits=True))
            return [tf.convert_to_tensor(g)  # the embedding's gradient is IndexedSlices
                    for g in tape.gradient(loss, model.trainable_weights)]

        grads.append(step(tf.constant(ids)))
    for g_grouped, g_whole in zip(grads[1], grads[0]):
        np.testing.assert_allclose(g_grouped, g_whole, rtol=1e-4, atol=1e-6)
