"""What a long training step allocates, from TensorFlow's allocator (one memory-mode LSH layer
of the peer LM at 16K tokens: `attn_chunks=8`, chunked feed-forward backward).

- After the step the allocator holds the weights and the optimizer's slots, not zero tensors of
  shape (B, L, d_model) that grappler folded into constants (see
  `reformer_keras.runtime.GRAPH_SETTINGS` and `layers/tf_custom_gradient.py`). Needs a length at
  which grappler's memory optimizer rewrites gradient sums (it did not at 1K, it did at 16K).
- The step's peak stays near the activations the reversible backward pass must hold (the two
  streams, their gradients, the reconstructed input, the normed branch input, one (head, round)
  group's windows and scores): 15.4-16.4 KiB per token measured; 21.7-22.3 before the layer
  norm's lean gradient, the half-block function calls and the ordered attention recompute
  (`layers/tf_layer_norm.py`, `layers/tf_reversible.py`, `layers/tf_sequential_attention.py`).
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import common

LENGTH = 16384


@pytest.fixture(scope="module")
def step_memory():
    model = common.build_lm(LENGTH, 1, "lsh", True, attn_chunks=8, ff_chunked_backward=True)
    model.build((1, LENGTH))
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = np.random.default_rng(0).integers(0, 256, size=(1, LENGTH + 1), dtype="int32")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    model.train_on_batch(data[:, :-1], data[:, 1:])         # traces, creates Adam's slots
    tf.config.experimental.reset_memory_stats("CPU:0")
    model.train_on_batch(data[:, :-1], data[:, 1:])
    info = tf.config.experimental.get_memory_info("CPU:0")
    return dict(held=info["current"] - before, peak=info["peak"], params=model.count_params())


def test_memory_after_a_long_training_step_is_weights_and_slots(step_memory):
    slots = 2 * 4 * step_memory["params"]  # Adam's two float32 slots, created by the first step
    activation = 4 * LENGTH * 256          # one (1, L, d_model) float32 tensor: 16 MiB
    assert step_memory["held"] < slots + activation / 2, (
        step_memory["held"] / 2**20, slots / 2**20)


def test_peak_of_a_long_training_step_per_token(step_memory):
    kib_per_token = step_memory["peak"] / 1024 / LENGTH
    assert kib_per_token < 18.5, kib_per_token
