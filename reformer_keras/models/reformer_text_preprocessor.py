"""`ReformerTextPreprocessor`: strings -> fixed-length ids / labels / padding mask (keras-hub
style causal-LM preprocessor), over the package's graph-compatible text tokenizers."""

import keras
import tensorflow as tf

from reformer_keras.tokenizers.base import TextTokenizer
from reformer_keras.tokenizers.subword import SentencePieceTokenizer
from reformer_keras.tokenizers.text import get_tokenizer


def as_text_tokenizer(tokenizer, tokenizer_kwargs=None):
    """A name ("bytes" | "chars" | "sentencepiece"), a serialized tokenizer dict, or a
    `TextTokenizer` -> a `TextTokenizer`."""
    if isinstance(tokenizer, TextTokenizer):
        return tokenizer
    if isinstance(tokenizer, dict):
        return keras.saving.deserialize_keras_object(tokenizer)
    if isinstance(tokenizer, str):
        return get_tokenizer(tokenizer, **(tokenizer_kwargs or {}))
    raise ValueError("`tokenizer` must be 'bytes', 'chars', 'sentencepiece', a TextTokenizer or a "
                     f"serialized tokenizer, got {type(tokenizer).__name__}.")


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerTextPreprocessor(keras.layers.Layer):
    """Tokenizes, adds start / end tokens, truncates and pads, and shifts for next-token loss.

    The start token is the tokenizer's eos id (the text tokenizers have no separate bos: pieces
    are separated by eos); `detokenize` drops pad and eos ids.

    Args:
      tokenizer: "bytes" (default, `ByteTokenizer`, lossless for any UTF-8), "chars"
        (`UnicodeCharTokenizer`, needs `tokenizer_kwargs={"vocabulary": ...}`),
        "sentencepiece" (needs `tokenizer_kwargs={"model": path_or_bytes}`), or a tokenizer.
      sequence_length: L, the model input length.
      add_start_token, add_end_token: prepend / append eos.

    Call: `pre(strings, y=None, sample_weight=None)` with strings tf.string (B,) (or a scalar)
      -> (x, labels, sample_weight): x = {"token_ids": (B, L) int32, "padding_mask": (B, L)
      bool}, labels (B, L) int32 = the ids shifted left by one, sample_weight (B, L) float32
      (0 on padding). Works eagerly and in `tf.data.Dataset.map`.
    `tokenize(strings)`: the unshifted x dict, (B, L) (for classifiers and prompts).
    `detokenize(ids)`: int ids (B, L) or (L,) -> tf.string (B,) or ().
    """

    def __init__(self, tokenizer="bytes", sequence_length=256, add_start_token=True,
                 add_end_token=True, tokenizer_kwargs=None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or \
                sequence_length < 1:
            raise ValueError(f"`sequence_length` must be a positive int, got {sequence_length!r}.")
        self.tokenizer = as_text_tokenizer(tokenizer, tokenizer_kwargs)
        self.sequence_length = sequence_length
        self.add_start_token = bool(add_start_token)
        self.add_end_token = bool(add_end_token)
        self.built = True  # no weights

    @classmethod
    def from_sentencepiece(cls, model, sequence_length=256, **kwargs):
        """A preprocessor over a SentencePiece model file path (or serialized proto bytes)."""
        return cls(SentencePieceTokenizer(model=model), sequence_length, **kwargs)

    @property
    def vocab_size(self):
        return self.tokenizer.vocab_size

    def _ids(self, strings, length):
        """tf.string (B,) -> (ids (B, length) int32, mask (B, length) bool)."""
        ragged = self.tokenizer.tokenize(strings, add_eos=self.add_end_token)
        if self.add_start_token:
            start = tf.fill([ragged.nrows(), 1], tf.constant(self.tokenizer.eos_id, tf.int32))
            ragged = tf.concat([tf.RaggedTensor.from_tensor(start), ragged], axis=1)
        ragged = ragged[:, :length]
        pad = max(self.tokenizer.pad_id, 0)
        ids = ragged.to_tensor(default_value=pad, shape=[None, length])
        mask = tf.ones_like(ragged, tf.bool).to_tensor(default_value=False, shape=[None, length])
        return ids, mask

    def _strings(self, strings):
        from reformer_keras.tokenizers.base import as_string_tensor  # pylint: disable=import-outside-toplevel
        strings = as_string_tensor(strings, f"{type(self).__name__}")
        return strings, strings.shape.rank == 0

    def tokenize(self, strings):
        """Strings -> {"token_ids": (B, L) int32, "padding_mask": (B, L) bool} (no shift)."""
        strings, scalar = self._strings(strings)
        ids, mask = self._ids(strings[tf.newaxis] if scalar else strings, self.sequence_length)
        if scalar:
            ids, mask = ids[0], mask[0]
        return {"token_ids": ids, "padding_mask": mask}

    def __call__(self, x, *args, **kwargs):
        # Keras only accepts tensors positionally: convert Python strings / lists first.
        if not isinstance(x, tf.Tensor):
            x = self._strings(x)[0]
        return super().__call__(x, *args, **kwargs)

    def call(self, x, y=None, sample_weight=None):  # pylint: disable=unused-argument
        strings, scalar = self._strings(x)
        ids, mask = self._ids(strings[tf.newaxis] if scalar else strings,
                              self.sequence_length + 1)
        out = ({"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]}, ids[:, 1:],
               tf.cast(mask[:, 1:], tf.float32))
        if scalar:
            out = ({k: v[0] for k, v in out[0].items()}, out[1][0], out[2][0])
        return out

    def detokenize(self, ids):
        """int ids (B, L) / (L,) -> tf.string (B,) / (); pad and eos are dropped."""
        return self.tokenizer.detokenize(ids)

    def get_config(self):
        config = super().get_config()
        config.update(tokenizer=keras.saving.serialize_keras_object(self.tokenizer),
                      sequence_length=self.sequence_length,
                      add_start_token=self.add_start_token, add_end_token=self.add_end_token)
        return config
