"""TensorFlow-only: `fused_attention` in pieces along a batch axis, one piece at a time.

`fused_attention` keeps no (..., Lq, Lk) tensor from the forward to the backward pass, but each
pass still makes several of them at once for all queries: logits, probabilities, their
gradient and the masks. For LSH attention at long lengths these are the largest tensors of a
(head, round) group (Lp x (before + 1 + after) * C floats each). Here the queries' chunks are
attended in pieces of `segment` chunks, the iterations of a `tf.while_loop` with
`parallel_iterations=1` in both passes, so those temporaries exist for one piece at a time; the
inputs, outputs and their gradients stay whole. The math of a piece is `fused_attention`'s
(`attention_utils.attention_forward` / `attention_backward`).
"""

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import

from reformer_keras.layers import attention_utils as au
from reformer_keras.layers.tf_custom_gradient import custom_gradient


def segmented_attention(q, k, v, q_pos, k_pos, k_valid, causal, shared_qk, axis, segment,
                        bias=None, dropout_rate=0.0, seed=None, salt=0):
    """`fused_attention` over pieces of `segment` entries of `axis` (a batch axis of every
    input, not one of the last two of q, k, v), in order, in both passes.

    Args: as `attention_utils.fused_attention`; `axis` non-negative, `segment` a positive int
      (the last piece may be shorter).
    Returns:
      out (..., Lq, dh) in v's dtype and lse (..., Lq) float32; dropout masks drawn per piece.
    """
    count = tf.shape(q)[axis]
    pieces = (count + segment - 1) // segment

    def piece(t, i):
        """Entries i * segment .. of t along `axis` (None stays None)."""
        if t is None:
            return None
        rank = t.shape.rank
        start = i * segment
        begin = tf.stack([start if d == axis else 0 for d in range(rank)])
        size = tf.stack([tf.minimum(segment, count - start) if d == axis else -1
                         for d in range(rank)])
        part = tf.slice(t, begin, size)
        part.set_shape([None if d == axis else t.shape[d] for d in range(rank)])
        return part

    def to_front(t):  # `axis` first, for TensorArray.concat
        return tf.transpose(t, [axis] + [d for d in range(t.shape.rank) if d != axis])

    def from_front(t, shape):
        """Inverse of `to_front` for the concatenated pieces; `shape`: the static shape."""
        rank = len(shape)
        t = tf.transpose(t, list(range(1, axis + 1)) + [0] + list(range(axis + 1, rank)))
        t.set_shape(shape)
        return t

    def masks(i):
        return au.attention_masks(piece(q_pos, i), piece(k_pos, i), piece(k_valid, i), causal,
                                  shared_qk)

    def drop(i):
        if not dropout_rate:
            return None
        return lambda x: au.dropout(x, dropout_rate, seed, salt * 7919 + 1 + i)

    def loop(body, arrays):
        return tf.while_loop(lambda i, *_: i < pieces, body, (tf.constant(0),) + arrays,
                             parallel_iterations=1)[1:]

    def array(dtype):
        return tf.TensorArray(dtype, size=pieces, infer_shape=False)

    @custom_gradient
    def attend(q, k, v):
        def body(i, outs, lses):
            out, lse = au.attention_forward(piece(q, i), piece(k, i), piece(v, i), masks(i),
                                            piece(bias, i), drop(i))
            return i + 1, outs.write(i, to_front(out)), lses.write(i, to_front(lse))

        with record.stop_recording():
            outs, lses = loop(body, (array(v.dtype), array(tf.float32)))
            out = from_front(outs.concat(), q.shape[:-1] + v.shape[-1:])
            lse = from_front(lses.concat(), q.shape[:-1] + [1])     # (..., Lq, 1)

        def grad(d_out, d_lse):
            def body(i, d_qs, d_ks, d_vs):
                grads = au.attention_backward(
                    piece(q, i), piece(k, i), piece(v, i), piece(out, i), piece(lse, i),
                    piece(d_out, i), piece(d_lse, i), masks(i), piece(bias, i), drop(i))
                return (i + 1,) + tuple(a.write(i, to_front(g))
                                        for a, g in zip((d_qs, d_ks, d_vs), grads))

            arrays = loop(body, (array(q.dtype), array(k.dtype), array(v.dtype)))
            return tuple(from_front(a.concat(), t.shape) for a, t in zip(arrays, (q, k, v)))

        return (out, tf.squeeze(lse, -1)), grad

    return attend(q, k, v)
