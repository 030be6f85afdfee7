"""ReformerSeq2Seq and CrossAttention: NumPy reference, encoder padding, decoder causality,
reversible decoder gradients (incl. w.r.t. the encoder output), bad inputs."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import ChunkedFeedForward, FullSelfAttention, LSHSelfAttention, \
    PreNormBranch
from reformer_keras.layers.cross_attention import CrossAttention
from reformer_keras.models import ReformerSeq2Seq
from reformer_keras.models.reversible_decoder import (DecoderAttentionBranch,
                                                      ReversibleDecoderSequence)

V = 40


def _model(**kw):
    config = dict(encoder_vocab_size=V, decoder_vocab_size=V + 3, d_model=32,
                  num_encoder_layers=2, num_decoder_layers=2, num_heads=2, d_ff=64,
                  encoder_attention_types=["lsh", "local"], decoder_attention_types=["full", "local"],
                  bucket_size=8, num_hashes=2, num_buckets=4, encoder_max_len=64,
                  decoder_max_len=32, seed=3)
    config.update(kw)
    return ReformerSeq2Seq(**config)


def _ids(b, l, seed, vocab=V):
    return np.random.default_rng(seed).integers(2, vocab, size=(b, l)).astype("int32")


def _softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def test_cross_attention_matches_numpy_reference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 12)).astype("float32")
    ctx = rng.normal(size=(2, 7, 10)).astype("float32")
    mask = np.array([[1] * 7, [1] * 4 + [0] * 3], bool)
    layer = CrossAttention(num_heads=3, head_dim=4, seed=1)
    got = np.asarray(layer(x, ctx, context_mask=mask))
    wq, wk, wv, wo = (np.asarray(w) for w in (layer.q_kernel, layer.k_kernel, layer.v_kernel,
                                              layer.output_kernel))
    want = np.zeros_like(got)
    for b in range(2):
        keep = mask[b]
        for h in range(3):
            q, k, v = x[b] @ wq[:, h], ctx[b][keep] @ wk[:, h], ctx[b][keep] @ wv[:, h]
            want[b] += (_softmax(q @ k.T / 2.0) @ v) @ wo[h]
    np.testing.assert_allclose(got, want, atol=1e-5)
    # Padded context really is ignored: changing it changes nothing.
    ctx2 = ctx.copy()
    ctx2[1, 4:] = 100.0
    np.testing.assert_allclose(np.asarray(layer(x, ctx2, context_mask=mask)), got, atol=1e-6)
    clone = CrossAttention.from_config(json.loads(json.dumps(layer.get_config())))
    clone(x, ctx)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(x, ctx, context_mask=mask)), got)
    with pytest.raises(ValueError, match="context.*10 features"):
        layer(x, ctx[..., :6])


def test_encoder_padding_does_not_change_decoder_outputs():
    model = _model()
    src, tgt = _ids(2, 19, 1), _ids(2, 11, 2, V + 3)
    want = np.asarray(model({"encoder_token_ids": src, "decoder_token_ids": tgt}))
    padded = np.concatenate([src, _ids(2, 13, 3)], axis=1)           # junk after 19 tokens
    mask = np.arange(32)[None] < 19
    got = np.asarray(model({"encoder_token_ids": padded, "decoder_token_ids": tgt,
                            "encoder_padding_mask": np.repeat(mask, 2, 0)}))
    np.testing.assert_allclose(got, want, atol=1e-5)
    # Without the mask the junk is attended to (so the mask is what removes it).
    unmasked = np.asarray(model({"encoder_token_ids": padded, "decoder_token_ids": tgt}))
    assert np.abs(unmasked - want).max() > 1e-4
    # Different source rows of one batch with different real lengths.
    mask2 = np.stack([np.arange(32) < 19, np.arange(32) < 7])
    both = np.asarray(model({"encoder_token_ids": padded, "decoder_token_ids": tgt,
                             "encoder_padding_mask": mask2}))
    short = np.asarray(model({"encoder_token_ids": src[1:, :7], "decoder_token_ids": tgt[1:]}))
    np.testing.assert_allclose(both[1:], short, atol=1e-5)


@pytest.mark.parametrize("decoder_types", [["full", "local"], ["local"]])
def test_decoder_is_causal(decoder_types):
    """Strict causality: logits at t do not depend on tokens after t. (Not asserted for LSH
    self-attention: future tokens move the sorted-chunk boundaries, so which past keys share a
    query's chunk can change; the causal mask only guarantees no future key is attended.)"""
    model = _model(decoder_attention_types=decoder_types)
    src, tgt = _ids(2, 12, 4), _ids(2, 24, 5, V + 3)
    base = np.asarray(model({"encoder_token_ids": src, "decoder_token_ids": tgt}))
    for t in (0, 9, 17):
        changed = tgt.copy()
        changed[:, t + 1:] = _ids(2, 23 - t, 6 + t, V + 3)
        out = np.asarray(model({"encoder_token_ids": src, "decoder_token_ids": changed}))
        np.testing.assert_allclose(out[:, :t + 1], base[:, :t + 1], atol=1e-5)
        assert np.abs(out[:, t + 1:] - base[:, t + 1:]).max() > 1e-4
    # The decoder does read the source.
    other = np.asarray(model({"encoder_token_ids": _ids(2, 12, 9), "decoder_token_ids": tgt}))
    assert np.abs(other - base).max() > 1e-4


def _decoder_stack(reversible, dropout, lsh, stored=0):
    blocks = []
    for i in range(2):
        attn = (LSHSelfAttention(2, 8, bucket_size=8, num_hashes=2, causal=True, seed=i,
                                 attention_dropout=dropout, output_dropout=dropout)
                if i % 2 and lsh else FullSelfAttention(2, 8, causal=True, seed=i,
                                                attention_dropout=dropout, output_dropout=dropout))
        cross = CrossAttention(2, 8, context_dim=24, attention_dropout=dropout,
                               output_dropout=dropout, seed=10 + i)
        ff = ChunkedFeedForward(32, dropout=dropout, seed=20 + i)
        blocks.append((DecoderAttentionBranch(attn, cross), PreNormBranch(ff)))
    seq = ReversibleDecoderSequence(blocks, reversible=reversible, seed=5,
                                    stored_top_blocks=stored)
    seq.build((2, 20, 16), (2, 9, 24))
    return seq


def _rel_err(a, b):
    a, b = np.asarray(tf.convert_to_tensor(a)), np.asarray(tf.convert_to_tensor(b))
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-12)


@pytest.mark.parametrize("dropout,graph,stored", [(0.2, True, 0), (0.1, False, 0),
                                                  (0.1, False, 1)])
def test_reversible_decoder_gradients_equal_plain_backprop(dropout, graph, stored):
    """With `stored` top blocks kept for the backward pass, the encoder output's gradient
    sums the recomputed blocks' and the stored block's."""
    x = tf.random.stateless_normal((2, 20, 16), seed=[1, 2])
    ctx = tf.random.stateless_normal((2, 9, 24), seed=[3, 4])
    cmask = tf.constant(np.arange(9)[None] < np.array([[9], [6]]))
    target = tf.random.stateless_normal((2, 20, 32), seed=[5, 6])
    rng = tf.constant([7, 8], tf.int32)
    # LSH in the eager run only: tracing it twice under tf.function costs ~15 s of test time.
    rev = _decoder_stack(True, dropout, not graph, stored)
    plain = _decoder_stack(False, dropout, not graph)
    plain.set_weights(rev.get_weights())

    def grads(seq):
        def step(x, ctx):
            with tf.GradientTape() as tape:
                tape.watch([x, ctx])
                y = seq(x, ctx, context_mask=cmask, training=True, rng=rng)
                loss = tf.reduce_sum(tf.sin(y) * target)
            return loss, tape.gradient(loss, [x, ctx] + [w.value for w in seq.trainable_weights])
        return (tf.function(step) if graph else step)(x, ctx)

    loss_r, g_r = grads(rev)
    loss_p, g_p = grads(plain)
    assert abs(float(loss_r) - float(loss_p)) <= 1e-5 * abs(float(loss_p))
    names = ["x", "encoder output"] + [w.path for w in rev.trainable_weights]
    assert len(g_r) == len(g_p) == len(names)
    for name, gr, gp in zip(names, g_r, g_p):
        assert gr is not None and gp is not None, name
        assert np.abs(np.asarray(gp)).max() > 0, f"{name}: zero reference gradient"
        assert _rel_err(gr, gp) <= 1e-5, f"{name}: rel err {_rel_err(gr, gp):.2e}"
    # Padded context positions get no gradient.
    assert np.abs(np.asarray(g_r[1])[1, 6:]).max() == 0.0


def _loss_gradients(model, inputs, labels):
    """Gradients of the mean cross-entropy w.r.t. the model's trainable variables."""
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
            labels, model(inputs), from_logits=True))
    return tape.gradient(loss, model.trainable_variables)


def test_full_model_reversible_gradients_equal_plain():
    rev, plain = _model(reversible=True), _model(reversible=False)
    inputs = {"encoder_token_ids": _ids(2, 16, 7), "decoder_token_ids": _ids(2, 10, 8, V + 3),
              "encoder_padding_mask": np.arange(16)[None].repeat(2, 0) < 13}
    rev(inputs), plain(inputs)
    plain.set_weights(rev.get_weights())
    labels = _ids(2, 10, 9, V + 3)
    out = [_loss_gradients(model, inputs, labels) for model in (rev, plain)]
    enc_grads = 0
    for v, gr, gp in zip(rev.trainable_variables, *out):
        assert _rel_err(gr, gp) <= 1e-5, v.path
        enc_grads += ("encoder" in v.path.split("/") and
                      np.abs(np.asarray(tf.convert_to_tensor(gp))).max() > 0)
    assert enc_grads > 10  # the loss reaches the encoder through cross-attention


def test_speed_and_memory_options_keep_the_gradients():
    """attn_chunks, query_chunk_len, ff_chunked_backward and stored_top_blocks (encoder and
    decoder, LSH in both) give the gradients of plain backprop with the options off."""
    types = dict(encoder_attention_types=["lsh", "local"], decoder_attention_types=["lsh", "full"])
    knobs = dict(attn_chunks=2, query_chunk_len=8, ff_chunked_backward=True, stored_top_blocks=1,
                 rotations_per_example=True)
    tuned = _model(**types, **knobs)
    plain = _model(**types, reversible=False, rotations_per_example=True)
    config = tuned.get_config()
    assert {k: config[k] for k in knobs} == knobs
    decoder = tuned.decoder
    assert decoder.stack.stored_top_blocks == 1 and decoder.attn_chunks == 2
    lsh = decoder.stack.blocks[0][0].self_attention
    assert (lsh.attn_chunks, lsh.query_chunk_len) == (2, 8) and lsh.rotations_per_example
    assert decoder.stack.blocks[0][1].layer.chunked_backward
    assert ReformerSeq2Seq.from_config(config).decoder.get_config()["stored_top_blocks"] == 1
    inputs = {"encoder_token_ids": _ids(2, 16, 7), "decoder_token_ids": _ids(2, 16, 8, V + 3)}
    tuned(inputs), plain(inputs)
    plain.set_weights(tuned.get_weights())
    labels = _ids(2, 16, 9, V + 3)
    out = [_loss_gradients(model, inputs, labels) for model in (tuned, plain)]
    for v, gr, gp in zip(tuned.trainable_variables, *out):
        assert _rel_err(gr, gp) <= 1e-5, v.path
    # Cached greedy decoding with the options on gives the plain model's tokens.
    source = _ids(2, 12, 10)
    np.testing.assert_array_equal(tuned.translate(source, 6, start_id=1),
                                  plain.translate(source, 6, start_id=1))


def test_translate_and_bad_inputs():
    model = _model()
    src = _ids(2, 10, 1)
    out = model.translate(src, max_new_tokens=5, start_id=1, end_id=2)
    assert out.shape == (2, 6) and out.dtype == np.int32 and (out[:, 0] == 1).all()
    # Greedy decoding agrees with the argmax of a teacher-forced pass over its own output.
    logits = np.asarray(model({"encoder_token_ids": src, "decoder_token_ids": out[:, :-1]}))
    done = np.cumsum(out[:, 1:] == 2, axis=1) - (out[:, 1:] == 2) > 0
    assert (np.where(done, 2, logits.argmax(-1)) == out[:, 1:]).all()
    dec = _ids(2, 5, 2, V + 3)
    with pytest.raises(ValueError, match="dict"):
        model(src)
    with pytest.raises(ValueError, match="encoder_token_ids.*integer"):
        model({"encoder_token_ids": src.astype("float32"), "decoder_token_ids": dec})
    with pytest.raises(ValueError, match=r"decoder_token_ids.*vocab_size=43"):
        model({"encoder_token_ids": src, "decoder_token_ids": dec + 50})
    with pytest.raises(ValueError, match=r"encoder_token_ids.*vocab_size=40"):
        model({"encoder_token_ids": src * 0 - 1, "decoder_token_ids": dec})
    with pytest.raises(ValueError, match="decoder max_len"):
        model({"encoder_token_ids": src, "decoder_token_ids": _ids(1, 33, 3)})
    with pytest.raises(ValueError, match="decoder_attention_types"):
        _model(decoder_attention_types=["sparse"])
