"""`tf_feed_forward.dense` / `dense_transposed` against plain `tf.matmul` and its autodiff: values,
input and weight gradients (the weight gradient through `Conv2DBackpropFilter`)."""

import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import tf_feed_forward


def _case(shape, d_out, dtype=tf.float32):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape), dtype)
    kernel = tf.constant(rng.normal(size=(shape[-1], d_out)) / 4, dtype)
    w_out = tf.constant(rng.normal(size=shape[:-1] + (d_out,)), dtype)
    return x, kernel, w_out


def _value_and_grads(product, x, kernel, w_out, mode):
    def f(x, kernel):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = product(x, kernel)
            loss = tf.reduce_sum(tf.cast(y * w_out, tf.float32))
        return [y] + tape.gradient(loss, [x, kernel])

    if mode != "eager":
        f = tf.function(f, jit_compile=mode == "xla")
    return f(x, kernel)


def _reference(x, kernel):
    return tf.einsum("...d,df->...f", x, kernel)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
@pytest.mark.parametrize("shape", [(2, 30, 16), (45, 16), (1, 3, 7, 16)])
def test_dense_equals_matmul_autodiff(mode, shape):
    x, kernel, w_out = _case(shape, 24)
    got = _value_and_grads(tf_feed_forward.dense, x, kernel, w_out, mode)
    want = _value_and_grads(_reference, x, kernel, w_out, "eager")
    for g, w in zip(got, want):
        assert g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_dense_transposed_equals_matmul_autodiff(mode):
    """The kernel is given as (d_out, d_in); its gradient comes back in that layout."""
    x, kernel, w_out = _case((2, 30, 16), 24)
    got = _value_and_grads(tf_feed_forward.dense_transposed, x, tf.transpose(kernel), w_out, mode)
    want = _value_and_grads(_reference, x, kernel, w_out, "eager")
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(got[2], tf.transpose(want[2]), rtol=1e-5, atol=1e-4)


def test_weight_gradient_runs_as_a_filter_gradient_and_equals_the_matmul():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(300, 16)), tf.float32)
    dy = tf.constant(rng.normal(size=(300, 40)), tf.float32)
    fn = tf.function(tf_feed_forward.weight_gradient)
    ops = {op.type for op in fn.get_concrete_function(x, dy).graph.get_operations()}
    assert "Conv2DBackpropFilter" in ops and "MatMul" not in ops
    np.testing.assert_allclose(fn(x, dy), tf.matmul(x, dy, transpose_a=True), rtol=1e-5,
                               atol=1e-4)


def test_dense_bfloat16_uses_the_matmul_gradient():
    """Mixed precision: non-float32 operands take the plain matmul for the weight gradient."""
    x, kernel, w_out = _case((2, 30, 16), 24, tf.bfloat16)
    got = _value_and_grads(tf_feed_forward.dense, x, kernel, w_out, "graph")
    want = _value_and_grads(_reference, x, kernel, w_out, "graph")
    for g, w in zip(got, want):
        assert g.dtype == w.dtype == tf.bfloat16
        np.testing.assert_allclose(tf.cast(g, tf.float32), tf.cast(w, tf.float32), rtol=2e-2,
                                   atol=2e-1)


def _gelu_reference(z, bias):
    return tf.nn.gelu(z + bias, approximate=False)


@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
@pytest.mark.parametrize("dtype,tol", [(tf.float32, 1e-5), (tf.bfloat16, 2e-2)])
def test_bias_gelu_equals_gelu_autodiff(mode, dtype, tol):
    """Value, input and bias gradients of the written-out gradient against automatic
    differentiation of the exact GELU of z + bias (inputs spanning both tails)."""
    rng = np.random.default_rng(2)
    z = tf.constant(rng.normal(size=(2, 30, 24)) * 3, dtype)
    bias = tf.constant(rng.normal(size=(24,)), dtype)
    w_out = tf.constant(rng.normal(size=(2, 30, 24)), dtype)
    got = _value_and_grads(tf_feed_forward.bias_gelu, z, bias, w_out, mode)
    want = _value_and_grads(_gelu_reference, z, bias, w_out, "eager")
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(tf.cast(g, tf.float32), tf.cast(w, tf.float32), rtol=tol,
                                   atol=tol * (30 if dtype == tf.bfloat16 else 1))
