"""TensorFlow-only: the memory-saving gradient of a reversible residual stack.

y1 = x1 + f(x2), y2 = x2 + g(y1) is inverted exactly by x2 = y2 - g(y1), x1 = y1 - f(x2), so the
backward pass needs only the stack's outputs: each block's inputs are recomputed from its outputs
and its gradient taken on the spot. Activation memory is then that of one block, whatever the
depth. This module holds the `tf.custom_gradient` that does it; `reversible.py` is the Keras layer.

Traps this code avoids (each one measured):
- graph-mode `tf.custom_gradient` rejects keyword arguments: the decorated function takes tensors
  positionally and closes over everything else (training flag, padding mask, seeds);
- `grad_fn` receives the underlying `tf.Variable`s in an order of TF's choosing: gradients are
  matched to them by `v.ref()`, never by position;
- the recompute must see the forward's randomness: every block gets an explicit stateless seed
  drawn once per forward, and the same seed is passed again in the recompute;
- the forward is run with the tape paused, so no intermediate activation is kept alive by an
  outer `GradientTape` (the same device TF's own `recompute_grad` uses).
"""

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import


def _underlying(weights):
    return [getattr(w, "value", w) for w in weights]


def reversible_stack(x1, x2, blocks, block_kwargs):
    """Runs the reversible stack with a recompute-from-outputs gradient.

    Args:
      x1, x2: (B, L, D) float32 tensors, the two residual streams.
      blocks: list of (f, g) callables (Keras layers), each `f(x, **kwargs) -> (B, L, D)`.
      block_kwargs: list (one per block) of (f_kwargs, g_kwargs) dicts passed to every call of f
        and g, forward and recompute alike (padding mask, training flag, seeds).
    Returns:
      (y1, y2), each (B, L, D) float32.
    """

    def run(f, x, kwargs):
        return tf.cast(f(x, **kwargs), tf.float32)

    @tf.custom_gradient
    def stack(a, b):
        with record.stop_recording():
            for (f, g), (fk, gk) in zip(blocks, block_kwargs):
                a = a + run(f, b, fk)
                b = b + run(g, a, gk)
        y1, y2 = tf.identity(a), tf.identity(b)

        def grad_fn(dy1, dy2, variables=None):
            grads = {}
            o1, o2 = y1, y2
            for (f, g), (fk, gk) in reversed(list(zip(blocks, block_kwargs))):
                # Block: o1 = i1 + f(i2); o2 = i2 + g(o1). Undo g, then f.
                g_vars = _underlying(g.trainable_weights)
                with tf.GradientTape() as tape:
                    tape.watch(o1)
                    g_out = run(g, o1, gk)
                d_o1, *d_g = tape.gradient(g_out, [o1] + g_vars, output_gradients=dy2)
                i2 = o2 - g_out
                dy1 = dy1 + d_o1
                f_vars = _underlying(f.trainable_weights)
                with tf.GradientTape() as tape:
                    tape.watch(i2)
                    f_out = run(f, i2, fk)
                d_i2, *d_f = tape.gradient(f_out, [i2] + f_vars, output_gradients=dy1)
                dy2 = dy2 + d_i2
                block_grads = []
                for v, d in zip(g_vars + f_vars, d_g + d_f):
                    if d is not None:
                        d = tf.convert_to_tensor(d)
                        block_grads.append(d)
                        grads[v.ref()] = d if v.ref() not in grads else grads[v.ref()] + d
                # The next (lower) block's recompute must wait for this block's gradients:
                # otherwise the graph executor may run the cheap reconstruction chain ahead and
                # hold every block's activations at once, and memory grows with depth again.
                with tf.control_dependencies([dy1, dy2] + block_grads):
                    o1, o2 = tf.identity(o1 - f_out), tf.identity(i2)
            var_grads = [grads.get(v.ref()) for v in (variables or [])]
            return (dy1, dy2), var_grads

        return (y1, y2), grad_fn

    return stack(x1, x2)
