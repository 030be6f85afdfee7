"""`LayerNorm` against `keras.layers.LayerNormalization`: same outputs and gradients (x, gamma,
beta) on the lean TensorFlow path and on the Keras fallback, serialisation, and the memory the
lean gradient saves (TensorFlow's allocator)."""

import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import LayerNorm


def _pair(shape, **kwargs):
    rng = np.random.default_rng(0)
    ours, ref = LayerNorm(**kwargs), keras.layers.LayerNormalization(**kwargs)
    for layer in (ours, ref):
        layer.build(shape)
    for a, b in zip(ours.weights, ref.weights):
        value = rng.normal(size=a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    return ours, ref


def _value_and_grads(layer, x, dy, graph):
    def run(x, dy):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        return [y] + tape.gradient(y, [x] + [w.value for w in layer.trainable_weights],
                                   output_gradients=dy)

    return [t.numpy() for t in (tf.function(run) if graph else run)(x, dy)]


@pytest.mark.parametrize("graph", [False, True])
@pytest.mark.parametrize("kwargs", [
    dict(epsilon=1e-6),                      # lean path
    dict(epsilon=1e-3, axis=-1),             # lean path
    dict(epsilon=1e-6, scale=False),         # Keras fallback
    dict(epsilon=1e-6, axis=1),              # Keras fallback (not the last axis)
    dict(epsilon=1e-6, center=False),        # Keras fallback
])
def test_matches_keras_layer_normalization(kwargs, graph):
    shape = (2, 6, 16)
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=shape) * 3 + 2, tf.float32)
    dy = tf.constant(rng.normal(size=shape), tf.float32)
    ours, ref = _pair(shape, **kwargs)
    for a, b in zip(_value_and_grads(ours, x, dy, graph), _value_and_grads(ref, x, dy, graph)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=2e-5)


def test_half_precision_input_matches_keras():
    shape = (2, 5, 8)
    x = tf.constant(np.random.default_rng(2).normal(size=shape), tf.float16)
    ours, ref = _pair(shape, epsilon=1e-6, dtype="mixed_float16")
    out, expected = ours(x), ref(x)
    assert out.dtype == expected.dtype == tf.float16
    np.testing.assert_allclose(out.numpy(), expected.numpy(), atol=2e-3)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = ours(x)
    assert tape.gradient(y, x).dtype == tf.float16


def test_config_round_trip():
    layer = LayerNorm(epsilon=1e-5, name="norm")
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is LayerNorm and clone.epsilon == 1e-5 and clone.name == "norm"


_HELD_SCRIPT = """
import sys
from reformer_keras import runtime
runtime.configure_cpu()
import keras
import tensorflow as tf
from reformer_keras.layers import LayerNorm

layer = LayerNorm(epsilon=1e-6) if sys.argv[1] == "ours" else \
    keras.layers.LayerNormalization(epsilon=1e-6)
n = int(sys.argv[2])
x = tf.random.normal((1, n, 256))
layer.build(x.shape)
held = []

def probe():
    held.append(tf.config.experimental.get_memory_info("CPU:0")["current"])
    return tf.constant(1.0)

@tf.function
def step(x):
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        with tf.control_dependencies([y]):
            p = tf.py_function(probe, [], tf.float32)
        loss = tf.reduce_sum(y * p)
    return tape.gradient(loss, x)

step(x)
held.clear()
base = tf.config.experimental.get_memory_info("CPU:0")["current"]
step(x)
print(held[0] - base)
"""


def _held_after_forward(which, length):
    """Bytes the allocator holds between the norm's forward and its backward pass, beyond what
    it held before the step (x): the output y plus what the gradient keeps. In a fresh process
    (a test worker's allocator has a history)."""
    out = subprocess.run([sys.executable, "-c", _HELD_SCRIPT, which, str(length)],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def test_gradient_keeps_less_of_the_forward_than_keras():
    length = 65536                                     # (1, L, 256) float32: 64 MiB
    size = 4 * length * 256
    ours = _held_after_forward("ours", length)
    keras_held = _held_after_forward("keras", length)
    # measured: ours 1.01 sizes (y and two (1, L, 1) statistics), Keras 2.01
    assert ours < 1.25 * size and keras_held > ours + 0.75 * size, (ours / size,
                                                                     keras_held / size)
