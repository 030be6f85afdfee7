"""TensorFlow-only: `tf.custom_gradient` without zero gradients for its inputs.

In a graph (a `tf.function`, hence every Keras training step), `tf.custom_gradient` records on the
gradient tape one IdentityN op whose outputs are the function's results *and a copy of every
input and variable it reads*. Nothing downstream uses those copies, so when the tape walks back
through the op it fills their gradients with zeros: one `tf.zeros` of each input's shape, per call,
in every backward pass. For our memory-saving gradients these inputs are the big tensors (a
reversible stack's two (B, L, D) streams, a chunk loop's input, attention's per-head q/k/v and
their chunk windows). On the peer LM (one layer, 64K tokens, `attn_chunks=8`, chunked
feed-forward backward) they raised TensorFlow's allocator peak of a training step from 1,685 to
1,752 MiB; with grappler's constant folding on, each such `zeros` of static shape could also become
a constant kept for the function's life (`reformer_keras.runtime.GRAPH_SETTINGS`).

`custom_gradient` here keeps `tf.custom_gradient` (so symbolic `tf.gradients`, used when a nested
`tf.function` or a loop body is differentiated, still sees the custom gradient) and records the
same gradient function once more on the tape, this time producing only the results. A later
recording of a tensor replaces the earlier one on the tape, so the IdentityN op becomes
unreachable from any loss and its zeros are never made.
"""

import functools

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import


def _unique_variables(variables, args):
    """Variables in first-seen order, without duplicates and without those passed as args."""
    seen, out = set(), []
    for v in variables:
        if v.ref() not in seen and all(v is not a for a in args):
            seen.add(v.ref())
            out.append(v)
    return out


def custom_gradient(f):
    """Decorator with `tf.custom_gradient`'s contract: f(*tensors) -> (result, grad_fn).

    `grad_fn(*d_results)` returns one gradient per positional input (None allowed), or, when f
    reads variables, `grad_fn(*d_results, variables=...)` returns (input grads, variable grads)
    with the variable grads in the order of `variables`. Inputs are positional tensors only.
    """

    @functools.wraps(f)
    def call(*args):
        grad_fns = []

        def keep_grad_fn(*inputs):
            result, grad_fn = f(*inputs)
            grad_fns.append(grad_fn)
            return result, grad_fn

        with record.VariableWatcher() as watcher:
            result = tf.custom_gradient(keep_grad_fn)(*args)
        if tf.executing_eagerly() or not record.could_possibly_record():
            return result  # eager tf.custom_gradient records the results only already
        variables = _unique_variables(watcher.watched_variables(), args)
        flat_result = tf.nest.flatten(result)

        def tape_grad(*d_results):
            d_results = tf.nest.pack_sequence_as(result, list(d_results))
            d_results = d_results if isinstance(d_results, (list, tuple)) else [d_results]
            if variables:
                d_inputs, d_variables = grad_fns[0](*d_results, variables=variables)
            else:
                d_inputs, d_variables = grad_fns[0](*d_results), []
            return tf.nest.flatten(d_inputs) + list(d_variables)

        inputs = [tf.convert_to_tensor(a) for a in args] + [v.handle for v in variables]
        record.record_operation(f.__name__, flat_result, inputs, tape_grad)
        return result

    return call
