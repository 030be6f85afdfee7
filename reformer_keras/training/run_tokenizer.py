"""The text tokenizer of a run, chosen by name, built from the training text, saved in the run.

  build_tokenizer(kind, texts, vocab_size)  "bytes" | "chars" | "sentencepiece" -> tokenizer
  tokenizer_record(tokenizer, model_dir)    writes what the tokenizer needs into model_dir
                                            (SentencePiece: tokenizer/sentencepiece.model) and
                                            returns the JSON record for run.json
  load_tokenizer(record, model_dir)         the record -> the same tokenizer

"chars" keeps the `vocab_size - 3` most frequent characters (pad, eos, unknown are ids 0-2);
"sentencepiece" trains a unigram model with byte fallback (lossless for UTF-8) on the texts.
"""
import os

from reformer_keras.datasets.sources import TOKENIZERS  # pure Python

SENTENCEPIECE_FILE = os.path.join("tokenizer", "sentencepiece.model")


def build_tokenizer(kind, texts=None, vocab_size=None):
    """A text tokenizer; `texts` (iterable of str) are read for chars / sentencepiece.

    Raises ValueError for an unknown kind or a vocabulary SentencePiece cannot build.
    """
    from reformer_keras.tokenizers import (ByteTokenizer, SentencePieceTokenizer,
                                           UnicodeCharTokenizer, train_sentencepiece)
    if kind == "bytes":
        return ByteTokenizer()
    if kind not in TOKENIZERS:
        raise ValueError(f"unknown tokenizer {kind!r}; expected one of {', '.join(TOKENIZERS)}")
    texts = [t for t in texts if t]
    if not texts:
        raise ValueError(f"the {kind} tokenizer needs training text, and there is none")
    if kind == "chars":
        return UnicodeCharTokenizer.from_corpus(texts, max_size=max(1, int(vocab_size) - 3)
                                                if vocab_size else None)
    try:
        proto = train_sentencepiece(texts, vocab_size)
    except RuntimeError as err:  # e.g. "Vocabulary size is smaller than required_chars"
        raise ValueError(f"SentencePiece cannot build --vocab_size={vocab_size} from this "
                         f"text ({' '.join(str(err).split())[:200]})") from None
    return SentencePieceTokenizer(model=proto)


def tokenizer_record(tokenizer, model_dir):
    """Saves what `tokenizer` needs under model_dir; returns its run.json record."""
    kind = {"ByteTokenizer": "bytes", "UnicodeCharTokenizer": "chars",
            "SentencePieceTokenizer": "sentencepiece"}[type(tokenizer).__name__]
    record = {"kind": kind, "vocab_size": int(tokenizer.vocab_size)}
    if kind == "chars":
        record["vocabulary"] = "".join(tokenizer.vocabulary)
    elif kind == "sentencepiece":
        path = os.path.join(model_dir, SENTENCEPIECE_FILE)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + f".tmp-{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(tokenizer.model_proto)
        os.replace(tmp, path)
        record["model_file"] = SENTENCEPIECE_FILE
    return record


def load_tokenizer(record, model_dir):
    """The tokenizer a run.json record describes (None for a run without text)."""
    if not record:
        return None
    from reformer_keras.tokenizers import (ByteTokenizer, SentencePieceTokenizer,
                                           UnicodeCharTokenizer)
    kind = record["kind"]
    if kind == "bytes":
        return ByteTokenizer()
    if kind == "chars":
        return UnicodeCharTokenizer(vocabulary=record["vocabulary"])
    if kind == "sentencepiece":
        return SentencePieceTokenizer(model=os.path.join(model_dir, record["model_file"]))
    raise ValueError(f"unknown tokenizer kind {kind!r} in the run description")
