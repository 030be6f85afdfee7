"""`tf_custom_gradient.custom_gradient`: tf.custom_gradient's gradients on the tape and in
symbolic `tf.gradients`, without the zero tensors tf.custom_gradient makes for its inputs."""

import numpy as np
import tensorflow as tf

from reformer_keras.layers.tf_custom_gradient import custom_gradient

_SHAPE = (3, 517)  # distinctive, so the graph scan below finds only tensors of the inputs' shape


def _scaled(decorator, scale):
    """y = x * w + b with a deliberately wrong gradient (scale x the true one) to tell custom
    from automatic differentiation; w is a variable read inside."""
    w = tf.Variable(np.linspace(0.5, 1.5, _SHAPE[1]).astype("float32"))

    @decorator
    def f(x, b):
        y = x * w + b

        def grad(dy, variables=None):
            d_inputs = [scale * dy * w, scale * dy]
            return d_inputs, [scale * tf.reduce_sum(dy * x, axis=0) for _ in variables]

        return y, grad

    return f, w


def _inputs():
    rng = np.random.default_rng(0)
    return (tf.constant(rng.normal(size=_SHAPE).astype("float32")),
            tf.constant(rng.normal(size=_SHAPE).astype("float32")))


def _tape_grads(f, w, x, b):
    with tf.GradientTape() as tape:
        tape.watch([x, b])
        loss = tf.reduce_sum(f(x, b) * tf.range(_SHAPE[1], dtype=tf.float32))
    return tape.gradient(loss, [x, b, w])


def test_tape_gradients_are_the_custom_ones_eager_and_graph():
    x, b = _inputs()
    weights = tf.range(_SHAPE[1], dtype=tf.float32)
    for run in (lambda fn: fn, tf.function):
        f, w = _scaled(custom_gradient, 3.0)
        d_x, d_b, d_w = run(lambda x, b: _tape_grads(f, w, x, b))(x, b)
        np.testing.assert_allclose(d_x, np.broadcast_to(3.0 * weights * w.numpy(), _SHAPE),
                                   rtol=1e-6)
        np.testing.assert_allclose(d_b, 3.0 * np.broadcast_to(weights, _SHAPE), rtol=1e-6)
        np.testing.assert_allclose(d_w, 3.0 * np.sum(weights * x.numpy(), axis=0), rtol=1e-5)


def test_symbolic_gradients_still_see_the_custom_gradient():
    x, b = _inputs()
    f, w = _scaled(custom_gradient, 3.0)

    @tf.function
    def symbolic(x, b):
        return tf.gradients(tf.reduce_sum(f(x, b)), [x, b])

    d_x, d_b = symbolic(x, b)
    np.testing.assert_allclose(d_b, np.full(_SHAPE, 3.0), rtol=1e-6)
    np.testing.assert_allclose(d_x, np.broadcast_to(3.0 * w.numpy(), _SHAPE), rtol=1e-6)


def _zero_fills_of_input_shape(decorator):
    f, w = _scaled(decorator, 1.0)
    graph = tf.function(lambda x, b: _tape_grads(f, w, x, b)).get_concrete_function(
        *_inputs()).graph
    return [op.name for op in graph.get_operations()
            if op.type in ("Fill", "ZerosLike") and tuple(op.outputs[0].shape) == _SHAPE]


def test_no_zero_gradients_are_made_for_the_inputs():
    # Control: tf.custom_gradient fills zeros for both inputs' pass-through copies.
    assert len(_zero_fills_of_input_shape(tf.custom_gradient)) >= 2
    assert _zero_fills_of_input_shape(custom_gradient) == []
