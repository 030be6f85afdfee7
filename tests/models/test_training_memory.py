"""A training step leaves nothing of activation size behind: after it, TensorFlow's allocator
holds the weights and the optimizer's slots, not zero tensors of shape (B, L, d_model) that
grappler folded into constants (see `reformer_keras.runtime.GRAPH_SETTINGS` and
`layers/tf_custom_gradient.py`). Needs a length at which grappler's memory optimizer rewrites
gradient sums (it did not at 1K, it did at 16K)."""

import tensorflow as tf

from benchmarks import common


def test_memory_after_a_long_training_step_is_weights_and_slots():
    length = 16384
    model = common.build_lm(length, 1, "lsh", True, attn_chunks=8, ff_chunked_backward=True)
    model.build((1, length))
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    common.time_train_steps(model, length, steps=1, warmup=1)
    held = tf.config.experimental.get_memory_info("CPU:0")["current"] - before
    slots = 2 * 4 * model.count_params()  # Adam's two float32 slots, created by the first step
    activation = 4 * length * 256          # one (1, L, d_model) float32 tensor: 16 MiB
    assert held < slots + activation / 2, (held / 2**20, slots / 2**20)
