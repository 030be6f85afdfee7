"""Sampling filters against NumPy references (MUST 5)."""

import numpy as np
import pytest
import tensorflow as tf

from generation_helpers import random_ids, tiny_lm
from reformer_keras.generation import filter_logits, generate, sample_logits

LOGITS = np.array([[2.0, 0.5, -1.0, 1.2, 0.0, 3.1, -0.3, 0.9],
                   [0.1, 0.2, 0.3, 0.4, -2.0, 1.5, 1.4, -0.5]], "float32")


def numpy_top_p(logits, p):
    """Keeps the smallest set of most likely tokens whose mass is >= p."""
    out = np.full_like(logits, -np.inf)
    for i, row in enumerate(logits):
        probs = np.exp(row - row.max())
        probs /= probs.sum()
        order = np.argsort(-probs)
        size = 1
        while size < len(row) and probs[order[:size]].sum() < p:  # until the mass reaches p
            size += 1
        out[i, order[:size]] = row[order[:size]]
    return out


def numpy_top_k(logits, k):
    kth = np.sort(logits, axis=-1)[:, -k][:, None]
    return np.where(logits >= kth, logits, -np.inf)


@pytest.mark.parametrize("p", [0.05, 0.3, 0.5, 0.8, 0.95, 0.999, 1.0])
def test_top_p_keeps_smallest_set_reaching_p(p):
    np.testing.assert_array_equal(np.asarray(filter_logits(LOGITS, top_p=p)),
                                  numpy_top_p(LOGITS, p))


@pytest.mark.parametrize("k", [1, 3, 8, 50])
def test_top_k(k):
    np.testing.assert_array_equal(np.asarray(filter_logits(LOGITS, top_k=k)),
                                  numpy_top_k(LOGITS, min(k, 8)))


def test_top_k_then_top_p_on_the_renormalised_distribution():
    expected = numpy_top_p(numpy_top_k(LOGITS, 4), 0.7)
    np.testing.assert_array_equal(np.asarray(filter_logits(LOGITS, top_k=4, top_p=0.7)),
                                  expected)


def test_sample_frequencies_follow_filtered_softmax():
    rows = 20000
    logits = np.repeat(LOGITS[:1], rows, axis=0)
    seed = tf.constant([1, 2], tf.int64)
    tokens = np.asarray(sample_logits(logits, 0.7, 5, 0.9, seed, position=3))
    kept = numpy_top_p(numpy_top_k(LOGITS[:1] / 0.7, 5), 0.9)[0]
    probs = np.exp(kept - kept.max())
    probs /= probs.sum()
    freq = np.bincount(tokens, minlength=8) / rows
    np.testing.assert_allclose(freq, probs, atol=0.015)
    assert np.all(freq[probs == 0] == 0)
    # Same seed and position: same draw; the position changes the draw.
    np.testing.assert_array_equal(np.asarray(sample_logits(logits, 0.7, 5, 0.9, seed, 3)), tokens)
    assert not np.array_equal(np.asarray(sample_logits(logits, 0.7, 5, 0.9, seed, 4)), tokens)


def test_top_k_1_equals_greedy():
    model = tiny_lm(("local",), seed=8)
    prompt = random_ids(2, 3, seed=8)
    greedy = np.asarray(generate(model, prompt, 10, temperature=0.0))
    top1 = np.asarray(generate(model, prompt, 10, temperature=1.3, top_k=1, seed=4))
    np.testing.assert_array_equal(top1, greedy)
