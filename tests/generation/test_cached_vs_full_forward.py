"""Cached decoding against the full forward pass: at every step, the logits of `decode_step`
equal `model(prefix)[:, -1]` (MUST 1), and greedy generation equals an uncached greedy loop that
re-runs the prefix (MUST 3)."""

import numpy as np
import pytest
import tensorflow as tf

from generation_helpers import attention_layers, random_ids, tiny_lm
from reformer_keras.generation import decode_step, generate, init_cache, prefill


def _lsh_last_no_duplicates():
    # General LSH (4 buckets, 2 rounds, set-union correction, one chunk after). As the last
    # layer it sees only hidden states of strictly causal layers, so it must be exact too.
    model = tiny_lm(("local", "full", "lsh"), num_buckets=4)
    lsh = attention_layers(model)[2]
    lsh.allow_duplicate_attention = False
    lsh.num_chunks_after = 1
    return model


def _lsh1_axial_wide_local():
    # LSH with one bucket (= causal shared-QK local attention), axial positions, and a local
    # layer looking two chunks back.
    model = tiny_lm(("lsh", "local", "full"), num_buckets=1, axial_shape=(4, 8))
    attention_layers(model)[1].num_chunks_before = 2
    return model


MODELS = {
    "lsh1-local2-full-axial": _lsh1_axial_wide_local,
    "local-full-lsh4-nodup-after1": _lsh_last_no_duplicates,
}


def full_forward_fn(model, batch):
    """`model(prefix)` for any prefix length, traced once (the reference; fast on CPU)."""
    return tf.function(lambda ids: model(ids),
                       input_signature=[tf.TensorSpec((batch, None), tf.int32)])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_step_matches_full_forward(name):
    model = MODELS[name]()
    forward = full_forward_fn(model, 2)
    step = tf.function(lambda cache, token, t: decode_step(model, cache, token, t))
    seq = random_ids(2, 28, seed=1)
    prompt_len = 5
    cache = init_cache(model, 2, max_length=28)
    cache, logits = prefill(model, cache, seq[:, :prompt_len])
    for t in range(prompt_len, 28):  # 23 steps, chunk 4: prefixes spanning 2..7 chunks
        expected = np.asarray(forward(seq[:, :t]))[:, -1]
        np.testing.assert_allclose(np.asarray(logits), expected, atol=1e-4,
                                   err_msg=f"{name}: logits after prefix of length {t}")
        logits, cache = step(cache, seq[:, t], tf.constant(t))


def test_greedy_equals_uncached_greedy_loop():
    model = tiny_lm(("local", "full"), seed=11)
    forward = full_forward_fn(model, 2)
    prompt = random_ids(2, 3, seed=2)
    out = np.asarray(generate(model, prompt, max_new_tokens=21, temperature=0.0))  # eager
    ids = prompt
    for _ in range(21):
        next_ids = np.argmax(np.asarray(forward(ids))[:, -1], axis=-1).astype("int32")
        ids = np.concatenate([ids, next_ids[:, None]], axis=1)
    assert out.dtype == np.int32 and out.shape == (2, 24)
    np.testing.assert_array_equal(out, ids)
