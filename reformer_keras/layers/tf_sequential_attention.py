"""TensorFlow-only: attention over groups of (head, hash round) pairs, one group at a time,
with the layer's projections done per head block.

LSH attention's memory is dominated by per-round copies: every round has its own sorted queries,
keys and values, their chunk windows and a (Lp, W * C) score tensor, for every head. With the
pairs split into G groups (`LSHSelfAttention(attn_chunks=G)`), this module runs the groups one
after another and writes the backward pass out, so that only one group's copies are alive at a
time in either pass. The projections belong to the loop as well: a head block projects its own
shared-QK vectors and values from the layer input x (B, Lp, D) and adds its share of the output
projection, so the per-head (B, H, Lp, dh) tensors of all heads (q, v, the attention output and
their gradients: six full-width tensors in the backward pass) never exist at once.

- forward: group g gives out_g (B, h, Lp, dh) and its log-normaliser lse_g (B, h, Lp); groups of
  the same heads (different rounds) are merged online, out = sum_g w_g out_g with
  w = softmax_g(lse_g), which is exactly how one call combines its rounds; the block adds
  out @ w_o[block] to y. Kept for the backward pass: x and the groups' lse. (When a head's
  rounds are split over several groups, the merge's derivative needs <d_out, out> of the merged
  output: by default the backward recomputes the groups' outputs for it, one more forward per
  group, rather than keep `out`, (B, H, Lp, dh), from the forward pass: `keep_merged`.)
- backward: per head block, recompute the projections, then for each group recompute
  (out_g, lse_g) under a tape and pull back d out_g = w_g d_out and
  d lse_g = w_g <d_out, out_g - out> (the derivative of the weighted sum through the softmax
  weights); the block's kernel gradients are written out, its input gradient is summed.

Head blocks are the iterations of a `tf.while_loop` with `parallel_iterations=1` in both passes,
and a block's round groups are ordered by control dependencies: the executor cannot run groups
side by side and add their peaks back up, and the graph holds one copy of the group computation
per round part (unrolling all 8 groups of the peer configuration made the traced graph, and the
process, 0.26 GiB larger). Per-block results go to TensorArrays (read-modify-write of a
full-size accumulator with scatter ops cost 8.6 KiB per token more at the peak). The backward
recomputes a block's projections with the forward's ops on the same x and kernels, so a group
hashes (or, given `compute_buckets`' buckets, slices them) and sorts identically.
"""

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import

from reformer_keras.layers.tf_custom_gradient import custom_gradient
from reformer_keras.layers.tf_segmented_attention import slice_along


def _after(deps, tensors):
    """`tensors` (identity copies) that may not be computed before `deps` exist."""
    with tf.control_dependencies(deps):
        return [tf.identity(t) for t in tensors]


def _stack_blocks(blocks, axis):
    """TensorArray of per-block tensors -> one tensor, blocks merged into dimension `axis`
    (the head axis of a kernel: 1 of (D, hb, dh), 0 of (hb, dh, D))."""
    t = blocks.stack()                                            # (nb, ...)
    perm = list(range(1, axis + 1)) + [0] + list(range(axis + 1, t.shape.rank))
    t = tf.transpose(t, perm)
    shape = tf.shape(t)
    return tf.reshape(t, tf.concat([shape[:axis], [-1], shape[axis + 2:]], 0))


def sequential_attention(x, w_qk, w_v, w_o, heads_per_group, rounds_per_group, num_hashes,
                         attend_group, keep_merged=False):
    """Projections, attention over equal groups of heads and rounds, output projection; one
    group at a time in both passes, with recompute.

    Group g covers heads h0 .. h0 + heads_per_group and rounds r0 .. r0 + rounds_per_group
    (heads-major order). Head blocks are the iterations of a `tf.while_loop` with
    `parallel_iterations=1`; a block's round groups run one after another inside an iteration
    (control dependencies). The graph holds one copy of the group computation per round part,
    whatever the number of heads.

    Args:
      x: (B, Lp, D) the layer input, padded to the chunk length (padding rows are zeros).
      w_qk, w_v: (D, H, dh) shared-QK and value kernels; w_o: (H, dh, D) output kernel; all
        tensors in x's dtype (they receive gradients).
      heads_per_group, rounds_per_group, num_hashes: static ints dividing H and num_hashes.
      attend_group: fn(qk_g, v_g, h0, r0, g) -> (out (B, h, Lp, dh) float32, lse (B, h, Lp)
        float32), the group's rounds combined; h0, r0, g are int32 scalar tensors. Must be
        deterministic given its inputs (it runs again in the backward pass) and use no variables.
      keep_merged: with a head's rounds split over several groups, keep the merged per-head
        output (B, H, Lp, dh) from the forward to the backward pass for the merge's derivative
        (True), or recompute the groups' outputs once more in the backward pass instead (False,
        the default: one more forward of each group, 4 * H * dh bytes per token less).
    Returns:
      (B, Lp, D) float32: sum over heads of attention(x w_qk, x w_v) w_o, the same as attending
      with all rounds of every head at once.
    """
    num_heads, hb = w_qk.shape[1], heads_per_group
    parts = num_hashes // rounds_per_group
    num_blocks = num_heads // hb

    def kernels(block, *ws):
        """The block's slices of w_qk, w_v (head axis 1) and w_o (head axis 0)."""
        h0 = block * hb
        return (slice_along(ws[0], 1, h0, hb), slice_along(ws[1], 1, h0, hb),
                slice_along(ws[2], 0, h0, hb))

    def project(x, w):  # (B, Lp, D) x (D, hb, dh) -> (B, hb, Lp, dh)
        return tf.einsum("bld,dhk->bhlk", x, w)

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

    def merged_row(block, qk_b, v_b, d_o, weights):
        """<d_o, out> (B, hb, Lp) of the block's merged output, its round parts recomputed one
        after another (forward only) instead of keeping `out` from the forward pass."""
        row, last = None, []
        for p in range(parts):
            qk_p, v_p = _after(last, [qk_b, v_b])
            out_p, _ = attend_group(qk_p, v_p, block * hb, p * rounds_per_group,
                                    block * parts + p)
            term = weights[p] * tf.reduce_sum(d_o * out_p, axis=-1)
            row = term if row is None else row + term
            last = [row]
        return row

    def block_backward(block, qk_b, v_b, d_o, out, lses):
        """Gradients of one head block's attention: (d_w_o-ready output, d_qk, d_v).

        One round part: out (B, hb, Lp, dh) float32 recomputed under the tape. Several: the
        merge's derivative needs <d_o, out> of the merged output; `out` is the forward's, or
        None (`keep_merged`=False): then that row is recomputed first (`merged_row`) and the
        first value returned is d_y's partner for the output kernel's gradient, sum_p w_p out_p,
        accumulated part by part."""
        h0 = block * hb
        if parts == 1:
            with tf.GradientTape() as tape:
                tape.watch([qk_b, v_b])
                out_p, _ = attend_group(qk_b, v_b, h0, 0, block)
            return (out_p,) + tuple(tape.gradient(out_p, [qk_b, v_b], output_gradients=d_o))
        weights = tf.unstack(tf.nn.softmax(lses, axis=0))         # exact: sums to 1
        row = (tf.reduce_sum(d_o * out, axis=-1) if out is not None
               else merged_row(block, qk_b, v_b, d_o, weights))
        d_qk = d_v = merged = None
        for p in range(parts):
            qk_p, v_p = _after([row] if d_v is None else [d_v], [qk_b, v_b])
            with tf.GradientTape() as tape:
                tape.watch([qk_p, v_p])
                out_p, lse_p = attend_group(qk_p, v_p, h0, p * rounds_per_group,
                                            block * parts + p)
            w = weights[p]
            d_lse = w * (tf.reduce_sum(d_o * out_p, axis=-1) - row)
            g_qk, g_v = tape.gradient([out_p, lse_p], [qk_p, v_p],
                                      output_gradients=[d_o * w[..., None], d_lse])
            d_qk = g_qk if d_qk is None else d_qk + g_qk
            d_v = g_v if d_v is None else d_v + g_v
            if out is None:
                part = out_p * w[..., None]
                merged = part if merged is None else merged + part
        return (out if out is not None else merged), d_qk, d_v

    @custom_gradient
    def attend(x, w_qk, w_v, w_o):
        def body(block, y, outs, lses):
            wq, wv, wo = kernels(block, w_qk, w_v, w_o)
            out, results = run_block(block, project(x, wq), project(x, wv))
            y = y + tf.cast(tf.einsum("bhlk,hkd->bld", tf.cast(out, x.dtype), wo), tf.float32)
            if parts > 1 and keep_merged:  # the merge's backward needs the merged output
                outs = outs.write(block, out)
            return block + 1, y, outs, lses.write(block, tf.stack([lse for _, lse in results]))

        with record.stop_recording():  # nothing of a group outlives it through an outer tape
            _, y, outs, lses = tf.while_loop(
                lambda block, *_: block < num_blocks, body,
                (tf.constant(0), tf.zeros(tf.shape(x), tf.float32),
                 tf.TensorArray(tf.float32, size=num_blocks),
                 tf.TensorArray(tf.float32, size=num_blocks)),
                parallel_iterations=1)
            outs = outs.stack() if parts > 1 and keep_merged else None  # (nb, B, hb, Lp, dh)
            lses = lses.stack()                                   # (nb, parts, B, hb, Lp)

        def grad(d_y):
            # Not before the forward loop is done: the graph runs lowered loops, so the
            # backward's first block could start beside the forward's blocks (a recompute under
            # a tape, whose output is needed only later) and add both working sets up.
            d_y, x_ = _after([y, lses], [tf.cast(d_y, tf.float32), x])
            x32 = tf.cast(x_, tf.float32)

            def body(block, d_x, d_wqs, d_wvs, d_wos):
                wq, wv, wo = kernels(block, w_qk, w_v, w_o)
                qk_b, v_b = project(x_, wq), project(x_, wv)     # the forward's ops exactly
                wq, wv, wo = (tf.cast(w, tf.float32) for w in (wq, wv, wo))
                d_o = tf.einsum("bld,hkd->bhlk", d_y, wo)
                out, d_qk, d_v = block_backward(block, qk_b, v_b, d_o,
                                                None if outs is None else outs[block],
                                                lses[block])
                d_qk, d_v = tf.cast(d_qk, tf.float32), tf.cast(d_v, tf.float32)
                # One (B, Lp, D) product at a time: written as one sum, both products and the
                # running d_x were alive together (a full-size tensor more at the step's peak).
                d_x = d_x + tf.einsum("bhlk,dhk->bld", d_qk, wq)
                d_v, = _after([d_x], [d_v])
                d_x = d_x + tf.einsum("bhlk,dhk->bld", d_v, wv)
                return (block + 1, d_x,
                        d_wqs.write(block, tf.einsum("bld,bhlk->dhk", x32, d_qk)),
                        d_wvs.write(block, tf.einsum("bld,bhlk->dhk", x32, d_v)),
                        d_wos.write(block, tf.einsum("bhlk,bld->hkd", out, d_y)))

            _, d_x, d_wqs, d_wvs, d_wos = tf.while_loop(
                lambda block, *_: block < num_blocks, body,
                (tf.constant(0), tf.zeros(tf.shape(x), tf.float32))
                + tuple(tf.TensorArray(tf.float32, size=num_blocks) for _ in range(3)),
                parallel_iterations=1)
            return (tf.cast(d_x, x.dtype), tf.cast(_stack_blocks(d_wqs, 1), w_qk.dtype),
                    tf.cast(_stack_blocks(d_wvs, 1), w_v.dtype),
                    tf.cast(_stack_blocks(d_wos, 0), w_o.dtype))

        return y, grad

    return attend(x, w_qk, w_v, w_o)
