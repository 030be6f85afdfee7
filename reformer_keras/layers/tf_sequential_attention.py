"""TensorFlow-only: attention over groups of (head, hash round) pairs, one group at a time.

LSH attention's memory is dominated by per-round copies: every round has its own sorted queries,
keys and values, their chunk windows and a (Lp, W * C) score tensor, for every head. With the
pairs split into G groups (`LSHSelfAttention(attn_chunks=G)`), this module runs the groups one
after another and writes the backward pass out, so that only one group's copies are alive at a
time in either pass:

- forward: group g gives out_g (B, h, Lp, dh) and its log-normaliser lse_g (B, h, Lp); groups of
  the same heads (different rounds) are merged online, out = sum_g w_g out_g with
  w = softmax_g(lse_g), which is exactly how one call combines its rounds. Only the inputs,
  `out` and the groups' lse are kept for the backward pass.
- backward: for each group, recompute (out_g, lse_g) under a tape and pull back
  d out_g = w_g d_out and d lse_g = w_g <d_out, out_g - out> (the derivative of the weighted
  sum through the softmax weights); the gradients of the groups' inputs are summed.

Head blocks are the iterations of a `tf.while_loop` with `parallel_iterations=1` in both passes,
and a block's round groups are ordered by control dependencies: the executor cannot run groups
side by side and add their peaks back up, and the graph holds one copy of the group computation
per round part (unrolling all 8 groups of the peer configuration made the traced graph, and the
process, 0.26 GiB larger). Per-block results go to TensorArrays (read-modify-write of a
full-size accumulator with scatter ops cost 8.6 KiB per token more at the peak). A group's
hashing is recomputed in the backward pass from the same inputs and seed, so it sorts
identically.
"""

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import

from reformer_keras.layers.tf_custom_gradient import custom_gradient


def _heads(t, start, count):
    """Heads start .. + count (start may be a tensor) of t (B, H, ...)."""
    begin = tf.stack([0, start] + [0] * (t.shape.rank - 2))
    return tf.slice(t, begin, [-1, count] + [-1] * (t.shape.rank - 2))


def _after(deps, tensors):
    """`tensors` (identity copies) that may not be computed before `deps` exist."""
    with tf.control_dependencies(deps):
        return [tf.identity(t) for t in tensors]


def _blocks_to_heads(blocks):
    """TensorArray of (B, hb, Lp, dh) per head block -> (B, H, Lp, dh)."""
    t = blocks.stack()                                            # (nb, B, hb, Lp, dh)
    t = tf.transpose(t, (1, 0, 2, 3, 4))
    shape = tf.shape(t)
    return tf.reshape(t, (shape[0], -1, shape[3], shape[4]))


def sequential_groups(qk, v, heads_per_group, rounds_per_group, num_hashes, attend_group):
    """Attention over equal groups of heads and rounds, one group at a time, with recompute.

    Group g covers heads h0 .. h0 + heads_per_group and rounds r0 .. r0 + rounds_per_group
    (heads-major order). Head blocks are the iterations of a `tf.while_loop` with
    `parallel_iterations=1`; a block's round groups run one after another inside an iteration
    (control dependencies). The graph holds one copy of the group computation per round part,
    whatever the number of heads.

    Args:
      qk, v: (B, H, Lp, dh) per-head shared-QK vectors and values.
      heads_per_group, rounds_per_group, num_hashes: static ints dividing H and num_hashes.
      attend_group: fn(qk_g, v_g, h0, r0, g) -> (out (B, h, Lp, dh) float32, lse (B, h, Lp)
        float32), the group's rounds combined; h0, r0, g are int32 scalar tensors. Must be
        deterministic given its inputs (it runs again in the backward pass) and use no variables.
    Returns:
      (B, H, Lp, dh) float32, the same as attending with all rounds of every head at once.
    """
    num_heads, hb = qk.shape[1], heads_per_group
    parts = num_hashes // rounds_per_group
    num_blocks = num_heads // hb

    def run_block(block, qk_b, v_b):
        """The `parts` round groups of one head block, one after another, merged by a softmax
        over their lse (exact where they agree, e.g. a query that sees only itself, whose lse is
        the self-mask value -1e5). Returns out (B, hb, Lp, dh) and each part's (out, lse)."""
        results, last = [], []
        for p in range(parts):
            qk_p, v_p = _after(last, [qk_b, v_b])
            results.append(attend_group(qk_p, v_p, block * hb, p * rounds_per_group,
                                        block * parts + p))
            last = [results[-1][0]]
        if parts == 1:
            return results[0][0], results
        weights = tf.nn.softmax(tf.stack([lse for _, lse in results]), axis=0)
        out = tf.add_n([o * w[..., None] for (o, _), w in zip(results, tf.unstack(weights))])
        return out, results

    @custom_gradient
    def attend(qk, v):
        def body(block, outs, lses):
            out, results = run_block(block, _heads(qk, block * hb, hb), _heads(v, block * hb, hb))
            lse = tf.stack([lse for _, lse in results])           # (parts, B, hb, Lp)
            return block + 1, outs.write(block, out), lses.write(block, lse)

        with record.stop_recording():  # nothing of a group outlives it through an outer tape
            _, outs, lses = tf.while_loop(
                lambda block, *_: block < num_blocks, body,
                (tf.constant(0), tf.TensorArray(tf.float32, size=num_blocks),
                 tf.TensorArray(tf.float32, size=num_blocks)),
                parallel_iterations=1)
            out = _blocks_to_heads(outs)                          # (B, H, Lp, dh)
            lses = lses.stack()                                   # (nb, parts, B, hb, Lp)

        def grad(d_out):
            d_out = tf.cast(d_out, tf.float32)

            def body(block, d_qks, d_vs):
                h0 = block * hb
                qk_b, v_b = _heads(qk, h0, hb), _heads(v, h0, hb)
                d_o, o = _heads(d_out, h0, hb), _heads(out, h0, hb)
                weights = tf.unstack(tf.nn.softmax(lses[block], axis=0))  # exact: sums to 1
                d_qk = d_v = None
                for p in range(parts):
                    qk_p, v_p = _after([] if d_v is None else [d_v], [qk_b, v_b])
                    with tf.GradientTape() as tape:
                        tape.watch([qk_p, v_p])
                        out_p, lse_p = attend_group(qk_p, v_p, h0, p * rounds_per_group,
                                                    block * parts + p)
                    w = weights[p]
                    d_lse = w * tf.reduce_sum(d_o * (out_p - o), axis=-1)
                    g_qk, g_v = tape.gradient([out_p, lse_p], [qk_p, v_p],
                                              output_gradients=[d_o * w[..., None], d_lse])
                    d_qk = g_qk if d_qk is None else d_qk + g_qk
                    d_v = g_v if d_v is None else d_v + g_v
                return block + 1, d_qks.write(block, d_qk), d_vs.write(block, d_v)

            _, d_qks, d_vs = tf.while_loop(
                lambda block, *_: block < num_blocks, body,
                (tf.constant(0), tf.TensorArray(qk.dtype, size=num_blocks),
                 tf.TensorArray(v.dtype, size=num_blocks)),
                parallel_iterations=1)
            return _blocks_to_heads(d_qks), _blocks_to_heads(d_vs)

        return out, grad

    return attend(qk, v)
