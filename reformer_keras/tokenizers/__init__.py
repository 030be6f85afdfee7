"""Tokenizers: graph-compatible text tokenizers and the MIDI performance-event tokenizer.

Text (tf.data / tf.function / SavedModel compatible):
  ByteTokenizer          UTF-8 bytes, vocab 258, lossless for any bytes.
  UnicodeCharTokenizer   code points through a fixed character vocabulary.
  SentencePieceTokenizer tensorflow_text SentencePiece; `train_sentencepiece` trains one offline.
  get_tokenizer(name)    "bytes" | "chars" | "sentencepiece".

Music (NumPy / pretty_midi, host side):
  MidiEventTokenizer     NOTE_ON / NOTE_OFF / TIME_SHIFT / VELOCITY events, vocab 390.
"""
from reformer_keras.tokenizers.base import TextTokenizer
from reformer_keras.tokenizers.midi import MidiEventTokenizer
from reformer_keras.tokenizers.subword import SentencePieceTokenizer, train_sentencepiece
from reformer_keras.tokenizers.text import ByteTokenizer, UnicodeCharTokenizer, get_tokenizer

__all__ = [
    "TextTokenizer",
    "ByteTokenizer",
    "UnicodeCharTokenizer",
    "SentencePieceTokenizer",
    "train_sentencepiece",
    "get_tokenizer",
    "MidiEventTokenizer",
]
