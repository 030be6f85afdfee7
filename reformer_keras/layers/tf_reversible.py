"""TensorFlow-only: the memory-saving gradient of a reversible residual stack.

y1 = x1 + f(x2), y2 = x2 + g(y1) is inverted exactly by x2 = y2 - g(y1), x1 = y1 - f(x2), so the
backward pass needs only the stack's outputs: each block's inputs are recomputed from its outputs
and its gradient taken on the spot. Activation memory is then that of one block, whatever the
depth. This module holds the `tf.custom_gradient` that does it; `reversible.py` is the Keras layer.

Depth-independent graphs: in training, blocks of the same structure (same configs up to names and
seeds) share one traced program (`_BlockProgram`: a forward and a backward function for each
half of the block), called once per block with that block's weights through
`Layer.stateless_call` and never inlined. A 12-layer model then traces and holds four small
functions instead of 12 copies of every op, which is what otherwise makes process memory (and
trace time) grow with depth.

Traps this code avoids (each one measured):
- graph-mode `tf.custom_gradient` rejects keyword arguments: the decorated function takes tensors
  positionally and closes over everything else (training flag, padding mask, seeds);
- `grad_fn` receives the underlying `tf.Variable`s in an order of TF's choosing: gradients are
  matched to them by `v.ref()`, never by position;
- the recompute must see the forward's randomness: every block gets an explicit stateless seed
  drawn once per forward, and the same seed is passed again in the recompute;
- the recompute must see the forward's hash buckets: the reconstructed inputs differ from the
  forward's by rounding, and a token whose rotated vector sits on a bucket boundary would hash
  differently (a 2-layer test model did: its lower layer's gradients were off by ~1e-3). An LSH
  branch's forward call returns the buckets it hashed into (`return_buckets`, 4 bytes per token,
  head and round; from the call's own projection), and its recompute is given them, as HF
  transformers does;
- the forward is run with the tape paused, so no intermediate activation is kept alive by an
  outer `GradientTape` (the same device TF's own `recompute_grad` uses);
- one block's recompute must not start before the block above it has its gradients, or the
  executor may run the cheap reconstruction chain ahead and hold every block's activations;
- tf.distribute variables (MirroredVariable) given to the shared programs reused the first
  block's trace, so later blocks got no gradients: such stacks run per block (`_distributed`).
"""

import json
import weakref

import keras
import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import

from reformer_keras.layers.tf_custom_gradient import custom_gradient

_IGNORED_CONFIG_KEYS = ("name", "seed", "hash_seed")
_PROGRAMS = weakref.WeakKeyDictionary()  # template f layer -> {static key: _BlockProgram}


def _values(weights):
    """The tf.Variables behind Keras variables (reading them registers them with the tape)."""
    return [getattr(w, "value", w) for w in weights]


def _structure(layer):
    """A layer's config without the entries that do not change its training-time math."""

    def strip(obj):
        if isinstance(obj, dict):
            return {k: strip(v) for k, v in obj.items() if k not in _IGNORED_CONFIG_KEYS}
        if isinstance(obj, (list, tuple)):
            return [strip(v) for v in obj]
        return obj

    return json.dumps(strip(keras.saving.serialize_keras_object(layer)), sort_keys=True,
                      default=str)


def _is_tensor(value):
    return value is not None and not isinstance(value, (bool, int, float, str))


def _split_kwargs(kwargs):
    """(tensor kwargs, static kwargs): tensors become inputs of the shared functions."""
    tensors = {k: v for k, v in kwargs.items() if _is_tensor(v)}
    return tensors, {k: v for k, v in kwargs.items() if k not in tensors}


class _BlockProgram:
    """Forward and backward of one reversible block structure: four functions (forward and
    backward of each half block), each traced once.

    Called with a block's weights, tensor kwargs (seed, masks) and inputs; every block whose
    (f, g) have this structure reuses the same four functions. Static kwargs (training,
    num_hashes) and the names of the tensor kwargs are part of the program's key. With a context
    (the encoder output of a decoder), f is called as f(x, context, ...) and the backward also
    returns d(context).
    """

    def __init__(self, f, g, f_static, g_static):
        self.f, self.g = f, g
        self.f_static, self.g_static = f_static, g_static
        attrs = {"_noinline": True}
        program = lambda fn: tf.function(fn, autograph=False, experimental_attributes=attrs)
        self.forward_f, self.forward_g = program(self._forward_f), program(self._forward_g)
        self.backward_g, self.backward_f = program(self._backward_g), program(self._backward_f)

    @staticmethod
    def _run(layer, weights, inputs, tensor_kwargs, static_kwargs):
        out, _ = layer.stateless_call(weights[0], weights[1], *inputs, **tensor_kwargs,
                                      **static_kwargs)
        return tf.cast(out, tf.float32)

    def _f(self, f_w, x, ctx, f_t):
        return self._run(self.f, f_w, [x] + ctx, f_t, self.f_static)

    def _g(self, g_w, x, g_t):
        return self._run(self.g, g_w, [x], g_t, self.g_static)

    # Each half of a block is its own function call: a call's inputs stay allocated until it
    # returns, so one call per block would hold x1 through g's forward and y2 and the old dy1
    # through f's recompute and backward (two activations more at the step's peak).

    def _forward_f(self, x1, x2, ctx, f_w, f_t):
        """Returns (y1 = x1 + f(x2), f_t for the backward pass: with f's hash buckets if f
        hashes)."""
        if getattr(self.f, "hashes", False):
            (out, buckets), _ = self.f.stateless_call(f_w[0], f_w[1], x2, *ctx, **f_t,
                                                      **self.f_static, return_buckets=True)
            return x1 + tf.cast(out, tf.float32), dict(f_t, buckets=buckets)
        return x1 + self._f(f_w, x2, ctx, f_t), f_t

    def _forward_g(self, y1, x2, g_w, g_t):
        """Returns y2 = x2 + g(y1)."""
        return x2 + self._g(g_w, y1, g_t)

    def forward(self, x1, x2, ctx, f_w, g_w, f_t, g_t):
        """Returns (y1, y2, f_t for `backward`)."""
        y1, f_t = self.forward_f(x1, x2, ctx, f_w, f_t)
        return y1, self.forward_g(y1, x2, g_w, g_t), f_t

    def _backward_g(self, y1, y2, dy1, dy2, g_w, g_t):
        """Undoes g: returns (x2, dy1 + d(g . y1), g's trainable grads)."""
        with tf.GradientTape() as tape:
            tape.watch([y1] + g_w[0])
            g_out = self._g(g_w, y1, g_t)
        d_y1, *d_g = tape.gradient(g_out, [y1] + g_w[0], output_gradients=dy2)
        return y2 - g_out, dy1 + d_y1, _dense(d_g, g_w[0])

    def _backward_f(self, y1, x2, dy1, dy2, ctx, f_w, f_t):
        """Undoes f: returns (x1, dx2, d context list, f's trainable grads)."""
        with tf.GradientTape() as tape:
            tape.watch([x2] + ctx + f_w[0])
            f_out = self._f(f_w, x2, ctx, f_t)
        d_x2, *d_rest = tape.gradient(f_out, [x2] + ctx + f_w[0], output_gradients=dy1)
        d_ctx, d_f = d_rest[:len(ctx)], d_rest[len(ctx):]
        return y1 - f_out, dy2 + d_x2, _dense(d_ctx, ctx), _dense(d_f, f_w[0])

    def backward(self, y1, y2, dy1, dy2, ctx, f_w, g_w, f_t, g_t):
        """Returns (x1, x2, dx1, dx2, d context list, f trainable grads, g trainable grads).
        `f_t` is the one `forward` returned: the recompute of f attends with the forward's
        hash buckets, whatever rounding did to the reconstructed x2."""
        x2, dy1, d_g = self.backward_g(y1, y2, dy1, dy2, g_w, g_t)
        x1, dx2, d_ctx, d_f = self.backward_f(y1, x2, dy1, dy2, ctx, f_w, f_t)
        return x1, x2, dy1, dx2, d_ctx, d_f, d_g


def _dense(grads, like):
    """Gradients as tensors, zeros for the None ones (function outputs must be tensors)."""
    return [tf.zeros_like(w) if d is None else tf.convert_to_tensor(d)
            for d, w in zip(grads, like)]


def _program(f, g, f_kwargs, g_kwargs, cache):
    """The shared program for block (f, g) called with these kwargs (memoised per structure)."""
    (f_t, f_static), (g_t, g_static) = _split_kwargs(f_kwargs), _split_kwargs(g_kwargs)
    key = (_structure(f), _structure(g),
           json.dumps([f_static, sorted(f_t), g_static, sorted(g_t)], sort_keys=True))
    if key not in cache:
        template = cache.setdefault(("template", key[:2]), (f, g))
        programs = _PROGRAMS.setdefault(template[0], {})
        if key not in programs:
            programs[key] = _BlockProgram(*template, f_static, g_static)
        cache[key] = programs[key]
    return cache[key], f_t, g_t


def _shared_stack(x1, x2, context, blocks, block_kwargs):
    """The stack with one shared program per block structure (training: seeds are given)."""
    cache = {}
    calls = [_program(f, g, fk, gk, cache) for (f, g), (fk, gk) in zip(blocks, block_kwargs)]

    def weights(layer):
        return (_values(layer.trainable_variables), _values(layer.non_trainable_variables))

    @custom_gradient
    def stack(a, b, *ctx):
        ctx = list(ctx)
        f_ts = []  # per block: f's tensor kwargs for the backward pass (+ hash buckets)
        with record.stop_recording():
            for (prog, f_t, g_t), (f, g) in zip(calls, blocks):
                a, b, f_t = prog.forward(a, b, ctx, weights(f), weights(g), f_t, g_t)
                f_ts.append(f_t)
        y1, y2 = tf.identity(a), tf.identity(b)

        def grad_fn(dy1, dy2, variables=None):
            grads, d_ctx = {}, [tf.zeros_like(c) for c in ctx]
            o1, o2 = y1, y2
            for (prog, _, g_t), f_t, (f, g) in reversed(list(zip(calls, f_ts, blocks))):
                f_w, g_w = weights(f), weights(g)
                o1, o2, dy1, dy2, d_c, d_f, d_g = prog.backward(
                    o1, o2, dy1, dy2, ctx, f_w, g_w, f_t, g_t)
                d_ctx = [a + b for a, b in zip(d_ctx, d_c)]
                for v, d in zip(f_w[0] + g_w[0], d_f + d_g):
                    grads[v.ref()] = d if v.ref() not in grads else grads[v.ref()] + d
            return [dy1, dy2] + d_ctx, [grads.get(v.ref()) for v in (variables or [])]

        return (y1, y2), grad_fn

    return stack(x1, x2, *([] if context is None else [context]))


def reversible_stack(x1, x2, blocks, block_kwargs, context=None, stored_top_blocks=0):
    """Runs the reversible stack with a recompute-from-outputs gradient.

    Args:
      x1, x2: (B, L, D) float32 tensors, the two residual streams.
      blocks: list of (f, g) Keras layers, `f(x, [context,] **kwargs)` and `g(x, **kwargs)`
        mapping (B, L, D) to (B, L, D).
      block_kwargs: list (one per block) of (f_kwargs, g_kwargs) dicts passed to every call of f
        and g, forward and recompute alike (padding mask, training flag, seeds, num_hashes).
      context: optional (B, Lc, Dc) float32 tensor given to every f as a second input (the
        encoder output of a decoder); it receives its gradient, summed over the blocks.
      stored_top_blocks: the top this-many blocks run with ordinary backprop: their activations
        are kept from the forward instead of recomputed in the backward pass (one block's
        activations more memory, whatever the depth, for one block's forward less time).
    Returns:
      (y1, y2), each (B, L, D) float32.
    """
    split = max(len(blocks) - stored_top_blocks, 0)
    if split:
        shared = all(fk.get("rng") is not None and gk.get("rng") is not None
                     for fk, gk in block_kwargs[:split]) and not _distributed(blocks[:split])
        stack = _shared_stack if shared else _per_block_stack
        x1, x2 = stack(x1, x2, context, blocks[:split], block_kwargs[:split])
    ctx = [] if context is None else [context]
    for (f, g), (fk, gk) in zip(blocks[split:], block_kwargs[split:]):
        x1 = x1 + tf.cast(f(x2, *ctx, **fk), tf.float32)
        x2 = x2 + tf.cast(g(x1, **gk), tf.float32)
    return x1, x2


def _distributed(blocks):
    """Whether the blocks' variables are tf.distribute variables (MirroredVariable, ...).

    The shared programs take weights as arguments of a `tf.function`; given distributed
    variables, such a call reused the first block's trace for the next blocks of the same
    structure without reading their variables (measured under a two-replica MirroredStrategy:
    the gradient tape saw only the first block's variables, and every later block of that
    structure got no gradients). Those stacks run per block instead.
    """
    return any(isinstance(v, tf.distribute.DistributedValues)
               for f, g in blocks for v in _values(f.trainable_variables + g.trainable_variables))


def _per_block_stack(x1, x2, context, blocks, block_kwargs):
    """The stack with each block traced inline (inference: LSH hashes with per-layer constants,
    so blocks differ beyond their weights). Its recompute, too, attends with the forward's
    buckets."""

    def run(layer, inputs, kwargs):
        return tf.cast(layer(*inputs, **kwargs), tf.float32)

    @custom_gradient
    def stack(a, b, *ctx):
        ctx = list(ctx)
        kwargs = []  # per block, as called: f's with its hash buckets if f hashes
        with record.stop_recording():
            for (f, g), (fk, gk) in zip(blocks, block_kwargs):
                if getattr(f, "hashes", False):
                    out, buckets = f(b, *ctx, **fk, return_buckets=True)
                    fk = dict(fk, buckets=buckets)
                    a = a + tf.cast(out, tf.float32)
                else:
                    a = a + run(f, [b] + ctx, fk)
                kwargs.append((fk, gk))
                b = b + run(g, [a], gk)
        y1, y2 = tf.identity(a), tf.identity(b)

        def grad_fn(dy1, dy2, variables=None):
            grads, d_ctx = {}, [tf.zeros_like(c) for c in ctx]
            o1, o2 = y1, y2
            for (f, g), (fk, gk) in reversed(list(zip(blocks, kwargs))):
                # Block: o1 = i1 + f(i2); o2 = i2 + g(o1). Undo g, then f.
                g_vars = _values(g.trainable_weights)
                with tf.GradientTape() as tape:
                    tape.watch(o1)
                    g_out = run(g, [o1], gk)
                d_o1, *d_g = tape.gradient(g_out, [o1] + g_vars, output_gradients=dy2)
                i2 = o2 - g_out
                dy1 = dy1 + d_o1
                f_vars = _values(f.trainable_weights)
                with tf.GradientTape() as tape:
                    tape.watch([i2] + ctx)
                    f_out = run(f, [i2] + ctx, fk)
                d_i2, *d_rest = tape.gradient(f_out, [i2] + ctx + f_vars, output_gradients=dy1)
                d_c, d_f = d_rest[:len(ctx)], d_rest[len(ctx):]
                dy2 = dy2 + d_i2
                d_ctx = [a if d is None else a + tf.convert_to_tensor(d)
                         for a, d in zip(d_ctx, d_c)]
                block_grads = []
                for v, d in zip(g_vars + f_vars, d_g + d_f):
                    if d is not None:
                        d = tf.convert_to_tensor(d)
                        block_grads.append(d)
                        grads[v.ref()] = d if v.ref() not in grads else grads[v.ref()] + d
                # The next (lower) block's recompute waits for this block's gradients.
                with tf.control_dependencies([dy1, dy2] + block_grads):
                    o1, o2 = tf.identity(o1 - f_out), tf.identity(i2)
            return [dy1, dy2] + d_ctx, [grads.get(v.ref()) for v in (variables or [])]

        return (y1, y2), grad_fn

    return stack(x1, x2, *([] if context is None else [context]))
