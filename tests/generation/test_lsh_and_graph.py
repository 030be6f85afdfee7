"""General LSH decoding (MUST 2) and generation inside `tf.function` (MUST 4).

LSH with several buckets in a multi-layer model has no exact full-forward reference (see
`reformer_keras.generation.decoding`), so these tests check validity, seeding, eager/graph
agreement, and the cost of a step from the structure of its graph.
"""

import collections

import numpy as np
import tensorflow as tf

from generation_helpers import VOCAB, random_ids, tiny_lm
from reformer_keras.generation import decode_step, generate, init_cache

SAMPLING = dict(temperature=0.8, top_k=8, top_p=0.9)


def test_lsh_sampling_valid_seeded_and_same_in_tf_function():
    # num_buckets=None: decoding fixes the bucket count from max_len (the documented rule).
    model = tiny_lm(("lsh", "lsh"), num_buckets=None, max_len=40)
    prompt = random_ids(2, 6, seed=3)
    eager = np.asarray(generate(model, prompt, 16, seed=tf.constant([5, 1]), **SAMPLING))

    # Graph mode through the model method (which delegates to `generate`): one trace, a
    # tf.while_loop inside, the seed a tensor argument as in an export.
    fn = tf.function(lambda p, s: model.generate(p, 16, seed=s, **SAMPLING))
    graph = fn(tf.constant(prompt), tf.constant([5, 1]))
    again = fn(tf.constant(prompt), tf.constant([5, 1]))
    other = fn(tf.constant(prompt), tf.constant([6, 1]))
    assert eager.shape == (2, 22) and eager.dtype == np.int32
    np.testing.assert_array_equal(eager[:, :6], prompt)
    assert eager.min() >= 0 and eager.max() < VOCAB
    np.testing.assert_array_equal(np.asarray(graph), eager)   # eager == tf.function
    np.testing.assert_array_equal(np.asarray(again), eager)   # same seed, same samples
    assert not np.array_equal(np.asarray(other), eager)       # another seed, other samples
    assert "While" in {op.type for op in fn.get_concrete_function(
        tf.TensorSpec((2, 6), tf.int32), tf.TensorSpec((2,), tf.int32)).graph.get_operations()}


def test_eos_pads_the_rest_of_each_row():
    model = tiny_lm(("local",), seed=4)
    prompt = random_ids(3, 2, seed=4)
    free = np.asarray(generate(model, prompt, 12, seed=2))
    eos = int(free[0, 4])  # row 0 emits this id at position 4
    out = np.asarray(generate(model, prompt, 12, seed=2, eos_id=eos, pad_id=VOCAB - 1))
    for row, ref in zip(out, free):
        gen, ref_gen = row[2:], ref[2:]
        hits = np.flatnonzero(ref_gen == eos)
        stop = hits[0] + 1 if hits.size else len(ref_gen)
        np.testing.assert_array_equal(gen[:stop], ref_gen[:stop])
        assert np.all(gen[stop:] == VOCAB - 1)
    assert np.all(out[0, 5:] == VOCAB - 1)


def _step_graph(model, max_length):
    """Op types and the largest static tensor size in the graph of one decode step."""
    cache = init_cache(model, 2, max_length)
    spec = tf.nest.map_structure(lambda t: tf.TensorSpec(t.shape, t.dtype), cache)
    fn = tf.function(lambda c, tok, pos: decode_step(model, c, tok, pos))
    graph = fn.get_concrete_function(spec, tf.TensorSpec((2,), tf.int32),
                                     tf.TensorSpec((), tf.int32)).graph
    ops = graph.get_operations()
    sizes = [out.shape.num_elements() for op in ops for out in op.outputs
             if out.shape.is_fully_defined()]
    return collections.Counter(op.type for op in ops), max(sizes)


def test_lsh_step_cost_is_linear_in_cache_and_never_reruns_the_prefix():
    model = tiny_lm(("lsh", "lsh"), num_buckets=4, max_len=64)
    types_32, biggest_32 = _step_graph(model, 32)
    types_64, biggest_64 = _step_graph(model, 64)
    # The same ops whatever the cache size (and position is a tensor: one graph for all steps).
    assert types_32 == types_64
    # No sorting (the layer's forward sorts the whole sequence per round), no embedding or
    # attention over a (length, length) or (length, window) block: the largest tensor is a
    # per-round row over the cache, (B, H, n, 1, M) logits or the (B, H, M, dh) caches.
    assert not {"TopKV2", "Sort", "ArgSort"} & set(types_64), types_64
    batch, heads, rounds, head_dim = 2, 2, 2, 8
    assert biggest_64 <= batch * heads * max(rounds, head_dim) * 64
    assert biggest_64 <= 2 * biggest_32
