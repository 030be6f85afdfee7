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

Each group's computation is ordered after the previous group's result (control dependencies), so
the executor cannot run groups side by side and add their peaks back up. A group's hashing is
recomputed in the backward pass from the same inputs and seed, so it sorts identically.
"""

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import


def _after(deps, tensors):
    """`tensors` (identity copies) that may not be computed before `deps` exist."""
    with tf.control_dependencies([d for d in deps if d is not None]):
        return [tf.identity(t) for t in tensors]


def sequential_groups(qk, v, groups, attend_group):
    """Attention over groups of heads and rounds, one group at a time, with recompute.

    Args:
      qk, v: (B, H, Lp, dh) per-head shared-QK vectors and values.
      groups: list of (heads: slice, rounds: slice); every head slice appears with round slices
        that cover all rounds, head slices in order.
      attend_group: fn(qk_g, v_g, heads, rounds, salt) -> (out (B, h, Lp, dh) float32,
        lse (B, h, Lp) float32), the group's rounds already combined. Must be deterministic given
        its inputs (it is called again in the backward pass) and use no variables.
    Returns:
      (B, H, Lp, dh) float32, the same as attending with all rounds of every head at once.
    """
    head_slices = []
    for heads, _ in groups:
        if heads not in head_slices:
            head_slices.append(heads)

    def run_group(i, qk_g, v_g):
        heads, rounds = groups[i]
        return attend_group(qk_g, v_g, heads, rounds, i)

    @tf.custom_gradient
    def attend(qk, v):
        outs, lses, last = [], {}, None
        with record.stop_recording():  # nothing of a group outlives it through an outer tape
            for heads in head_slices:
                out = top = total = None
                for i, (h, _) in enumerate(groups):
                    if h != heads:
                        continue
                    qk_g, v_g = _after([last], [qk[:, heads], v[:, heads]])
                    out_g, lse_g = run_group(i, qk_g, v_g)
                    lses[i] = lse_g
                    if out is None:
                        out, top, total = out_g, lse_g, tf.ones_like(lse_g)
                    else:  # online softmax over the groups' lse; `out` stays normalised
                        new_top = tf.maximum(top, lse_g)
                        a = tf.exp(top - new_top) * total
                        b = tf.exp(lse_g - new_top)
                        total, top = a + b, new_top
                        out = (out * a[..., None] + out_g * b[..., None]) / total[..., None]
                    last = out
                outs.append(out)
        out = tf.concat(outs, axis=1)

        def grad(d_out):
            d_out = tf.cast(d_out, tf.float32)
            weights = {}
            for heads in head_slices:
                members = [i for i, (h, _) in enumerate(groups) if h == heads]
                stacked = tf.nn.softmax(tf.stack([lses[i] for i in members]), axis=0)
                weights.update(zip(members, tf.unstack(stacked)))
            d_qk, d_v, last = {}, {}, d_out
            for i, (heads, _) in enumerate(groups):
                qk_g, v_g = _after([last], [qk[:, heads], v[:, heads]])
                with tf.GradientTape() as tape:
                    tape.watch([qk_g, v_g])
                    out_g, lse_g = run_group(i, qk_g, v_g)
                d_o, o, w = d_out[:, heads], out[:, heads], weights[i]
                d_lse = w * tf.reduce_sum(d_o * (out_g - o), axis=-1)
                g_qk, g_v = tape.gradient([out_g, lse_g], [qk_g, v_g],
                                          output_gradients=[d_o * w[..., None], d_lse])
                key = (heads.start, heads.stop)
                d_qk[key] = g_qk if key not in d_qk else d_qk[key] + g_qk
                d_v[key] = g_v if key not in d_v else d_v[key] + g_v
                last = d_v[key]
            keys = [(h.start, h.stop) for h in head_slices]
            return (tf.concat([d_qk[k] for k in keys], axis=1),
                    tf.concat([d_v[k] for k in keys], axis=1))

        return out, grad

    return attend(qk, v)
