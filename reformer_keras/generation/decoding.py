"""Cached autoregressive decoding for the causal `ReformerLM` (TensorFlow backend).

`generate` processes the prompt with one pass that fills per-layer caches (`prefill`), then
decodes token by token (`decode_step`) inside a `tf.while_loop`: the cost of a step is O(cache)
(a single query against cached keys), never a re-run of the prefix. Everything is graph-safe
(static loop-state shapes, caches preallocated to `max_length`, no Python callbacks, no Python
`if` on tensors), so it works eagerly, inside `tf.function`, and in an exported SavedModel that
wraps `init_cache` / `prefill` / `decode_step`.

The reversible stack at inference is y1 = x1 + f(x2), y2 = x2 + g(y1) per block (x1 = x2 = the
embeddings), then concat(y1, y2) -> final LayerNorm -> lm_head. The prefill runs exactly that,
calling each attention layer's own forward pass on the prompt, so its last-position logits equal
`model(prompt)[:, -1]`. A decode step runs it for one token, with each attention layer's own
cached step (`init_cache` / `prefill_cache` / `decode_step`, `layers/tf_cached_attention.py`)
and the feed-forward / LayerNorm sublayers called on (B, 1, D).

Exactness:
  * Full and local attention: every step's logits equal `model(prefix)[:, -1]` (up to float
    rounding): these layers are causal in the strict sense, a token's hidden state never depends
    on later tokens.
  * LSH attention: a step computes, for the new token t, exactly what the layer computes for the
    LAST token of the sequence 0..t given the cached keys: per round, tokens are sorted by
    (bucket, position), t's sorted index is s = #{j < t: b_j <= b_t}, key j's is
    s_j = #{i <= t: b_i < b_j} + #{i < j: b_i = b_j}, and t attends to the keys j <= t whose
    sorted chunk s_j // C is within [s // C - num_chunks_before, s // C + num_chunks_after]
    (self logit -1e5, masked -1e9, rounds combined by their logsumexps). It differs from
    `model(prefix)` in one respect: in a full forward pass over 0..t the EARLIER tokens are also
    re-sorted among all of 0..t, so adding a token with a smaller bucket shifts their sorted
    chunks and changes which keys they see. Their hidden states, and hence the keys/values that
    later LSH (or any later) layers see, change as the sequence grows. The cache keeps each
    token's hidden states as computed when it was decoded (or in the prefill, from the prompt
    pass), as a causal decoder must. Consequently a model whose only LSH layers come before no
    other attention layer (e.g. LSH as the last layer) still matches `model(prefix)` exactly,
    and so does `num_buckets=1` (sorting by position: causal shared-QK local attention);
    otherwise cached decoding is a (cheap, causal) approximation of re-running the prefix.
  * LSH hashing uses the layers' deterministic inference rotations (`hash_buckets` with seed
    None) and `num_hashes` of the layer. With `num_buckets=None` the layer's bucket count
    depends on the sequence length; decoding fixes it from the model's `max_len` (rounded up to
    the bucket size), so it matches a forward pass only on sequences of that padded length: use
    an explicit `num_buckets` for decoding that agrees with training-time hashing.
  * Computation is float32 (weights and LayerNorm outputs are cast), also under mixed precision.
"""

import tensorflow as tf

from reformer_keras import input_checks
from reformer_keras.generation import recompute_decoding, sampling
from reformer_keras.layers.axial_positional_embedding import AxialPositionalEmbedding

# The code is graph-safe as written (no Python control flow on tensors): autograph would only
# re-parse it (and the Keras layers) at every trace, which costs tens of seconds.
_no_autograph = tf.autograph.experimental.do_not_convert


def _check_model(model):
    backbone = getattr(model, "backbone", None)
    if backbone is None or not hasattr(backbone, "stack") or not hasattr(model, "lm_head"):
        raise ValueError(f"`model` must be a ReformerLM, got {type(model).__name__}.")
    if not backbone.causal:
        raise ValueError("`model` must be causal for autoregressive generation.")
    if not model.built:
        model.build((None, None))
    return backbone


def _attention_layers(model):
    """The causal self-attention layer of every block (each owns its cached decoding step)."""
    backbone = _check_model(model)
    return [f.layer for f, _ in backbone.stack.blocks]


@_no_autograph
def init_cache(model, batch, max_length):
    """Zero caches for `batch` sequences of up to `max_length` tokens.

    Args:
      model: a built causal `ReformerLM`.
      batch: Python int or scalar int tensor B.
      max_length: Python int M <= model.max_len (static: it sizes the loop state).
    Returns: a list (one per layer) of dicts of tensors; shapes in
      `reformer_keras/layers/tf_cached_attention.py`.
    """
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not (
            1 <= max_length <= model.max_len):
        raise ValueError(f"`max_length` must be an int in [1, model.max_len={model.max_len}], "
                         f"got {max_length!r}.")
    if recompute_decoding.applies(model):
        return recompute_decoding.init_cache(batch, max_length)
    return [layer.init_cache(batch, max_length, hash_length=model.backbone.max_len)
            for layer in _attention_layers(model)]


def _embed(backbone, ids, start):
    """ids (B, L) int -> (B, L, D) float32, with positions start .. start + L - 1."""
    x = backbone.token_embedding(ids)
    pe = backbone.position_embedding
    length = tf.shape(ids)[1]
    if isinstance(pe, AxialPositionalEmbedding):
        pos = tf.cast(pe.embeddings(length, offset=start), x.dtype)
    else:
        pos = pe(tf.range(length, dtype=tf.int32) + start)
    return tf.cast(x + tf.cast(pos, x.dtype)[None], tf.float32)


def _head(model, x1, x2):
    """Last-position logits (B, V) float32 from the two streams (B, L, D)."""
    hidden = model.backbone.final_norm(tf.concat([x1[:, -1:], x2[:, -1:]], axis=-1))
    return tf.cast(model.lm_head(hidden), tf.float32)[:, -1]


@_no_autograph
def prefill(model, cache, prompt_ids):
    """Runs the prompt through the model once, filling the caches.

    Args:
      cache: from `init_cache` (max_length >= P).
      prompt_ids: (B, P) int ids, P >= 1.
    Returns: (cache, logits (B, V) float32 of the next token after the prompt).
    """
    if recompute_decoding.applies(model):
        return recompute_decoding.prefill(model, cache, prompt_ids)
    backbone = _check_model(model)
    x1 = x2 = _embed(backbone, tf.cast(prompt_ids, tf.int32), 0)
    new_cache = []
    for (f, g), layer_cache in zip(backbone.stack.blocks, cache):
        h = f.norm(x2)
        new_cache.append(f.layer.prefill_cache(h, layer_cache))
        x1 = x1 + tf.cast(f.layer(h, training=False), tf.float32)
        x2 = x2 + tf.cast(g(x1, training=False), tf.float32)
    return new_cache, _head(model, x1, x2)


@_no_autograph
def decode_step(model, cache, token, position):
    """One decoding step: feeds `token` at `position`, returns the logits of the next token.

    Args:
      cache: the caches holding positions 0 .. position - 1.
      token: (B,) int ids of the token at `position`.
      position: scalar int (Python or tensor), < the cache's max_length.
    Returns: (logits (B, V) float32 for position + 1, cache now holding 0 .. position).
    """
    if recompute_decoding.applies(model):
        return recompute_decoding.decode_step(model, cache, token, position)
    backbone = _check_model(model)
    position = tf.cast(position, tf.int32)
    x1 = x2 = _embed(backbone, tf.reshape(tf.cast(token, tf.int32), (-1, 1)), position)
    new_cache = []
    for (f, g), layer_cache in zip(backbone.stack.blocks, cache):
        out, layer_cache = f.layer.decode_step(f.norm(x2), layer_cache, position)
        new_cache.append(layer_cache)
        x1 = x1 + out
        x2 = x2 + tf.cast(g(x1, training=False), tf.float32)
    return _head(model, x1, x2), new_cache


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (
            high is not None and value >= high):
        bound = f"in [{low}, {high})" if high is not None else f">= {low}"
        raise ValueError(f"`{name}` must be an integer {bound}, got {value!r}.")
    return value


def _check_id_batch(ids, name, vocab_size, max_len, what="the model's max_len"):
    """Validates a (batch, length) batch of token ids; returns the (asserted) ids tensor."""
    if not isinstance(ids, (tf.Tensor, tf.Variable)):
        try:
            ids = tf.convert_to_tensor(ids)
        except (ValueError, TypeError) as err:
            raise ValueError(f"`{name}` must be a (batch, length) array of integer token "
                             f"ids: {err}") from err
    if not ids.dtype.is_integer:
        raise ValueError(f"`{name}` must hold integer token ids, got dtype {ids.dtype.name}.")
    if ids.shape.rank != 2:
        raise ValueError(f"`{name}` must have rank 2 (batch, length), got shape "
                         f"{tuple(ids.shape)}.")
    if 0 in tuple(ids.shape):
        raise ValueError(f"`{name}` must not be empty, got shape {tuple(ids.shape)}.")
    length = ids.shape[1]
    if length is not None and length > max_len:
        raise ValueError(f"`{name}` has length {length}, longer than {what} {max_len}.")
    return input_checks.check_token_ids(ids, vocab_size, name=name)


def _check_prompt(model, prompt_ids, max_new_tokens):
    prompt_ids = _check_id_batch(prompt_ids, "prompt_ids", model.vocab_size, model.max_len)
    length = prompt_ids.shape[1]
    if length is None:
        raise ValueError("`prompt_ids` must have a static length (it sizes the output).")
    if length + max_new_tokens > model.max_len:
        raise ValueError(f"prompt length {length} + `max_new_tokens` {max_new_tokens} exceeds the "
                         f"model's max_len {model.max_len}.")
    return tf.cast(prompt_ids, tf.int32), length


@_no_autograph
def generate(model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
             seed=None, eos_id=None, pad_id=0, max_length=None):
    """Samples `max_new_tokens` tokens after `prompt_ids` with cached decoding.

    Args:
      model: a causal `ReformerLM` (dropout is not applied: inference mode).
      prompt_ids: (B, P) integer ids in [0, vocab), P >= 1 static; all rows share one length.
      max_new_tokens: Python int >= 0; P + max_new_tokens <= model.max_len.
      temperature: float >= 0; 0 is greedy decoding (top_k / top_p are then irrelevant).
      top_k: None or int >= 1: sample among the k most likely tokens.
      top_p: None or float in (0, 1]: nucleus sampling (smallest set with mass >= top_p).
      seed: None (fresh randomness per run), an int, or an int tensor (2,): stateless; the same
        seed gives the same tokens, eagerly and inside `tf.function` (not under XLA).
      eos_id: optional end-of-sequence id: after a row emits it, its later tokens are `pad_id`;
        the loop stops early once every row has finished.
      pad_id: id written after `eos_id` (default 0).
      max_length: cache size (default P + max_new_tokens); a larger static value lets an export
        reuse one cache shape. Must be in [P + max_new_tokens, model.max_len].
    Returns: (B, P + max_new_tokens) int32: the prompt followed by the generated tokens.
    """
    _check_model(model)
    _check_int("max_new_tokens", max_new_tokens, 0)
    temperature, top_k, top_p = sampling.check_sampling_args(temperature, top_k, top_p)
    vocab = model.vocab_size
    if eos_id is not None:
        _check_int("eos_id", eos_id, 0, vocab)
    _check_int("pad_id", pad_id, 0, vocab)
    prompt, length = _check_prompt(model, prompt_ids, max_new_tokens)
    total = length + max_new_tokens
    if max_length is None:
        max_length = total
    elif (isinstance(max_length, bool) or not isinstance(max_length, int)
          or not total <= max_length <= model.max_len):
        raise ValueError(f"`max_length` must be an int in [prompt length + max_new_tokens = "
                         f"{total}, model.max_len = {model.max_len}], got {max_length!r}.")
    seed = sampling.make_seed(seed)
    if max_new_tokens == 0:
        return prompt

    batch = tf.shape(prompt)[0]
    cache, logits = prefill(model, init_cache(model, batch, max_length), prompt)
    columns = tf.range(total, dtype=tf.int32)[None, :]

    def emit(ids, finished, logits, position):
        token = sampling.sample_logits(logits, temperature, top_k, top_p, seed, position)
        token = tf.where(finished, pad_id, token)
        ids = tf.where(tf.equal(columns, position), token[:, None], ids)
        if eos_id is not None:
            finished = tf.logical_or(finished, tf.equal(token, eos_id))
        return ids, finished, token

    ids = tf.concat([prompt, tf.fill(tf.stack([batch, max_new_tokens]), pad_id)], axis=1)
    ids, finished, token = emit(ids, tf.zeros([batch], tf.bool), logits, length)

    def cond(step, token, ids, finished, cache):
        del token, ids, cache
        return tf.logical_and(step < total, tf.logical_not(tf.reduce_all(finished)))

    def body(step, token, ids, finished, cache):
        logits, cache = decode_step(model, cache, token, step - 1)
        ids, finished, token = emit(ids, finished, logits, step)
        return step + 1, token, ids, finished, cache

    _, _, ids, _, _ = tf.while_loop(
        cond, body, (tf.constant(length + 1, tf.int32), token, ids, finished, cache))
    return ids
