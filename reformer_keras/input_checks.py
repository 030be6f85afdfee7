"""Checks of user inputs that raise clear errors instead of deep TF tracebacks.

Static properties (dtype, rank) raise `ValueError` at call/trace time. Value ranges are checked
in Python when the ids are concrete (eager tensors, NumPy); inside a traced graph (`model.fit`,
`predict`, a SavedModel) a `tf.debugging` assertion fails the step with the same message.
"""

import keras
import numpy as np


def check_token_ids(token_ids, vocab_size, name="token_ids"):
    """Validates integer ids of shape (batch, length) in [0, vocab_size). Returns the ids."""
    dtype = keras.backend.standardize_dtype(token_ids.dtype)
    if "int" not in dtype:
        raise ValueError(
            f"`{name}` must be an integer tensor of token ids, got dtype {dtype}. Tokenize text "
            "first (reformer_keras.tokenizers) or cast ids with `ops.cast(ids, 'int32')`.")
    if len(token_ids.shape) != 2:
        raise ValueError(
            f"`{name}` must have rank 2 (batch, length), got shape {tuple(token_ids.shape)}. "
            "Add a batch axis for a single sequence.")
    message = f"`{name}` must be in [0, vocab_size={vocab_size})"
    if isinstance(token_ids, np.ndarray) or _is_eager(token_ids):
        values = np.asarray(token_ids)
        if values.size and (values.min() < 0 or values.max() >= vocab_size):
            raise ValueError(f"{message}, got values in [{values.min()}, {values.max()}].")
        return token_ids
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        if isinstance(token_ids, tf.Tensor):
            checks = [tf.debugging.assert_non_negative(token_ids, message=message),
                      tf.debugging.assert_less(token_ids, tf.cast(vocab_size, token_ids.dtype),
                                               message=message)]
            with tf.control_dependencies(checks):
                return tf.identity(token_ids)
    return token_ids


def check_length(x, max_len, what="max_len"):
    """Validates that axis 1 of `x` (B, L, ...) has L <= `max_len`. Returns `x`.

    A static L raises ValueError at call / trace time; an unknown L (a `tf.function` or
    SavedModel signature with shape [None, None]) gets a graph assertion, so an over-long
    sequence fails with `tf.errors.InvalidArgumentError` naming both lengths instead of wrapping
    positions. (XLA drops assertions: under `jit_compile` only the static check applies.)
    """
    length = x.shape[1]
    if isinstance(length, int):
        if length > max_len:
            raise ValueError(f"Sequence length {length} exceeds {what} {max_len}.")
        return x
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        if isinstance(x, tf.Tensor):
            actual = tf.shape(x)[1]
            check = tf.debugging.assert_less_equal(
                actual, tf.constant(max_len, actual.dtype),
                message=f"Sequence length (x) exceeds {what} (y = {max_len})")
            with tf.control_dependencies([check]):
                return tf.identity(x)
    return x


def _is_eager(x):
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return isinstance(x, tf.Tensor) and hasattr(x, "numpy") and tf.executing_eagerly()
