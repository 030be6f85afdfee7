"""Decoding by re-running the model on the whole prefix at every step (TensorFlow backend).

For models whose attention is Hugging Face's (`hf_lsh` / `hf_local` attention types, from
`reformer_keras.convert`): their LSH layers re-sort every earlier token when the sequence grows,
so the next-token logits of a prefix are those of a full forward pass over it, which this
computes (O(prefix) per step). The cache is the token buffer; `decoding.init_cache`, `prefill`
and `decode_step` delegate here for such models, so `generate` and the exported sampling
signatures use it unchanged.

Cache: [{"ids": (B, M) int32}], M = max_length (static).
"""

import weakref

import tensorflow as tf

_no_autograph = tf.autograph.experimental.do_not_convert
_FORWARD = weakref.WeakKeyDictionary()  # model -> its traced forward pass (any length)


def applies(model):
    """Whether `model`'s decoding re-runs the prefix (it has Hugging Face attention layers)."""
    types = getattr(getattr(model, "backbone", None), "attention_types", ())
    return any(str(t).startswith("hf_") for t in types)


def init_cache(batch, max_length):
    """[{"ids": zeros (B, M) int32}]."""
    return [{"ids": tf.zeros(tf.stack([batch, max_length]), tf.int32)}]


def _forward(model):
    """`model(ids)` as one `tf.function` traced for (B, L) of any sizes: eager decoding runs
    each step as one graph call instead of op by op."""
    if model not in _FORWARD:
        _FORWARD[model] = tf.function(
            lambda ids: tf.cast(model(ids, training=False), tf.float32),
            input_signature=[tf.TensorSpec([None, None], tf.int32)], autograph=False)
    return _FORWARD[model]


def _last_logits(model, ids):
    return _forward(model)(tf.cast(ids, tf.int32))[:, -1]


@_no_autograph
def prefill(model, cache, prompt_ids):
    """Writes the prompt (B, P) into the buffer; returns (cache, logits (B, V) after it)."""
    prompt = tf.cast(prompt_ids, tf.int32)
    buffer = cache[0]["ids"]
    width = buffer.shape[1] if buffer.shape[1] is not None else tf.shape(buffer)[1]
    ids = tf.pad(prompt, [[0, 0], [0, width - tf.shape(prompt)[1]]])
    ids = tf.ensure_shape(ids, buffer.shape)
    return [{"ids": ids}], _last_logits(model, prompt)


@_no_autograph
def decode_step(model, cache, token, position):
    """Writes `token` (B,) at `position`; returns (logits (B, V) of the next token, cache)."""
    ids = cache[0]["ids"]
    position = tf.cast(position, tf.int32)
    column = tf.range(tf.shape(ids)[1], dtype=tf.int32)[None, :]
    ids = tf.where(tf.equal(column, position), tf.reshape(tf.cast(token, tf.int32), (-1, 1)),
                   ids)
    return _last_logits(model, ids[:, :position + 1]), [{"ids": ids}]
