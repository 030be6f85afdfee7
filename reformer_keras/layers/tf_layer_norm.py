"""TensorFlow-only: layer normalisation over the last axis with a hand-written gradient.

Autodiff of `keras.ops.layer_normalization` keeps several full-size intermediates of the
forward pass for the backward pass (the broadcast gamma * rsqrt(var), x * that, -mean * that,
...), makes more full-size temporaries there (the gradient of the broadcast mean, ...), and sums
the input gradient's three terms in an AddN that grappler turns into a temporary variable plus a
zeros tensor of the input's shape. In the profile of a training step (the peer LM, one
memory-mode layer, 16K tokens) the final norm's tensors (2 * d_model wide) were the step's peak,
and a pre-norm branch's recompute held ~5 activations for its norm.

Here the forward pass keeps only its input and two (..., 1) statistics; the backward pass
recomputes the normalised input and writes the input gradient as one expression:

    xhat = (x - mean) * rstd,  g = dy * gamma
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),  dgamma = sum(dy * xhat),  dbeta = sum(dy)
"""

import tensorflow as tf

from reformer_keras.layers.tf_custom_gradient import custom_gradient


def layer_norm(x, gamma, beta, epsilon):
    """Normalises x over its last axis, then scales and shifts.

    Args:
      x: (..., D) tensor of any float dtype (computed in float32).
      gamma, beta: (D,) tensors.
      epsilon: float added to the variance.
    Returns:
      (..., D) float32.
    """

    @custom_gradient
    def norm(x, gamma, beta):
        x32 = tf.cast(x, tf.float32)
        mean = tf.reduce_mean(x32, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.math.squared_difference(x32, mean), axis=-1, keepdims=True)
        rstd = tf.math.rsqrt(var + epsilon)
        gamma32, beta32 = tf.cast(gamma, tf.float32), tf.cast(beta, tf.float32)
        out = (x32 - mean) * rstd * gamma32 + beta32

        def grad_fn(dy):
            dy = tf.cast(dy, tf.float32)
            with tf.control_dependencies([dy]):  # else the graph recomputes xhat right after
                x_ = tf.identity(x)              # the forward and holds it until dy arrives
            xhat = (tf.cast(x_, tf.float32) - mean) * rstd
            batch_axes = tf.range(tf.rank(dy) - 1)
            d_gamma = tf.reduce_sum(dy * xhat, axis=batch_axes)
            d_beta = tf.reduce_sum(dy, axis=batch_axes)
            g = dy * gamma32
            dx = (g - tf.reduce_mean(g, axis=-1, keepdims=True)
                  - xhat * tf.reduce_mean(g * xhat, axis=-1, keepdims=True)) * rstd
            return (tf.cast(dx, x.dtype), tf.cast(d_gamma, gamma.dtype),
                    tf.cast(d_beta, beta.dtype))

        return out, grad_fn

    return norm(x, tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta))
