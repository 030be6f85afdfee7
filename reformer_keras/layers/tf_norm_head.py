"""TensorFlow-only: final layer norm and dense output head as one op, its backward in pieces.

At the top of a long-sequence LM the final norm works on both reversible streams (2 * d_model
wide) and its output feeds the vocabulary projection. Differentiated layer by layer, the
backward pass of these two holds at once the norm's input, its output (kept for the head's
kernel gradient), the head's input gradient and the norm backward's temporaries: about seven
(L, 2 * d_model) tensors, 13 KiB per token of the peer LM, which was the training step's peak
once the attention's backward got leaner.

Here the forward pass keeps only the norm's input x and two per-position statistics, and the
backward pass walks over pieces of `piece` positions (a `tf.while_loop`, one piece at a time):
a piece recomputes its normalised rows, adds its share of the head's kernel and bias gradients
and of gamma and beta's, and writes its rows of dx. Besides x and the logits' gradient only
piece-sized temporaries exist; dx is assembled from the pieces at the end.

    xhat = (x - mean) * rstd,  h = xhat * gamma + beta,  logits = h @ kernel + bias
    dh = dlogits @ kernel^T,  g = dh * gamma
    dx = rstd * (g - mean(g) - xhat * mean(g * xhat))
"""

import tensorflow as tf

from reformer_keras.layers.tf_custom_gradient import custom_gradient


def _piece_size(rows, piece):
    """Rows per piece: `piece`, or with a static row count the size of the fewest equal pieces
    of at most `piece` rows (static slice sizes, which XLA needs), or all rows in one piece."""
    if rows is None or rows <= piece:
        return piece
    fewest = -(-rows // piece)
    for count in range(fewest, 4 * fewest + 1):
        if rows % count == 0:
            return rows // count
    return rows


def norm_dense(x, gamma, beta, kernel, bias, epsilon, compute_dtype="float32", piece=8192):
    """LayerNorm(x) over the last axis, then `@ kernel + bias`.

    Args:
      x: (..., D) float tensor (normalised in float32).
      gamma, beta: (D,) the norm's scale and shift.
      kernel: (D, V), bias: (V,) the head's weights.
      epsilon: the norm's variance epsilon.
      compute_dtype: dtype of the head's matmul (a Dense layer's compute dtype: "float16" under
        mixed precision); the norm, the bias add and all gradients' sums are float32.
      piece: positions (rows of the flattened leading axes) per piece of the backward pass.
    Returns:
      (..., V) float32 logits.
    """
    compute_dtype = tf.as_dtype(compute_dtype)

    def stats(rows):
        mean = tf.reduce_mean(rows, axis=-1, keepdims=True)
        var = tf.reduce_mean(tf.math.squared_difference(rows, mean), axis=-1, keepdims=True)
        return mean, tf.math.rsqrt(var + epsilon)

    def head(h, kernel):
        out = tf.matmul(tf.cast(h, compute_dtype), tf.cast(kernel, compute_dtype))
        return tf.cast(out, tf.float32)

    @custom_gradient
    def fused(x, gamma, beta, kernel, bias):
        shape = tf.shape(x)
        rows = tf.reshape(tf.cast(x, tf.float32), [-1, x.shape[-1]])        # (N, D)
        g32, b32, bias32 = (tf.cast(t, tf.float32) for t in (gamma, beta, bias))
        mean, rstd = stats(rows)
        logits = head((rows - mean) * rstd * g32 + b32, kernel) + bias32    # (N, V)
        logits = tf.reshape(logits, tf.concat([shape[:-1], [kernel.shape[-1]]], 0))

        def grad(d_logits):
            d_rows = tf.reshape(tf.cast(d_logits, tf.float32), [-1, kernel.shape[-1]])
            with tf.control_dependencies([d_rows]):  # not before the logits' gradient exists
                rows_ = tf.identity(rows)
            static = rows.shape[0]  # known: equal static pieces, as XLA's TensorArray needs
            step = min(_piece_size(static, piece), static) if static else piece
            count = static or tf.shape(rows_)[0]
            pieces = (count + step - 1) // step
            k32 = tf.cast(kernel, tf.float32)

            def body(i, d_x, d_kernel, d_bias, d_gamma, d_beta):
                start = i * step
                size = step if static else tf.minimum(step, count - start)
                cut = lambda t: tf.slice(t, [start, 0], [size, t.shape[-1]])
                xhat = (cut(rows_) - cut(mean)) * cut(rstd)
                dl = cut(d_rows)
                h = xhat * g32 + b32
                d_kernel += tf.cast(tf.matmul(tf.cast(h, compute_dtype),
                                              tf.cast(dl, compute_dtype), transpose_a=True),
                                    tf.float32)
                dh = head(dl, tf.transpose(k32))
                g = dh * g32
                dx = (g - tf.reduce_mean(g, -1, keepdims=True)
                      - xhat * tf.reduce_mean(g * xhat, -1, keepdims=True)) * cut(rstd)
                return (i + 1, d_x.write(i, tf.cast(dx, x.dtype)), d_kernel,
                        d_bias + tf.reduce_sum(dl, 0), d_gamma + tf.reduce_sum(dh * xhat, 0),
                        d_beta + tf.reduce_sum(dh, 0))

            zeros = lambda t: tf.zeros(t.shape, tf.float32)
            _, d_x, d_kernel, d_bias, d_gamma, d_beta = tf.while_loop(
                lambda i, *_: i < pieces, body,
                (tf.constant(0), tf.TensorArray(
                    x.dtype, size=pieces, infer_shape=bool(static),
                    element_shape=[step, x.shape[-1]] if static else None),
                 zeros(kernel), zeros(bias), zeros(gamma), zeros(beta)),
                parallel_iterations=1)
            return (tf.reshape(d_x.concat(), shape), tf.cast(d_gamma, gamma.dtype),
                    tf.cast(d_beta, beta.dtype), tf.cast(d_kernel, kernel.dtype),
                    tf.cast(d_bias, bias.dtype))

        return logits, grad

    return fused(x, *(tf.convert_to_tensor(t) for t in (gamma, beta, kernel, bias)))
