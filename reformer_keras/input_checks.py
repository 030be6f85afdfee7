"""Every check of user-supplied values: one message per rule, used by the configuration, the
layers, the models and the trainers' flags.

Scalar checks (`integer`, `rate`, `positive_float`, `boolean`, `seed`, `num_buckets`) are pure
Python: this module imports neither TensorFlow nor Keras at import time (the trainers validate
flags before importing TensorFlow; `reformer_keras.config` uses it). Tensor checks
(`check_token_ids`, `check_prompt`) import NumPy / Keras when called.

Static properties of tensors (dtype, rank) raise `ValueError` at call/trace time. Value ranges
are checked in Python when the ids are concrete (eager tensors, NumPy); inside a traced graph
(`model.fit`, `predict`, a SavedModel) a `tf.debugging` assertion fails the step with the same
message.
"""
import numbers


def integer(name, value, minimum=1, maximum=None):
    """`value` if it is an int (not a bool) in [minimum, maximum), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum or (
            maximum is not None and value >= maximum):
        bound = f"in [{minimum}, {maximum})" if maximum is not None else f">= {minimum}"
        raise ValueError(f"`{name}` must be an integer {bound}, got {value!r}.")
    return int(value)


def optional_integer(name, value, minimum=1):
    """None, or `integer(name, value, minimum)`."""
    return None if value is None else integer(name, value, minimum)


def rate(name, value):
    """A dropout rate: a float in [0, 1)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}.")
    return float(value)


def optional_positive_float(name, value):
    """None, or a number > 0 (as float)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"`{name}` must be None or a number > 0, got {value!r}.")
    return float(value)


def boolean(name, value):
    """True / False (also 0 / 1 and NumPy bools)."""
    if value in (True, False) and not isinstance(value, str):
        return bool(value)
    raise ValueError(f"`{name}` must be True or False, got {value!r}.")


def seed(name, value):
    """None or an int."""
    if value is not None and (isinstance(value, bool) or
                              not isinstance(value, numbers.Integral)):
        raise ValueError(f"`{name}` must be an int or None, got {value!r}.")
    return None if value is None else int(value)


def integer_tuple(name, value, minimum=1):
    """None, or a non-empty list / tuple of ints >= minimum, as a tuple."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ValueError(f"`{name}` must be None or a non-empty list of integers, got "
                         f"{value!r}.")
    values = tuple(value)
    if not values:
        raise ValueError(f"`{name}` must be None or a non-empty list of integers, got "
                         f"{value!r}.")
    return tuple(integer(name, v, minimum) for v in values)


def num_buckets(name, value):
    """LSH buckets: None, 1, an even int >= 2, or a list of even ints (a factorised hash)."""
    if value is None:
        return None
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    for b in values:
        if isinstance(b, bool) or not isinstance(b, numbers.Integral) or b < 1 or (
                b > 1 and b % 2):
            raise ValueError(
                f"`{name}` must be None, 1, an even integer >= 2, or a list of even "
                f"integers (a factorised hash), got {value!r}.")
    return tuple(int(b) for b in values) if isinstance(value, (list, tuple)) else int(value)


def choices(name, value, allowed):
    """A non-empty tuple of entries of `allowed` (a single string is one entry)."""
    values = (value,) if isinstance(value, str) else tuple(value or ())
    if not values or any(v not in allowed for v in values):
        raise ValueError(f"`{name}` must be a non-empty list of {tuple(allowed)}, got "
                         f"{value!r}.")
    return values


def check_prompt(prompt_ids, vocab_size, name="prompt_ids"):
    """Validates a prompt: int array (B, P), P >= 1, ids in [0, vocab_size). Returns int32."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    prompt = np.asarray(prompt_ids)
    if prompt.dtype.kind not in "iu":
        raise ValueError(f"`{name}` must be integer token ids, got dtype {prompt.dtype}.")
    if prompt.ndim != 2:
        raise ValueError(f"`{name}` must have rank 2 (batch, length), got shape {prompt.shape}.")
    if prompt.shape[1] == 0:
        raise ValueError(f"`{name}` is empty: give at least one token (e.g. the start token).")
    if prompt.size and (prompt.min() < 0 or prompt.max() >= vocab_size):
        raise ValueError(f"`{name}` must be in [0, vocab_size={vocab_size}), got values in "
                         f"[{prompt.min()}, {prompt.max()}].")
    return prompt.astype(np.int32)


def check_token_ids(token_ids, vocab_size, name="token_ids"):
    """Validates integer ids of shape (batch, length) in [0, vocab_size). Returns the ids."""
    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
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


def _is_eager(x):
    import keras  # pylint: disable=import-outside-toplevel
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    return isinstance(x, tf.Tensor) and hasattr(x, "numpy") and tf.executing_eagerly()
