"""Graph-compatible text tokenizers: UTF-8 bytes, Unicode characters, SentencePiece.

All tokenizers share the interface of `reformer_keras.tokenizers.base.TextTokenizer`:

* `vocab_size`, `pad_id` (0), `eos_id` (1)                       Python ints
* `tokenize(strings, add_eos=False)`:
      tf.string () -> int32 (n,);  tf.string (batch,) -> int32 RaggedTensor (batch, None)
* `detokenize(ids)`:
      int (n,) -> tf.string ();  int (batch, len) or RaggedTensor (batch, None)
      -> tf.string (batch,); pad and eos ids are dropped.
* `get_config()` / `from_config(config)`; each class is registered with
  `keras.saving.register_keras_serializable(package="reformer_keras")`, so
  `keras.saving.serialize_keras_object` / `deserialize_keras_object` work.

They use only core TF string ops and tensorflow_text ops (no `tf.py_function`), so
they work inside `tf.data.Dataset.map`, `tf.function` and exported SavedModels.
`get_tokenizer(name, **kwargs)` builds one by name ("bytes", "chars", "sentencepiece").
"""
import collections

import keras
import numpy as np
import tensorflow as tf

from reformer_keras.tokenizers.base import TextTokenizer
from reformer_keras.tokenizers.subword import SentencePieceTokenizer, train_sentencepiece

__all__ = [
    "ByteTokenizer",
    "UnicodeCharTokenizer",
    "SentencePieceTokenizer",
    "train_sentencepiece",
    "get_tokenizer",
]

# id -> bytes; pad (0) and eos (1) decode to nothing.
_BYTE_TABLE = np.array([b"", b""] + [bytes([b]) for b in range(256)], dtype=object)


@keras.saving.register_keras_serializable(package="reformer_keras")
class ByteTokenizer(TextTokenizer):
    """UTF-8 byte tokenizer: byte b -> id b + 2; 0 = pad, 1 = eos; vocab_size 258.

    Lossless for any `tf.string`, including bytes that are not valid UTF-8:
    `detokenize(tokenize(s)) == s` byte for byte.

    Example:
      >>> tok = ByteTokenizer()
      >>> tok.tokenize("hi").numpy()          # int32 (2,)
      array([106, 107], dtype=int32)
      >>> tok.detokenize([106, 107, 1, 0]).numpy()
      b'hi'
    """

    def __init__(self, name=None):
        super().__init__(name=name)

    @property
    def vocab_size(self):
        return 258

    def _tokenize_batch(self, strings):
        # strings: tf.string (batch,) -> ragged (batch, None) of 1-byte strings.
        pieces = tf.strings.bytes_split(strings)
        values = tf.reshape(tf.io.decode_raw(pieces.flat_values, tf.uint8), [-1])
        return pieces.with_flat_values(tf.cast(values, tf.int32) + 2)

    def _detokenize_batch(self, ids):
        table = tf.constant(_BYTE_TABLE, dtype=tf.string)
        return tf.strings.reduce_join(tf.gather(table, ids), axis=1)

    def get_config(self):
        return {}


def _as_char_list(vocabulary):
    """A str or iterable of 1-character strings -> list of distinct characters."""
    if isinstance(vocabulary, bytes):
        vocabulary = vocabulary.decode("utf-8")
    chars = list(vocabulary)
    for ch in chars:
        if not isinstance(ch, str) or len(ch) != 1:
            raise ValueError(
                f"UnicodeCharTokenizer: every vocabulary entry must be a single character, got {ch!r}.")
        if 0xD800 <= ord(ch) <= 0xDFFF:
            raise ValueError(
                f"UnicodeCharTokenizer: vocabulary entry U+{ord(ch):04X} is a surrogate, which is "
                "not encodable in UTF-8.")
    duplicates = sorted({c for c, n in collections.Counter(chars).items() if n > 1})
    if duplicates:
        raise ValueError(f"UnicodeCharTokenizer: duplicate vocabulary characters {duplicates!r}.")
    return chars


@keras.saving.register_keras_serializable(package="reformer_keras")
class UnicodeCharTokenizer(TextTokenizer):
    """Unicode code points mapped through a fixed character vocabulary.

    Ids: 0 = pad, 1 = eos, 2 = OOV (out of vocabulary), then `vocabulary[i]` -> 3 + i.
    `vocab_size = 3 + len(vocabulary)`. The OOV id detokenizes to U+FFFD.

    `tokenize` requires valid UTF-8: invalid input raises `ValueError("... is not
    valid UTF-8 ...")` when called eagerly, and a `tf.errors.InvalidArgumentError`
    with the same wording when run inside a graph (tf.data / tf.function).
    Round trips are lossless for UTF-8 text whose characters are all in the vocabulary.

    Args:
      vocabulary: a string, or a list of single characters, with no duplicates.
    """

    oov_id = 2

    def __init__(self, vocabulary, name=None):
        super().__init__(name=name)
        chars = _as_char_list(vocabulary)
        self._vocabulary = "".join(chars)
        codepoints = np.array([ord(c) for c in chars], dtype=np.int32)
        order = np.argsort(codepoints, kind="stable")
        self._sorted_codepoints = codepoints[order]                 # int32 (V,)
        self._sorted_ids = (order + 3).astype(np.int32)             # int32 (V,)
        # id -> code point; pad/eos never reach the lookup, OOV -> U+FFFD.
        self._id_to_codepoint = np.concatenate(
            [np.array([0, 0, 0xFFFD], np.int32), codepoints]).astype(np.int32)

    @classmethod
    def from_corpus(cls, texts, max_size=None):
        """Builds the vocabulary from an iterable of `str` (or UTF-8 `bytes`).

        Characters are ordered by descending frequency, ties by ascending code
        point; `max_size` (if given) keeps only that many characters (the three
        special ids are not counted).
        """
        counts = collections.Counter()
        for i, text in enumerate(texts):
            if isinstance(text, bytes):
                try:
                    text = text.decode("utf-8")
                except UnicodeDecodeError:
                    raise ValueError(f"UnicodeCharTokenizer.from_corpus: text {i} is not valid UTF-8.") from None
            counts.update(text)
        chars = sorted(counts, key=lambda c: (-counts[c], ord(c)))
        if max_size is not None:
            chars = chars[:max_size]
        return cls(vocabulary=chars)

    @property
    def vocabulary(self):
        """The characters of ids 3, 4, ... as a list."""
        return list(self._vocabulary)

    @property
    def vocab_size(self):
        return 3 + len(self._vocabulary)

    def _check_utf8(self, strings):
        """Raises (eager) or asserts (graph) that every string is valid UTF-8."""
        # Transcoding UTF-8 -> UTF-8 only changes strings that contain invalid bytes.
        valid = tf.equal(tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace"),
                         strings)
        if tf.executing_eagerly():
            bad = np.flatnonzero(~valid.numpy())
            if bad.size:
                sample = strings.numpy()[bad[0]][:40]
                raise ValueError(
                    f"UnicodeCharTokenizer.tokenize: input string at index {bad[0]} is not valid "
                    f"UTF-8 (starts {sample!r}); use ByteTokenizer for arbitrary bytes.")
            return strings
        check = tf.debugging.Assert(
            tf.reduce_all(valid),
            ["UnicodeCharTokenizer.tokenize: input is not valid UTF-8; use ByteTokenizer for "
             "arbitrary bytes."])
        with tf.control_dependencies([check]):
            return tf.identity(strings)

    def _tokenize_batch(self, strings):
        strings = self._check_utf8(strings)
        codepoints = tf.strings.unicode_decode(strings, "UTF-8", errors="strict")  # (batch, None)
        flat = codepoints.flat_values
        if len(self._vocabulary) == 0:
            return codepoints.with_flat_values(tf.fill(tf.shape(flat), self.oov_id))
        table = tf.constant(self._sorted_codepoints)
        index = tf.minimum(tf.searchsorted(table, flat), len(self._vocabulary) - 1)
        found = tf.equal(tf.gather(table, index), flat)
        ids = tf.where(found, tf.gather(tf.constant(self._sorted_ids), index), self.oov_id)
        return codepoints.with_flat_values(ids)

    def _detokenize_batch(self, ids):
        codepoints = tf.gather(tf.constant(self._id_to_codepoint), ids)
        return tf.strings.unicode_encode(codepoints, "UTF-8")

    def get_config(self):
        return {"vocabulary": self._vocabulary}


_TOKENIZERS = {
    "bytes": ByteTokenizer,
    "chars": UnicodeCharTokenizer,
    "sentencepiece": SentencePieceTokenizer,
}


def get_tokenizer(name, **kwargs):
    """Builds a text tokenizer by name.

    Args:
      name: "bytes" (`ByteTokenizer`), "chars" (`UnicodeCharTokenizer`, needs
        `vocabulary=`) or "sentencepiece" (`SentencePieceTokenizer`, needs `model=`).
      **kwargs: constructor arguments.
    """
    if name not in _TOKENIZERS:
        raise ValueError(f"Unknown tokenizer {name!r}; expected one of {sorted(_TOKENIZERS)}.")
    return _TOKENIZERS[name](**kwargs)
