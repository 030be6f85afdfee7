"""SentencePiece subword tokenizer (tensorflow_text ops) and offline training.

`train_sentencepiece` trains a model with the `sentencepiece` pip package, in
memory, with the id layout used across reformer_keras (0 = pad, 1 = eos, 2 = unk,
no bos), `byte_fallback=True` (characters outside the vocabulary become byte
pieces) and the identity normaliser without whitespace folding, so the round trip
is lossless for valid UTF-8 text - with one SentencePiece limitation: a literal
U+2581 ('\u2581', the meta-space symbol) decodes to a space.

`SentencePieceTokenizer` wraps `tensorflow_text.SentencepieceTokenizer`, so it runs
inside tf.data, tf.function and SavedModels (the model is a tracked TF resource).
Shapes as in `reformer_keras.tokenizers.base`: tf.string () -> int32 (n,);
tf.string (batch,) -> int32 RaggedTensor (batch, None); detokenize the reverse.
"""
import base64
import io
import os

import keras
import sentencepiece as spm
import tensorflow as tf
import tensorflow_text as tf_text

from reformer_keras.tokenizers.base import TextTokenizer

__all__ = ["SentencePieceTokenizer", "train_sentencepiece"]


def _read_model(model):
    """A model file path (str / PathLike) or serialized proto (bytes) -> bytes."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    if isinstance(model, (str, os.PathLike)):
        with open(model, "rb") as f:
            return f.read()
    raise ValueError(
        "SentencePieceTokenizer: `model` must be a model file path or the serialized model "
        f"proto as bytes, got {type(model).__name__}.")


@keras.saving.register_keras_serializable(package="reformer_keras")
class SentencePieceTokenizer(TextTokenizer):
    """Subword tokenizer backed by `tensorflow_text.SentencepieceTokenizer`.

    `vocab_size`, `pad_id`, `eos_id` and `unk_id` are read from the model (a model
    trained elsewhere may have `pad_id == -1`, i.e. no pad piece; nothing is then
    dropped as padding by `detokenize`, and dense id matrices should be passed as
    RaggedTensors instead). `get_config()` stores the serialized model base64-encoded,
    so the tokenizer survives a config / Keras serialization round trip.

    Args:
      model: path of a `.model` file, or the serialized model proto (bytes).
    """

    def __init__(self, model=None, model_proto_b64=None, name=None):
        super().__init__(name=name)
        if (model is None) == (model_proto_b64 is None):
            raise ValueError("SentencePieceTokenizer: pass exactly one of `model` or `model_proto_b64`.")
        proto = _read_model(model) if model is not None else base64.b64decode(model_proto_b64)
        processor = spm.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(proto)
        except (RuntimeError, OSError) as err:
            raise ValueError(f"SentencePieceTokenizer: not a valid SentencePiece model ({err}).") from None
        self._proto = proto
        self._vocab_size = int(processor.get_piece_size())
        self._pad_id = int(processor.pad_id())
        self._eos_id = int(processor.eos_id())
        self._unk_id = int(processor.unk_id())
        self._sp = tf_text.SentencepieceTokenizer(model=proto, out_type=tf.int32)

    @property
    def model_proto(self):
        """The serialized SentencePiece model (bytes)."""
        return self._proto

    @property
    def vocab_size(self):
        return self._vocab_size

    @property
    def pad_id(self):
        return self._pad_id

    @property
    def eos_id(self):
        return self._eos_id

    @property
    def unk_id(self):
        return self._unk_id

    def _tokenize_batch(self, strings):
        return self._sp.tokenize(strings)

    def _detokenize_batch(self, ids):
        return self._sp.detokenize(ids)

    def get_config(self):
        return {"model_proto_b64": base64.b64encode(self._proto).decode("ascii")}


def train_sentencepiece(texts, vocab_size, model_prefix_or_dir=None, model_type="unigram",
                        **trainer_kwargs):
    """Trains a lossless (byte-fallback) SentencePiece model offline, in memory.

    Args:
      texts: iterable of `str` sentences / documents (the training corpus).
      vocab_size: requested number of pieces. With byte fallback the model always
        holds 3 specials + 256 byte pieces + the characters covering 99.95% of the
        corpus (`character_coverage`), so it must exceed 259 + those characters
        (SentencePiece raises RuntimeError otherwise); the limit is soft
        (`hard_vocab_limit=False`), so a tiny corpus may give a smaller model.
      model_prefix_or_dir: optional. An existing directory (the model is written to
        `<dir>/sentencepiece.model`) or a path prefix (written to `<prefix>.model`).
        None writes nothing.
      model_type: "unigram" (default), "bpe", "char" or "word".
      **trainer_kwargs: extra `sentencepiece.SentencePieceTrainer.train` options,
        overriding the defaults below.

    Returns:
      The serialized model proto (bytes); pass it to `SentencePieceTokenizer(model=...)`.
    """
    texts = [t.decode("utf-8") if isinstance(t, bytes) else str(t) for t in texts]
    if not texts:
        raise ValueError("train_sentencepiece: the corpus is empty.")
    options = dict(
        model_type=model_type,
        vocab_size=int(vocab_size),
        byte_fallback=True,
        character_coverage=0.9995,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        split_digits=True,
        pad_id=0, eos_id=1, unk_id=2, bos_id=-1,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    options.update(trainer_kwargs)
    writer = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(texts), model_writer=writer, **options)
    proto = writer.getvalue()
    if model_prefix_or_dir is not None:
        target = os.fspath(model_prefix_or_dir)
        path = (os.path.join(target, "sentencepiece.model") if os.path.isdir(target)
                else target + ".model")
        with open(path, "wb") as f:
            f.write(proto)
    return proto
