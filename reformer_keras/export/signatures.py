"""Graph functions behind the exported serving signatures (TensorFlow backend).

Every function here is graph-safe (no Python control flow on tensors), takes tensors and returns
a dict of named tensors, so `saved_model.export_model` can wrap it in a `tf.function` with an
explicit input signature. Bad requests fail inside the graph with `tf.debugging` assertions whose
messages name the problem (an `InvalidArgumentError` at serving time).

Notation: B batch, L length, V the model's output vocabulary, M the generation cache length
(static, default the model's max_len).

  logits_fn(model, token_ids (B, L) int32)                  -> {"logits": (B, L, V) float32}
  score_text_fn(model, tokenizer, text (B,) string)         -> {"token_ids": (B, T) int32,
        "log_probs": (B, T) float32, "bits_per_char": (B,) float32}
  generate_text_fn(model, tokenizer, M, prompt (B,) string, max_new_tokens () int32,
        temperature () float32, top_k () int32, seed () int64)
        -> {"text": (B,) string, "continuation": (B,) string, "token_ids": (B, 1 + P + N) int32}
        (each row generated as if alone: prompts of a batch may differ in length)
  sample_images_fn(model, count () int32, seed () int64[, class_id () int32])
        -> {"images": (count, H, W, C) uint8}
  generate_events_fn(model, M, prompt_ids (B, P) int32, max_new_tokens () int32, seed () int64)
        -> {"event_ids": (B, P + N) int32}

Sampling (`sample_tokens`) uses exactly the ops of `reformer_keras.generation.sample_logits`
(temperature division, top-k threshold, Gumbel-max over `stateless_uniform` keyed by the seed
folded with the token's absolute position), with temperature and top_k as tensors, so for the
same integer seed `s` the signatures reproduce `generation.generate(..., seed=s)` token for
token (temperature 0 = greedy; top_k 0 = no top-k filter); generate_text reproduces it for each
prompt on its own.
"""

import math

import numpy as np
import tensorflow as tf

from reformer_keras.generation import decode_step, init_cache, prefill

_no_autograph = tf.autograph.experimental.do_not_convert


def _checked(value, checks):
    """`value` with a control dependency on the assertion ops `checks`."""
    with tf.control_dependencies(checks):
        return tf.identity(value)


def declared(x, spec):
    """`x` checked at run time against its signature's declared shape `spec.shape`.

    A loaded signature (and TF Serving) feeds a request's tensor without comparing its shape
    with the declared one, and graph optimisation folds rank checks to the declared rank; the
    EnsureShape op checks the tensor actually fed: InvalidArgumentError "Shape of tensor
    <input> [...] is not compatible with expected shape [...]"."""
    return tf.raw_ops.EnsureShape(input=x, shape=spec.shape, name=spec.name)


def as_rank2(x, name):
    """x of any rank -> (B, L) with static rank 2, asserting (in the graph) that x has rank 2.

    Not `tf.ensure_shape`: its own, less clear, error can fire before the assertion. A tensor of
    another rank is reshaped to (size, 1) (always valid) while the assertion fails the request.
    """
    ok = tf.equal(tf.rank(x), 2)
    dims = tf.concat([tf.shape(x), [1, 1]], axis=0)
    check = tf.debugging.Assert(ok, [f"`{name}` must have rank 2 (batch, length), got shape",
                                     tf.shape(x)])
    with tf.control_dependencies([check]):
        return tf.reshape(x, tf.stack([tf.where(ok, dims[0], tf.size(x)),
                                       tf.where(ok, dims[1], 1)]))


def check_token_ids(token_ids, vocab_size, max_len, name="token_ids"):
    """Asserts rank 2, 1 <= length <= max_len and ids in [0, vocab_size). Returns (B, L) int32."""
    token_ids = as_rank2(token_ids, name)
    length = tf.shape(token_ids)[1]
    checks = [
        tf.debugging.assert_positive(length, message=f"`{name}` must not be empty (length 0)"),
        tf.debugging.assert_less_equal(
            length, max_len, message=f"`{name}` is too long: length must be <= the model's "
                                     f"max_len {max_len}"),
        tf.debugging.assert_non_negative(
            token_ids, message=f"`{name}` out of range: ids must be in [0, vocab_size="
                               f"{vocab_size})"),
        tf.debugging.assert_less(
            token_ids, tf.constant(vocab_size, token_ids.dtype),
            message=f"`{name}` out of range: ids must be in [0, vocab_size={vocab_size})"),
    ]
    return tf.cast(_checked(token_ids, checks), tf.int32)


def _seed_pair(seed):
    """() int -> (2,) int64, the seed `generation.make_seed(int)` makes: [seed, 0]."""
    seed = tf.cast(seed, tf.int64)
    seed = _checked(seed, [tf.debugging.assert_non_negative(seed, message="`seed` must be >= 0")])
    return tf.stack([seed, tf.constant(0, tf.int64)])


def sample_tokens(logits, temperature, top_k, seed, position):
    """logits (B, V) float32, temperature () float32 (0 = greedy), top_k () int32 (0 = off),
    seed (2,) int64, position () int32 (absolute position of the token) -> (B,) int32."""
    logits = tf.cast(logits, tf.float32)
    vocab = logits.shape[-1]
    greedy = tf.argmax(logits, axis=-1, output_type=tf.int32)
    scaled = logits / tf.where(temperature > 0, temperature, tf.ones_like(temperature))
    k = tf.where(top_k > 0, tf.minimum(top_k, vocab), vocab)
    kth = tf.math.top_k(scaled, k=k).values[:, -1:]
    scaled = tf.where(scaled < kth, tf.constant(-math.inf, tf.float32), scaled)
    step_seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(position, tf.int64))
    uniform = tf.random.stateless_uniform(tf.shape(scaled), seed=step_seed,
                                          minval=np.finfo(np.float32).tiny, maxval=1.0)
    sampled = tf.argmax(scaled - tf.math.log(-tf.math.log(uniform)), axis=-1,
                        output_type=tf.int32)
    return tf.where(temperature > 0, sampled, greedy)


@_no_autograph
def sample_loop(model, prompt, num_new, temperature, top_k, seed, cache_length):
    """Cached sampling in a `tf.while_loop` (the same steps as `generation.generate`).

    Args:
      prompt: (B, P) int32, P >= 1 (dynamic); num_new: () int32 >= 1, P + num_new <=
        cache_length + 1 (the last token is sampled, never fed); seed (2,) int64;
      cache_length: Python int M <= model.max_len (static cache size).
    Returns: (B, P + num_new) int32, the prompt followed by the sampled tokens.
    """
    batch, length = tf.shape(prompt)[0], tf.shape(prompt)[1]
    total = length + num_new
    columns = cache_length + 1
    cache, logits = prefill(model, init_cache(model, batch, cache_length), prompt)
    column = tf.range(columns, dtype=tf.int32)[None, :]

    def emit(ids, logits, position):
        token = sample_tokens(logits, temperature, top_k, seed, position)
        return tf.where(tf.equal(column, position), token[:, None], ids), token

    ids = tf.pad(prompt, [[0, 0], [0, columns - length]])
    ids = tf.ensure_shape(ids, [None, columns])
    ids, token = emit(ids, logits, length)

    def body(step, token, ids, cache):
        logits, cache = decode_step(model, cache, token, step - 1)
        ids, token = emit(ids, logits, step)
        return step + 1, token, ids, cache

    _, _, ids, _ = tf.while_loop(lambda step, *_: step < total, body,
                                 (length + 1, token, ids, cache))
    return ids[:, :total]


def _check_new_tokens(num_new, prompt_length, limit, what):
    return _checked(num_new, [
        tf.debugging.assert_positive(num_new, message="`max_new_tokens` must be >= 1"),
        tf.debugging.assert_less_equal(  # (not length + num_new: int32 overflow)
            num_new, limit - prompt_length,
            message=f"too long: {what} + `max_new_tokens` must be <= {limit} tokens (the "
                    "export's generation length)")])


def logits_fn(model, token_ids):
    """token_ids (B, L) int32, 1 <= L <= max_len -> {"logits": (B, L, V) float32}."""
    ids = check_token_ids(token_ids, model.vocab_size, model.max_len)
    return {"logits": tf.cast(model(ids, training=False), tf.float32)}


def _text_ids(tokenizer, text, what):
    """text (B,) string -> ragged (B, None) int32 ids, asserting no string is empty."""
    ragged = tokenizer.tokenize(text)
    lengths = ragged.row_lengths()
    ragged = ragged.with_flat_values(_checked(ragged.flat_values, [
        tf.debugging.assert_positive(lengths, message=f"empty string in `{what}`: every string "
                                                      "must have at least one byte")]))
    return ragged, tf.cast(lengths, tf.int32)


def score_text_fn(model, tokenizer, text):
    """text (B,) string -> per-byte log-probabilities under the model.

    The model input is [start (eos)] + bytes[:-1] (padded with 0 and masked), T = longest text.
    Returns {"token_ids": (B, T) int32 (0-padded), "log_probs": (B, T) float32 natural-log
    probability of each token (0 on padding), "bits_per_char": (B,) float32 (per byte)}.
    """
    ragged, lengths = _text_ids(tokenizer, text, "text")
    ids = ragged.to_tensor(default_value=tokenizer.pad_id)
    width = tf.shape(ids)[1]
    ids = _checked(ids, [tf.debugging.assert_less_equal(
        width, model.max_len, message=f"`text` is too long: at most max_len={model.max_len} "
                                      "bytes can be scored")])
    batch = tf.shape(ids)[0]
    start = tf.fill(tf.stack([batch, 1]), tf.constant(tokenizer.eos_id, tf.int32))
    inputs = tf.concat([start, ids[:, :-1]], axis=1)
    mask = tf.range(width)[None, :] < lengths[:, None]
    logits = model({"token_ids": inputs, "padding_mask": mask}, training=False)
    log_probs = tf.gather(tf.nn.log_softmax(tf.cast(logits, tf.float32)), ids, batch_dims=2)
    log_probs = tf.where(mask, log_probs, 0.0)
    bits = -tf.reduce_sum(log_probs, axis=1) / (math.log(2.0) * tf.cast(lengths, tf.float32))
    return {"token_ids": ids, "log_probs": log_probs, "bits_per_char": bits}


def generate_text_fn(model, tokenizer, cache_length, prompt, max_new_tokens, temperature,
                     top_k, seed):
    """prompt (B,) string (non-empty, any byte lengths P_b), max_new_tokens () int32,
    temperature () float32, top_k () int32, seed () int -> {"text": (B,) string (prompt +
    continuation), "continuation": (B,) string, "token_ids": (B, 1 + P + N) int32 (with the
    start token; P = the longest prompt, shorter rows end with pad ids)}. Generation stops at N
    tokens (eos / pad ids are dropped from the strings).

    Each row is generated on its own (a `tf.map_fn` over the batch), so its result is exactly
    the one the same prompt gets in a request of its own, whatever else a server batched with
    it; the cost is B sequential decoding loops instead of one batched loop."""
    ragged, lengths = _text_ids(tokenizer, prompt, "prompt")
    ids = ragged.to_tensor(default_value=tokenizer.pad_id)
    width = tf.shape(ids)[1] + 1
    num_new = _check_new_tokens(max_new_tokens, width, cache_length,
                                "1 (start) + prompt bytes")
    temperature = _checked(temperature, [tf.debugging.assert_non_negative(
        temperature, message="`temperature` must be >= 0 (0 = greedy)")])
    top_k = _checked(top_k, [tf.debugging.assert_non_negative(
        top_k, message="`top_k` must be >= 0 (0 = no top-k filter)")])
    seed = _seed_pair(seed)
    columns = cache_length + 1
    start = tf.constant([tokenizer.eos_id], tf.int32)

    def one_row(index):
        length = lengths[index] + 1
        row = tf.concat([start, ids[index, :lengths[index]]], axis=0)[None]
        out = sample_loop(model, row, num_new, temperature, top_k, seed, cache_length)[0]
        padded = tf.pad(out, [[0, columns - tf.shape(out)[0]]],
                        constant_values=tokenizer.pad_id)
        return (tokenizer.detokenize(out[None])[0],
                tokenizer.detokenize(out[None, length:])[0], padded)

    text, continuation, padded = tf.map_fn(
        one_row, tf.range(tf.shape(ids)[0]), parallel_iterations=1,
        fn_output_signature=(tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.string),
                             tf.TensorSpec([columns], tf.int32)))
    return {"text": text, "continuation": continuation, "token_ids": padded[:, :width + num_new]}


def sample_images_fn(model, count, seed, class_id=None):
    """count () int32 >= 1, seed () int, class_id () int32 (class-conditional models only)
    -> {"images": (count, H, W, C) uint8}: every value sampled (temperature 1) with the cache."""
    pre = model.preprocessor
    count = _checked(count, [tf.debugging.assert_positive(count, message="`count` must be >= 1")])
    start = pre.vocab_size - (pre.num_classes or 1)  # 256
    if class_id is not None:
        class_id = _checked(class_id, [
            tf.debugging.assert_non_negative(class_id, message="`class_id` out of range"),
            tf.debugging.assert_less(class_id, pre.num_classes, message=(
                f"`class_id` out of range: must be in [0, num_classes={pre.num_classes})"))])
        start = start + class_id
    prompt = tf.fill(tf.stack([count, 1]), tf.cast(start, tf.int32))
    length = pre.sequence_length
    ids = sample_loop(model, prompt, tf.constant(length, tf.int32), tf.constant(1.0),
                      tf.constant(0), _seed_pair(seed), length)
    images = tf.reshape(ids[:, 1:], tf.concat([[count], list(pre.image_shape)], axis=0))
    return {"images": tf.cast(images, tf.uint8)}


def generate_events_fn(model, cache_length, prompt_ids, max_new_tokens, seed):
    """prompt_ids (B, P) int32 event ids (P >= 0; the start token is prepended), max_new_tokens
    () int32, seed () int -> {"event_ids": (B, P + N) int32} (prompt + sampled, no start)."""
    prompt = prompt_ids  # (B, P): rank fixed by the signature
    vocab = model.vocab_size
    prompt = _checked(prompt, [
        tf.debugging.assert_non_negative(prompt, message=f"`prompt_ids` out of range: ids must "
                                                         f"be in [0, vocab_size={vocab})"),
        tf.debugging.assert_less(prompt, vocab, message=f"`prompt_ids` out of range: ids must "
                                                        f"be in [0, vocab_size={vocab})")])
    batch, length = tf.shape(prompt)[0], tf.shape(prompt)[1] + 1
    start = tf.fill(tf.stack([batch, 1]), tf.constant(model.start_id, tf.int32))
    ids = tf.concat([start, tf.cast(prompt, tf.int32)], axis=1)
    num_new = _check_new_tokens(max_new_tokens, length, cache_length, "1 (start) + prompt")
    out = sample_loop(model, ids, num_new, tf.constant(1.0), tf.constant(0), _seed_pair(seed),
                      cache_length)
    return {"event_ids": out[:, 1:]}
