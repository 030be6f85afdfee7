"""The common interface of the graph-compatible text tokenizers.

Every text tokenizer in this package is a `tf.Module` (so resources such as a
SentencePiece model are tracked when the tokenizer is attached to an exported
module) whose `tokenize` / `detokenize` use only TensorFlow and tensorflow_text
ops: they run eagerly, inside `tf.data.Dataset.map`, inside `tf.function`, and
inside a SavedModel.

Shapes and dtypes shared by all text tokenizers:

* `tokenize(strings, add_eos=False)`
    - `tf.string` scalar ()      -> `tf.int32` Tensor (n,)
    - `tf.string` vector (batch,) -> `tf.RaggedTensor` int32 (batch, None)
* `detokenize(ids)` (any integer dtype)
    - dense (n,)                 -> `tf.string` scalar ()
    - dense (batch, len)         -> `tf.string` (batch,)
    - `tf.RaggedTensor` (batch, None) -> `tf.string` (batch,)
  Pad and end-of-sequence ids are dropped wherever they occur. Ids outside
  `[0, vocab_size)` raise `tf.errors.InvalidArgumentError` (a tf.debugging
  assertion, eager or in a graph) whose message names the problem.

Subclasses implement `vocab_size`, `_tokenize_batch` (1-D strings -> ragged int32)
and `_detokenize_batch` (ragged int32 without pad/eos -> 1-D strings).
"""
import tensorflow as tf


def as_string_tensor(strings, where):
    """Converts `strings` to a dense `tf.string` tensor of rank 0 or 1.

    Args:
      strings: a Python `str`/`bytes`, a list of them, a NumPy string array or a
        `tf.string` Tensor of rank 0 or 1 (rank must be statically known).
      where: the caller's name, used in error messages.

    Returns:
      A `tf.string` Tensor of shape () or (batch,).

    Raises:
      ValueError: for ragged input, a non-string dtype, an unknown rank or rank > 1.
    """
    if isinstance(strings, tf.RaggedTensor):
        raise ValueError(
            f"{where}: expected a dense tf.string tensor of rank 0 or 1, got a RaggedTensor "
            f"of shape {strings.shape}.")
    if isinstance(strings, (list, tuple)) and len(strings) == 0:
        return tf.constant([], dtype=tf.string)
    try:
        tensor = tf.convert_to_tensor(strings)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"{where}: cannot convert input of type {type(strings).__name__} to a tf.string "
            f"tensor ({err}).") from None
    if tensor.dtype != tf.string:
        raise ValueError(
            f"{where}: expected tf.string input, got dtype {tensor.dtype.name} "
            f"(pass text, not token ids).")
    rank = tensor.shape.rank
    if rank is None:
        raise ValueError(
            f"{where}: the rank of the input must be known statically (0 or 1); give the "
            "tf.function an input_signature such as tf.TensorSpec([None], tf.string).")
    if rank > 1:
        raise ValueError(
            f"{where}: expected a scalar string or a 1-D batch of strings, got rank {rank} "
            f"(shape {tensor.shape}); flatten the input or unbatch the dataset first.")
    return tensor


def as_ragged_ids(ids, where):
    """Converts token ids to a rank-2 `tf.RaggedTensor`.

    Args:
      ids: integer ids: dense (n,), dense (batch, len), a `tf.RaggedTensor`
        (batch, None), or (nested) Python lists of ints.
      where: the caller's name, used in error messages.

    Returns:
      `(ragged, was_vector)`: `ragged` is an integer RaggedTensor (batch, None) of
      the input's dtype; `was_vector` is True if the input was 1-D (batch = 1).

    Raises:
      ValueError: for a non-integer dtype or a rank other than 1 or 2.
    """
    if isinstance(ids, (list, tuple)) and len(ids) == 0:
        ids = tf.zeros([0], tf.int32)
    if isinstance(ids, (list, tuple)):
        try:
            ids = tf.convert_to_tensor(ids)
        except (TypeError, ValueError):
            try:
                ids = tf.ragged.constant(ids)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: cannot convert the ids to a tensor ({err}).") from None
    if isinstance(ids, tf.RaggedTensor):
        ragged, was_vector = ids, False
        if ragged.shape.rank != 2:
            raise ValueError(
                f"{where}: expected a RaggedTensor of rank 2 (batch, None), got shape {ragged.shape}.")
    else:
        tensor = tf.convert_to_tensor(ids)
        rank = tensor.shape.rank
        if rank == 1:
            ragged, was_vector = tf.RaggedTensor.from_tensor(tensor[tf.newaxis]), True
        elif rank == 2:
            ragged, was_vector = tf.RaggedTensor.from_tensor(tensor), False
        else:
            raise ValueError(
                f"{where}: expected token ids of rank 1 (len,) or 2 (batch, len), got shape "
                f"{tensor.shape}.")
    if not ragged.dtype.is_integer:
        raise ValueError(f"{where}: expected integer token ids, got dtype {ragged.dtype.name}.")
    return ragged, was_vector


def check_id_range(ragged, vocab_size, where):
    """Asserts `0 <= ids < vocab_size` and returns the ids cast to int32.

    Args:
      ragged: integer `tf.RaggedTensor` (batch, None).
      vocab_size: Python int.
      where: the caller's name, used in the assertion message.

    Returns:
      The same ids as an int32 RaggedTensor (batch, None).

    Raises:
      tf.errors.InvalidArgumentError: (eagerly, or when the graph runs) if an id
        is out of range.
    """
    flat = tf.cast(ragged.flat_values, tf.int64)   # so that e.g. uint8 ids compare correctly
    message = (f"{where}: token ids must be in [0, vocab_size={vocab_size}); "
               "found an id out of range")
    checks = [
        tf.debugging.assert_non_negative(flat, message=message + " (negative id)"),
        tf.debugging.assert_less(flat, tf.constant(vocab_size, tf.int64),
                                 message=message + " (id >= vocab_size)"),
    ]
    with tf.control_dependencies([c for c in checks if c is not None]):
        flat = tf.identity(flat)
    return ragged.with_flat_values(tf.cast(flat, tf.int32))


class TextTokenizer(tf.Module):
    """Base class: shape handling, pad/eos dropping and the id range check.

    Subclasses define `vocab_size`, `pad_id`, `eos_id` (Python ints),
    `_tokenize_batch(strings)` with strings `tf.string` (batch,) returning an int32
    `tf.RaggedTensor` (batch, None), and `_detokenize_batch(ids)` with ids int32
    `tf.RaggedTensor` (batch, None) (pad/eos already removed) returning
    `tf.string` (batch,). They also implement `get_config` and may override
    `from_config`.
    """

    pad_id = 0
    eos_id = 1

    @property
    def vocab_size(self):
        """Number of ids, including the special ids."""
        raise NotImplementedError

    def _tokenize_batch(self, strings):
        raise NotImplementedError

    def _detokenize_batch(self, ids):
        raise NotImplementedError

    def tokenize(self, strings, add_eos=False):
        """Strings -> token ids.

        Args:
          strings: `tf.string` () or (batch,) (or Python str/bytes/list of them).
          add_eos: append `eos_id` to every sequence.

        Returns:
          int32 Tensor (n,) for a scalar input; int32 `tf.RaggedTensor`
          (batch, None) for a vector input.
        """
        where = f"{type(self).__name__}.tokenize"
        strings = as_string_tensor(strings, where)
        scalar = strings.shape.rank == 0
        ragged = self._tokenize_batch(strings[tf.newaxis] if scalar else strings)
        ragged = tf.cast(ragged, tf.int32)
        if add_eos:
            if self.eos_id < 0:
                raise ValueError(f"{where}: add_eos=True but this vocabulary has no eos id.")
            eos = tf.fill([ragged.nrows(), 1], tf.constant(self.eos_id, tf.int32))
            ragged = tf.concat([ragged, tf.RaggedTensor.from_tensor(eos)], axis=1)
        return ragged[0] if scalar else ragged

    def detokenize(self, ids):
        """Token ids -> strings; pad and eos ids are dropped.

        Args:
          ids: integer ids, dense (n,) or (batch, len), or `tf.RaggedTensor`
            (batch, None).

        Returns:
          `tf.string` () for 1-D input, else `tf.string` (batch,).

        Raises:
          ValueError: non-integer dtype or wrong rank.
          tf.errors.InvalidArgumentError: an id outside [0, vocab_size).
        """
        where = f"{type(self).__name__}.detokenize"
        ragged, was_vector = as_ragged_ids(ids, where)
        ragged = check_id_range(ragged, self.vocab_size, where)
        keep = tf.ones_like(ragged.flat_values, dtype=tf.bool)
        for special in (self.pad_id, self.eos_id):
            if special >= 0:
                keep = tf.logical_and(keep, tf.not_equal(ragged.flat_values, special))
        ragged = tf.ragged.boolean_mask(ragged, ragged.with_flat_values(keep))
        strings = self._detokenize_batch(ragged)
        return strings[0] if was_vector else strings

    def get_config(self):
        """Constructor arguments (JSON-serialisable)."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config):
        """Rebuilds the tokenizer from `get_config()` output."""
        return cls(**config)

    def __repr__(self):
        return f"{type(self).__name__}(vocab_size={self.vocab_size})"
