"""TensorFlow-only pieces of `ChunkedFeedForward`'s fast path.

- `dense_transposed(x, kernel_t)`: the inner product against the kernel transposed to
  (d_ff, d_model). x (B, 128, 256) @ W (256, 1024) as stored is a slow GEMM shape for this
  machine's oneDNN (36-43 GFLOP/s per core); against the transposed kernel the same product runs
  at 60-83 GFLOP/s (`python -m benchmarks.gemm_shapes --threads=1`).
- `dense(x, kernel)`: the outer product.
- Both have a custom gradient whose weight product runs as a convolution filter gradient
  (`weight_gradient`). The weight gradient of y = x @ W is x^T @ dy, whose reduction runs over
  the long axis (batch x length). Automatic differentiation emits it as
  `MatMul(transpose_a=True)`, which TensorFlow 2.21's oneDNN runs at 32-40 GFLOP/s per core for
  the feed-forward's shapes: half the rate of the forward products, and of PyTorch's BLAS on the
  same product (`benchmarks/gemm_shapes.py`). Explicit transposes, batch matmuls and XLA do not
  help. The same product is the filter gradient of a 1x1 convolution with the tokens as pixels
  (`Conv2DBackpropFilter`), whose oneDNN kernel runs it at 47-58 GFLOP/s per core.
- `bias_gelu(z, bias)`: the exact GELU of z + bias with its gradient written out: one pass
  each for the derivative's parts instead of automatic differentiation's chain of element-wise
  ops through erfc, and the bias gradient as a product with a row of ones (the column sum of
  the (tokens, d_ff) gradient as a reduction is a slow strided pass).
- `tape_is_recording`: whether the layer is being run for a gradient. Then automatic
  differentiation of the chunk loop would stack every chunk's activations anyway, so the
  chunking bounds nothing; the layer runs the whole sequence at once instead (bigger GEMMs,
  and no while-loop gradient, which ran the loop's forward a second time).
"""

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import

from reformer_keras.layers.tf_custom_gradient import custom_gradient


def weight_gradient(x, dy):
    """x (N, d_in), dy (N, d_out) -> x^T @ dy (d_in, d_out). float32 goes through
    `Conv2DBackpropFilter`, the N positions as the pixels of a 1 x N image; other dtypes through
    the matmul."""
    if x.dtype != tf.float32 or dy.dtype != tf.float32:
        return tf.matmul(x, dy, transpose_a=True)
    d_in, d_out = tf.shape(x)[1], tf.shape(dy)[1]
    grad = tf.raw_ops.Conv2DBackpropFilter(
        input=x[None, None], filter_sizes=tf.stack([1, 1, d_in, d_out]),
        out_backprop=dy[None, None], strides=[1, 1, 1, 1], padding="VALID")
    return tf.reshape(grad, tf.shape(grad)[2:])


def _flat(x):
    """(..., d) -> ((N, d), the leading shape)."""
    return tf.reshape(x, (-1, tf.shape(x)[-1])), tf.shape(x)[:-1]


def _restore(y, lead):
    """(N, d) -> (*lead, d)."""
    return tf.reshape(y, tf.concat([lead, tf.shape(y)[-1:]], axis=0))


def _dense(x, kernel, transposed):
    """x (..., d_in) @ kernel -> (..., d_out); kernel (d_in, d_out), or (d_out, d_in) when
    `transposed`. The gradient: the ordinary input product, and `weight_gradient` for the
    kernel (in the kernel's layout)."""

    @custom_gradient
    def product(x, kernel):
        x2, lead = _flat(x)

        def grad(dy):
            dy2, _ = _flat(dy)
            dx = tf.matmul(dy2, kernel, transpose_b=not transposed)
            d_kernel = weight_gradient(dy2, x2) if transposed else weight_gradient(x2, dy2)
            return _restore(dx, lead), d_kernel

        return _restore(tf.matmul(x2, kernel, transpose_b=transposed), lead), grad

    return product(x, tf.convert_to_tensor(kernel))


def dense(x, kernel):
    """x (..., d_in) @ kernel (d_in, d_out) -> (..., d_out)."""
    return _dense(x, kernel, transposed=False)


def dense_transposed(x, kernel_t):
    """x (..., d_in) @ kernel_t (d_out, d_in)^T -> (..., d_out)."""
    return _dense(x, kernel_t, transposed=True)


_SQRT_HALF = 0.7071067811865476
_INV_SQRT_2PI = 0.3989422804014327


def bias_gelu(z, bias):
    """gelu(z + bias) (the exact, erf-based GELU); z (..., d), bias (d,) -> (..., d).

    Gradient: d/du gelu(u) = Phi(u) + u phi(u), with Phi(u) kept from the forward pass."""

    @custom_gradient
    def activate(z, bias):
        u = z + bias
        cdf = 0.5 * tf.math.erfc(u * -_SQRT_HALF)

        def grad(dh):
            pdf = tf.exp(tf.square(u) * -0.5) * _INV_SQRT_2PI
            du = dh * (cdf + u * pdf)
            du2, _ = _flat(du)
            d_bias = tf.matmul(tf.ones((1, tf.shape(du2)[0]), du2.dtype), du2)[0]
            return du, d_bias

        return u * cdf, grad

    return activate(z, tf.convert_to_tensor(bias))


def tape_is_recording():
    """True while a gradient tape records (also while tracing a function under one)."""
    return record.could_possibly_record()
