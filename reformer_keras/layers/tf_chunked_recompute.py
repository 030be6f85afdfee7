"""TensorFlow-only: a position-wise function applied chunk by chunk, in both passes.

Chunking a feed-forward with a plain loop (`keras.ops.map`) bounds its memory in the forward pass
only: automatic differentiation of the loop stacks every iteration's activations for the
backward pass, so the (L, d_ff) hidden activations are all alive again. `chunked_recompute`
writes the backward pass out instead: it walks the chunks again, recomputes one chunk's
activations under a tape, pulls that chunk's output gradient back and sums the weight gradients
in the loop state. Only one chunk's activations are alive at any time, at the cost of one more
forward pass of the function.

The weights are explicit inputs (tensors: variables read in the caller), not captured: inside a
reversible block the layer runs through `stateless_call`, where its "variables" are tensors, and
a custom gradient gives no gradient to tensors it merely closes over.
"""

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import

from reformer_keras.layers import attention_utils as au
from reformer_keras.layers.tf_custom_gradient import custom_gradient


def chunked_recompute(fn, x, weights, chunk_size):
    """y = fn applied to consecutive chunks of x along axis 1, with a chunk-wise backward.

    Args:
      fn: fn(x_chunk (B, C, D), weights (list of tensors), index (int32 scalar)) -> (B, C, E),
        position-wise and deterministic given its inputs (it runs again in the backward pass;
        randomness must be keyed by `index`).
      x: (B, L, D) with L a multiple of `chunk_size`.
      weights: list of tensors fn uses; they receive gradients.
      chunk_size: C.
    Returns:
      (B, L, E).
    """
    weights = list(weights)

    def split(t):  # (B, L, D) -> (nc, B, C, D)
        return tf.transpose(au.split_chunks(t, chunk_size, axis=1), (1, 0, 2, 3))

    def merge(t):  # (nc, B, C, E) -> (B, L, E)
        return au.merge_chunks(tf.transpose(t, (1, 0, 2, 3)), axis=1)

    @custom_gradient
    def run(x, *weights):
        xs = split(x)
        count = tf.shape(xs)[0]
        with record.stop_recording():
            ys = tf.map_fn(lambda a: fn(a[0], list(weights), a[1]), (xs, tf.range(count)),
                           fn_output_signature=x.dtype, parallel_iterations=1)

        def grad(dy):
            dys = split(tf.cast(dy, ys.dtype))

            def body(i, d_weights, d_xs):
                x_i, dy_i = xs[i], dys[i]
                with tf.GradientTape() as tape:
                    tape.watch([x_i] + list(weights))
                    y_i = fn(x_i, list(weights), i)
                grads = tape.gradient(y_i, [x_i] + list(weights), output_gradients=dy_i)
                d_weights = [a + tf.cast(g, a.dtype) for a, g in zip(d_weights, grads[1:])]
                return i + 1, d_weights, d_xs.write(i, grads[0])

            _, d_weights, d_xs = tf.while_loop(
                lambda i, *_: i < count, body,
                (tf.constant(0), [tf.zeros_like(w) for w in weights],
                 tf.TensorArray(x.dtype, size=count, element_shape=xs.shape[1:])),
                parallel_iterations=1)
            return [merge(d_xs.stack())] + d_weights

        return merge(ys), grad

    return run(x, *weights)
