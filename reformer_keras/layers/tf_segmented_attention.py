"""TensorFlow-only: `fused_attention` in pieces along a batch axis, one piece at a time.

`fused_attention` keeps no (..., Lq, Lk) tensor from the forward to the backward pass, but each
pass still makes several of them at once for all queries: logits, probabilities, their
gradient and the masks. For LSH attention at long lengths these are the largest tensors of a
(head, round) group (Lp x (before + 1 + after) * C floats each). Here the queries' chunks are
attended in pieces of `segment` chunks, the iterations of a `tf.while_loop` with
`parallel_iterations=1` in both passes, so those temporaries exist for one piece at a time; the
inputs, outputs and their gradients stay whole. The math of a piece is `fused_attention`'s
(`attention_utils.attention_forward` / `attention_backward`).

With `window` (chunked attention: each chunk's queries see their chunk and its neighbours), the
keys, values and their positions and flags come per chunk, and a piece builds its own key
windows from its chunks and the `before` / `after` chunks around it. Nothing of window size
(W copies of the keys and values, and of their gradients) then exists for the whole length:
the backward pass folds each piece's window gradients back onto its chunks and hands the few
chunks it shares with its neighbours (halos) to one scatter-add after the loop. For LSH at 1M
tokens (W = 2) that is about 2 KiB per token less at the step's peak.
"""

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import

from reformer_keras.layers import attention_utils as au
from reformer_keras.layers.tf_custom_gradient import custom_gradient


def slice_along(t, axis, start, size):
    """Entries start .. start + size (ints or scalar tensors) of t along `axis`."""
    begin = tf.stack([start if d == axis else 0 for d in range(t.shape.rank)])
    return tf.slice(t, begin, [size if d == axis else -1 for d in range(t.shape.rank)])


def segmented_attention(q, k, v, q_pos, k_pos, k_valid, causal, shared_qk, axis, segment,
                        bias=None, dropout_rate=0.0, seed=None, salt=0, window=None):
    """`fused_attention` over pieces of `segment` entries of `axis` (a batch axis of every
    input, not one of the last two of q, k, v), in order, in both passes.

    Args: as `attention_utils.fused_attention`; `axis` non-negative, `segment` a positive int
      (the last piece may be shorter). `window`: None, or (before, after) with `axis` the chunk
      axis: k, v (..., nc, C, dh), k_pos, k_valid (..., nc, C) are per chunk and each chunk
      attends to `attention_utils.look_adjacent` of them (keys beyond the ends masked).
    Returns:
      out (..., Lq, dh) in v's dtype and lse (..., Lq) float32; dropout masks drawn per piece.
    """
    count = tf.shape(q)[axis]
    pieces = (count + segment - 1) // segment
    before, after = window or (0, 0)

    def piece(t, i):
        """Entries i * segment .. of t along `axis` (None stays None)."""
        if t is None:
            return None
        start = i * segment
        part = slice_along(t, axis, start, tf.minimum(segment, count - start))
        part.set_shape([None if d == axis else t.shape[d] for d in range(t.shape.rank)])
        return part

    def to_front(t):  # `axis` first, for TensorArray.concat
        return tf.transpose(t, [axis] + [d for d in range(t.shape.rank) if d != axis])

    def from_front(t, shape):
        """Inverse of `to_front` for the concatenated pieces; `shape`: the static shape."""
        rank = len(shape)
        t = tf.transpose(t, list(range(1, axis + 1)) + [0] + list(range(axis + 1, rank)))
        t.set_shape(shape)
        return t

    def around(i):
        """Chunk numbers s - before .. s + P + after of piece i (P its size; may be outside
        0 .. count - 1: wrapped when gathering, masked through k_valid)."""
        start = i * segment
        return tf.range(start - before, start + tf.minimum(segment, count - start) + after)

    def windows(t, i, fill=None):
        """Piece i's chunk windows of per-chunk t (..., nc, C, ...): (..., P, W * C, ...)."""
        raw = around(i)
        ext = tf.gather(t, raw % count, axis=axis)
        if fill is not None:
            inside = tf.logical_and(raw >= 0, raw < count)
            ext = tf.where(tf.reshape(inside, [-1 if d == axis else 1
                                               for d in range(t.shape.rank)]), ext, fill)
        size = tf.shape(raw)[0] - before - after
        parts = [slice_along(ext, axis, before + shift, size)
                 for shift in range(-before, after + 1)]
        return parts[0] if len(parts) == 1 else tf.concat(parts, axis=axis + 1)

    def keys(i):
        """Piece i's k, v, k_pos, k_valid as the attention sees them (windows built here)."""
        if window is None:
            return piece(k, i), piece(v, i), piece(k_pos, i), piece(k_valid, i)
        return (windows(k, i), windows(v, i), windows(k_pos, i),
                windows(k_valid, i, fill=False))

    def fold(d_win, like):
        """Window gradients (..., P, W * C, dh) of a piece -> (own (..., P, C, dh), halos
        (..., before + after, C, dh)): each shift's part added onto the chunk it came from."""
        c = like.shape[axis + 1]
        ext = None
        for j, shift in enumerate(range(-before, after + 1)):
            part = slice_along(d_win, axis + 1, j * c, c)
            pad = [[0, 0]] * part.shape.rank
            pad[axis] = [before + shift, after - shift]
            part = tf.pad(part, pad)
            ext = part if ext is None else ext + part
        size = tf.shape(ext)[axis] - before - after
        own = slice_along(ext, axis, before, size)
        halo = tf.concat([slice_along(ext, axis, 0, before),
                          slice_along(ext, axis, before + size, after)], axis)
        return own, halo

    def masks(i, k_pos_i, k_valid_i):
        return au.attention_masks(piece(q_pos, i), k_pos_i, k_valid_i, causal, shared_qk)

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
            k_i, v_i, k_pos_i, k_valid_i = keys(i)
            out, lse = au.attention_forward(piece(q, i), k_i, v_i, masks(i, k_pos_i, k_valid_i),
                                            piece(bias, i), drop(i))
            return i + 1, outs.write(i, to_front(out)), lses.write(i, to_front(lse))

        with record.stop_recording():
            outs, lses = loop(body, (array(v.dtype), array(tf.float32)))
            out = from_front(outs.concat(), q.shape[:-1] + v.shape[-1:])
            lse = from_front(lses.concat(), q.shape[:-1] + [1])     # (..., Lq, 1)

        def grad(d_out, d_lse):
            def body(i, *arrays):
                k_i, v_i, k_pos_i, k_valid_i = keys(i)
                grads = au.attention_backward(
                    piece(q, i), k_i, v_i, piece(out, i), piece(lse, i), piece(d_out, i),
                    piece(d_lse, i), masks(i, k_pos_i, k_valid_i), piece(bias, i), drop(i))
                if window is not None:  # (own chunks, halos) of d_k and d_v
                    grads = (grads[0],) + fold(grads[1], k) + fold(grads[2], v)
                return (i + 1,) + tuple(a.write(i, to_front(g)) for a, g in zip(arrays, grads))

            dtypes = [q.dtype, k.dtype, v.dtype]
            if window is not None:
                dtypes = [q.dtype, k.dtype, k.dtype, v.dtype, v.dtype]
            arrays = loop(body, tuple(array(d) for d in dtypes))
            if window is None:
                return tuple(from_front(a.concat(), t.shape)
                             for a, t in zip(arrays, (q, k, v)))
            # Halos: piece i's before + after chunks around it, added where they belong.
            starts = tf.range(pieces)[:, None] * segment
            ends = tf.minimum(starts + segment, count)
            index = tf.concat([starts - before + tf.range(before)[None],
                               ends + tf.range(after)[None]], axis=1)   # (pieces, before+after)
            index = tf.reshape(index % count, [-1, 1])
            d_k, d_v = (tf.tensor_scatter_nd_add(own.concat(), index, halo.concat())
                        for own, halo in (arrays[1:3], arrays[3:5]))
            return (from_front(arrays[0].concat(), q.shape), from_front(d_k, k.shape),
                    from_front(d_v, v.shape))

        return (out, tf.squeeze(lse, -1)), grad

    return attend(q, k, v)
