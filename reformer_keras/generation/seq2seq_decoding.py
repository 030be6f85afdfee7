"""Cached autoregressive decoding for the encoder-decoder `ReformerSeq2Seq` (TensorFlow backend).

`generate_seq2seq` runs the encoder once, computes every decoder layer's cross-attention keys
and values from the encoder output once (`init_seq2seq_cache`), then decodes token by token
(`seq2seq_decode_step`) inside a `tf.while_loop`, starting from `start_id` at position 0.

A decoder block at inference is y1 = x1 + f(x2), y2 = x2 + g(y1) with
f(x) = a + CrossAttention(cross_norm(x + a), context), a = SelfAttention(self_norm(x)) (causal),
g = FeedForward(LN(y1)); then concat(y1, y2) -> final LayerNorm -> lm_head. A step runs that for
one token: the self-attention from its layer's own cached step (`decode_step` of full / local /
LSH attention, as `generate` uses, so the same exactness notes apply: full, local and LSH with
`num_buckets=1` are exact, general LSH is the cheap causal emulation documented in
`reformer_keras.generation.decoding`), the cross-attention from its layer's `decode_step`: one
query against the cached (B, H, Ls, dh) keys / values with padded source positions masked, and
the other sublayers called on (B, 1, D). Per-token cost O(self-attention cache + Ls); nothing re-runs the prefix or the
encoder. Sampling (temperature / top-k / top-p / stateless seeds) is `sampling.sample_logits`.

Cache layout (a dict of tensors, valid `tf.while_loop` state with static shapes):
  "self":  list, per decoder layer, of its self-attention layer's `init_cache` dict.
  "cross": list, per decoder layer, of its cross-attention layer's `init_cache` dict:
           {"k", "v": (B, H, Ls, dh) float32, "valid": (B, Ls) bool}, constant.

Graph-safe as written (no Python control flow on tensors): works eagerly and in `tf.function`.
"""

import tensorflow as tf

from reformer_keras.generation import sampling
from reformer_keras.generation.decoding import (_check_id_batch, _check_int, _embed,
                                                 _no_autograph)


def _check_model(model):
    decoder = getattr(model, "decoder", None)
    if (decoder is None or getattr(model, "encoder", None) is None
            or not hasattr(decoder, "stack") or not hasattr(model, "lm_head")
            or not hasattr(model, "encode")):
        raise ValueError(f"`model` must be a ReformerSeq2Seq, got {type(model).__name__}.")
    if not model.built:
        model.build({"encoder_token_ids": (None, None), "decoder_token_ids": (None, None)})
    return decoder


@_no_autograph
def init_seq2seq_cache(model, encoder_output, max_length, encoder_padding_mask=None):
    """Empty self-attention caches and the (filled, constant) cross-attention caches.

    Args:
      model: a built `ReformerSeq2Seq`.
      encoder_output: (B, Ls, 2 * d_model) float, `model.encode(...)`.
      max_length: Python int M in [1, decoder max_len]: decoder positions the cache holds.
      encoder_padding_mask: optional (B, Ls) bool / int, True (non-zero) for real source tokens.
    Returns: the cache dict described in the module docstring.
    """
    decoder = _check_model(model)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not (
            1 <= max_length <= decoder.max_len):
        raise ValueError(f"`max_length` must be an int in [1, decoder max_len="
                         f"{decoder.max_len}], got {max_length!r}.")
    batch = tf.shape(encoder_output)[0]
    return {"self": [f.self_attention.init_cache(batch, max_length, hash_length=decoder.max_len)
                     for f, _ in decoder.stack.blocks],
            "cross": [f.cross_attention.init_cache(encoder_output, encoder_padding_mask)
                      for f, _ in decoder.stack.blocks]}


@_no_autograph
def seq2seq_decode_step(model, cache, token, position):
    """One decoder step: feeds `token` at decoder `position`, returns the next-token logits.

    Args:
      cache: from `init_seq2seq_cache`, holding decoder positions 0 .. position - 1.
      token: (B,) int ids of the decoder token at `position`.
      position: scalar int (Python or tensor), < the cache's max_length.
    Returns: (logits (B, V) float32 for position + 1, cache now holding 0 .. position).
    """
    decoder = model.decoder
    position = tf.cast(position, tf.int32)
    x1 = x2 = _embed(decoder, tf.reshape(tf.cast(token, tf.int32), (-1, 1)), position)
    new_self = []
    for (f, g), self_cache, cross_cache in zip(decoder.stack.blocks, cache["self"],
                                               cache["cross"]):
        a, self_cache = f.self_attention.decode_step(f.self_norm(x2), self_cache, position)
        new_self.append(self_cache)
        c, _ = f.cross_attention.decode_step(f.cross_norm(x2 + a), cross_cache, position)
        x1 = x1 + a + c
        x2 = x2 + tf.cast(g(x1, training=False), tf.float32)
    hidden = decoder.final_norm(tf.concat([x1, x2], axis=-1))
    logits = tf.cast(model.lm_head(hidden), tf.float32)[:, -1]
    return logits, {"self": new_self, "cross": cache["cross"]}


def _check_encoder_inputs(model, encoder_token_ids, encoder_padding_mask):
    ids = _check_id_batch(encoder_token_ids, "encoder_token_ids", model.encoder.vocab_size,
                          model.encoder.max_len, what="the encoder max_len")
    shape = ids.shape
    if encoder_padding_mask is not None:
        if not isinstance(encoder_padding_mask, (tf.Tensor, tf.Variable)):
            try:
                encoder_padding_mask = tf.convert_to_tensor(encoder_padding_mask)
            except (ValueError, TypeError) as err:
                raise ValueError(f"`encoder_padding_mask` must be a (batch, length) bool "
                                 f"array: {err}") from err
        mask_dtype = encoder_padding_mask.dtype
        if not (mask_dtype == tf.bool or mask_dtype.is_integer):
            raise ValueError(f"`encoder_padding_mask` must be bool or integer, got dtype "
                             f"{mask_dtype.name}.")
        if not encoder_padding_mask.shape.is_compatible_with(shape):
            raise ValueError(f"`encoder_padding_mask` must have the shape of "
                             f"`encoder_token_ids` {tuple(shape)}, got "
                             f"{tuple(encoder_padding_mask.shape)}.")
        encoder_padding_mask = tf.cast(encoder_padding_mask, tf.bool)
    return tf.cast(ids, tf.int32), encoder_padding_mask


@_no_autograph
def generate_seq2seq(model, encoder_token_ids, max_new_tokens, encoder_padding_mask=None,
                     start_id=0, temperature=1.0, top_k=None, top_p=None, seed=None,
                     eos_id=None, pad_id=0):
    """Samples `max_new_tokens` decoder tokens for a source batch with cached decoding.

    Args:
      model: a `ReformerSeq2Seq` (inference mode: no dropout).
      encoder_token_ids: (B, Ls) integer source ids in [0, encoder vocab).
      max_new_tokens: Python int >= 0; 1 + max_new_tokens <= decoder max_len.
      encoder_padding_mask: optional (B, Ls) bool / int, True for real source tokens.
      start_id: the decoder's first token (default 0: the translation pipelines start decoding
        with the pad id, see `datasets/pipelines.py`).
      temperature, top_k, top_p, seed: as `reformer_keras.generation.generate` (temperature 0
        is greedy; the same seed gives the same tokens eagerly and inside `tf.function`).
      eos_id: optional end id: after a row emits it, its later tokens are `pad_id`; the loop
        stops early once every row has finished.
      pad_id: id written after `eos_id` (default 0).
    Returns: (B, 1 + max_new_tokens) int32: `start_id` followed by the generated tokens.
    """
    decoder = _check_model(model)
    _check_int("max_new_tokens", max_new_tokens, 0)
    if 1 + max_new_tokens > decoder.max_len:
        raise ValueError(f"1 (start token) + `max_new_tokens` {max_new_tokens} exceeds the "
                         f"decoder max_len {decoder.max_len}.")
    temperature, top_k, top_p = sampling.check_sampling_args(temperature, top_k, top_p)
    vocab = decoder.vocab_size
    _check_int("start_id", start_id, 0, vocab)
    if eos_id is not None:
        _check_int("eos_id", eos_id, 0, vocab)
    _check_int("pad_id", pad_id, 0, vocab)
    enc_ids, enc_mask = _check_encoder_inputs(model, encoder_token_ids, encoder_padding_mask)
    seed = sampling.make_seed(seed)

    batch = tf.shape(enc_ids)[0]
    start = tf.fill(tf.stack([batch]), tf.constant(start_id, tf.int32))
    if max_new_tokens == 0:
        return start[:, None]
    total = 1 + max_new_tokens
    context = model.encode(enc_ids, enc_mask, training=False)
    cache = init_seq2seq_cache(model, context, max_new_tokens, enc_mask)
    columns = tf.range(total, dtype=tf.int32)[None, :]
    ids = tf.concat([start[:, None], tf.fill(tf.stack([batch, max_new_tokens]), pad_id)], axis=1)

    def cond(step, token, ids, finished, cache):
        del token, ids, cache
        return tf.logical_and(step < total, tf.logical_not(tf.reduce_all(finished)))

    def body(step, token, ids, finished, cache):
        logits, cache = seq2seq_decode_step(model, cache, token, step - 1)
        token = sampling.sample_logits(logits, temperature, top_k, top_p, seed, step)
        token = tf.where(finished, pad_id, token)
        ids = tf.where(tf.equal(columns, step), token[:, None], ids)
        if eos_id is not None:
            finished = tf.logical_or(finished, tf.equal(token, eos_id))
        return step + 1, token, ids, finished, cache

    _, _, ids, _, _ = tf.while_loop(
        cond, body, (tf.constant(1, tf.int32), start, ids, tf.zeros([batch], tf.bool), cache))
    return ids
