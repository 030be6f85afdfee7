"""Each attention layer's own cached decoding step (`init_cache` / `prefill_cache` /
`decode_step`) against the layer's full forward pass over the prefix: at every position t,
`decode_step` gives `call(x[:, :t + 1])[:, t]` (full, local, LSH: one layer sees no earlier
re-sorting, see `tf_cached_attention`; cross-attention: `call(x, context)[:, t]`). And
`reformer_keras.generation` reaches no private member of any object."""

import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import FullSelfAttention, LocalSelfAttention, LSHSelfAttention
from reformer_keras.layers.cross_attention import CrossAttention

B, L, D, PROMPT = 2, 12, 16, 5


def _layers():
    return {
        "full": FullSelfAttention(2, 8, causal=True, seed=1),
        "full_shared_qk": FullSelfAttention(2, 8, causal=True, shared_qk=True, seed=2),
        "local": LocalSelfAttention(2, 8, chunk_size=4, num_chunks_before=1, causal=True,
                                    seed=3),
        "lsh": LSHSelfAttention(2, 8, bucket_size=4, num_hashes=2, num_buckets=4, causal=True,
                                seed=4),
        "lsh_no_duplicates": LSHSelfAttention(2, 8, bucket_size=4, num_hashes=3, num_buckets=2,
                                              causal=True, allow_duplicate_attention=False,
                                              seed=5),
    }


@pytest.mark.parametrize("name", list(_layers()))
def test_decode_step_equals_the_forward_pass_over_the_prefix(name):
    layer = _layers()[name]
    x = tf.constant(np.random.default_rng(0).normal(size=(B, L, D)).astype("float32"))
    layer(x)
    cache = layer.prefill_cache(x[:, :PROMPT], layer.init_cache(B, L))
    for t in range(PROMPT, L):
        y_t, cache = layer.decode_step(x[:, t:t + 1], cache, t)
        want = layer(x[:, :t + 1], training=False)[:, t:t + 1]
        np.testing.assert_allclose(y_t.numpy(), want.numpy(), atol=2e-5, rtol=1e-4,
                                   err_msg=f"{name}, position {t}")


def test_cache_dtype_stores_keys_and_values_in_that_dtype():
    layer = _layers()["full"]
    x = tf.constant(np.random.default_rng(1).normal(size=(B, L, D)).astype("float32"))
    layer(x)
    cache = layer.init_cache(B, L, dtype="bfloat16")
    assert cache["k"].dtype == tf.bfloat16 and cache["k"].shape == (B, 2, L, 8)
    cache = layer.prefill_cache(x[:, :PROMPT], cache)
    y_t, cache = layer.decode_step(x[:, PROMPT:PROMPT + 1], cache, PROMPT)
    want = layer(x[:, :PROMPT + 1])[:, PROMPT:]
    assert cache["v"].dtype == tf.bfloat16
    np.testing.assert_allclose(y_t.numpy(), want.numpy(), atol=0.05)


def test_cross_attention_decode_step_equals_its_call():
    layer = CrossAttention(2, 8, seed=6)
    rng = np.random.default_rng(2)
    x = tf.constant(rng.normal(size=(B, 3, D)).astype("float32"))
    context = tf.constant(rng.normal(size=(B, 7, 10)).astype("float32"))
    mask = tf.constant([[1] * 7, [1] * 4 + [0] * 3])
    want = layer(x, context, context_mask=mask)
    cache = layer.init_cache(context, mask)
    for t in range(3):
        y_t, cache = layer.decode_step(x[:, t:t + 1], cache, t)
        np.testing.assert_allclose(y_t.numpy(), want[:, t:t + 1].numpy(), atol=2e-5, rtol=1e-4)


def test_non_causal_layer_has_no_cache():
    with pytest.raises(ValueError, match="causal"):
        layer = FullSelfAttention(2, 8)
        layer(tf.zeros((1, 4, D)))
        layer.init_cache(1, 4)


def test_generation_touches_no_private_member():
    root = pathlib.Path(__file__).resolve().parents[2] / "reformer_keras" / "generation"
    found = [f"{path.name}:{n}: {line.strip()}" for path in sorted(root.glob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if re.search(r"(?<!\bself)\._[a-z]", line.split("#")[0])]
    assert not found, found
