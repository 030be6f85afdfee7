"""Text tokenizers, checked against Python's own UTF-8 codec and the sentencepiece package."""
import json
import random

import keras
import numpy as np
import pytest
import sentencepiece
import tensorflow as tf

from reformer_keras.tokenizers import (
    ByteTokenizer,
    SentencePieceTokenizer,
    UnicodeCharTokenizer,
    get_tokenizer,
    train_sentencepiece,
)

# Code-point pools: ASCII, controls incl. NUL, Latin-1, combining marks, CJK,
# emoji (astral plane), ZWJ / variation selectors, U+FFFD, RTL.
_POOLS = [
    range(0x20, 0x7F), [0x00, 0x09, 0x0A, 0x0D, 0x1B, 0x7F], range(0xA0, 0x100),
    range(0x300, 0x370), range(0x4E00, 0x4E80), range(0x1F600, 0x1F650),
    [0x200D, 0xFE0F, 0xFFFD, 0x10FFFF], range(0x5D0, 0x5EB),
]


def random_unicode(rng, n, max_len=24, exclude=()):
    """n random strings (the first is empty) from the pools above."""
    strings = [""]
    while len(strings) < n:
        chars = []
        for _ in range(rng.randrange(1, max_len)):
            cp = rng.choice(rng.choice(_POOLS))
            if chr(cp) not in exclude:
                chars.append(chr(cp))
        strings.append("".join(chars))
    return strings


STRINGS = random_unicode(random.Random(0), 40) + [
    "héllo wörld", "👩‍👩‍👧 family", "e\u0301\u0302 combining", "東京タワー", "a\x00b\x00", "\n\t ",
]
# Training text for the small SentencePiece model, covering some of the test characters.
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "Reformer: the efficient transformer, with LSH attention and reversible layers.",
    "Tokenizers turn text into ids, and ids back into text.",
    "naïve café résumé 東京 タワー 😀 emoji",
] * 10


@pytest.fixture(scope="module")
def sp_proto():
    return train_sentencepiece(CORPUS, vocab_size=400)


@pytest.fixture(params=["bytes", "chars", "sentencepiece"])
def tokenizer_and_texts(request, sp_proto):
    """(tokenizer, texts it must round-trip losslessly)."""
    if request.param == "bytes":
        return ByteTokenizer(), STRINGS
    if request.param == "chars":
        return UnicodeCharTokenizer.from_corpus(STRINGS), STRINGS
    # SentencePiece maps a literal U+2581 (its meta-space) to " ": keep it out.
    return SentencePieceTokenizer(sp_proto), [s for s in STRINGS if "\u2581" not in s]


def _decoded(tensor):
    return [x.decode("utf-8") for x in tensor.numpy().tolist()]


# ------------------------------------------------------------------ bytes
def test_byte_ids_are_utf8_bytes_plus_two():
    tok = ByteTokenizer()
    assert (tok.vocab_size, tok.pad_id, tok.eos_id) == (258, 0, 1)
    for s in STRINGS:
        ids = tok.tokenize(s)
        assert ids.dtype == tf.int32 and ids.shape.rank == 1
        assert ids.numpy().tolist() == [b + 2 for b in s.encode("utf-8")]
    batch = tok.tokenize(STRINGS)
    assert isinstance(batch, tf.RaggedTensor) and batch.dtype == tf.int32
    assert batch.to_list() == [[b + 2 for b in s.encode("utf-8")] for s in STRINGS]


def test_byte_round_trip_arbitrary_bytes():
    rng = random.Random(1)
    blobs = [b"", b"\x00", b"\xff\xfe\x80", b"\xc3("] + [rng.randbytes(rng.randrange(0, 50)) for _ in range(20)]
    tok = ByteTokenizer()
    assert tok.detokenize(tok.tokenize(blobs)).numpy().tolist() == blobs
    for blob in blobs:
        assert tok.detokenize(tok.tokenize(blob)).numpy() == blob


def test_byte_detokenize_drops_pad_and_eos_dense_and_ragged():
    tok = ByteTokenizer()
    h, i = ord("h") + 2, ord("i") + 2
    dense = tf.constant([[h, i, 1, 0, 0], [0, h, 0, 0, 0], [0, 0, 0, 0, 0]], tf.int64)
    assert tok.detokenize(dense).numpy().tolist() == [b"hi", b"h", b""]
    assert tok.detokenize(tf.ragged.constant([[h, 1], [], [i]])).numpy().tolist() == [b"h", b"", b"i"]
    assert tok.detokenize([h, i, 1]).numpy() == b"hi"
    assert tok.detokenize(np.array([h, i], np.uint8)).numpy() == b"hi"
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocab_size=258"):
        tok.detokenize(np.array([h, 2**40], np.int64))       # not wrapped around by a cast
    assert tok.tokenize("hi", add_eos=True).numpy().tolist() == [h, i, 1]


# ------------------------------------------------------------------ chars
def test_char_ids_follow_vocabulary():
    vocab = ["a", "é", "😀", "\x00", "東", "\u0301"]
    tok = UnicodeCharTokenizer(vocab)
    assert (tok.vocab_size, tok.pad_id, tok.eos_id, tok.oov_id) == (9, 0, 1, 2)
    for s in ["aé😀", "xa\x00東\u0301e", ""]:
        expected = [3 + vocab.index(c) if c in vocab else 2 for c in s]
        assert tok.tokenize(s).numpy().tolist() == expected
    # OOV ids come back as U+FFFD.
    assert tok.detokenize(tok.tokenize("xa")).numpy().decode("utf-8") == "\ufffda"


def test_char_round_trip_with_vocabulary():
    tok = UnicodeCharTokenizer.from_corpus(STRINGS)
    assert set(tok.vocabulary) == set("".join(STRINGS))
    assert _decoded(tok.detokenize(tok.tokenize(STRINGS))) == STRINGS
    for s in STRINGS[:10]:
        assert tok.detokenize(tok.tokenize(s)).numpy().decode("utf-8") == s


def test_char_from_corpus_orders_by_frequency_then_code_point():
    tok = UnicodeCharTokenizer.from_corpus(["cab", "ba", "b", "zy"])
    # b:3, a:2, then c, y, z once each, by code point.
    assert tok.vocabulary == ["b", "a", "c", "y", "z"]
    assert UnicodeCharTokenizer.from_corpus(["cab", "ba", "b"], max_size=2).vocabulary == ["b", "a"]


def test_char_invalid_utf8_raises_clear_errors():
    tok = UnicodeCharTokenizer("ab")
    with pytest.raises(ValueError, match="not valid UTF-8"):
        tok.tokenize([b"ab", b"a\xffb"])
    fn = tf.function(tok.tokenize, input_signature=[tf.TensorSpec([None], tf.string)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        fn(tf.constant([b"a\xc3"]))
    ds = tf.data.Dataset.from_tensor_slices([b"ok", b"\x80"]).map(tok.tokenize)
    with pytest.raises(tf.errors.InvalidArgumentError, match="not valid UTF-8"):
        list(ds)


def test_char_bad_vocabulary():
    with pytest.raises(ValueError, match="duplicate"):
        UnicodeCharTokenizer("abca")
    with pytest.raises(ValueError, match="single character"):
        UnicodeCharTokenizer(["ab"])


# ----------------------------------------------------------- sentencepiece
def test_sentencepiece_matches_reference_processor(sp_proto):
    tok = SentencePieceTokenizer(sp_proto)
    reference = sentencepiece.SentencePieceProcessor(model_proto=sp_proto)
    assert tok.vocab_size == reference.get_piece_size()
    assert (tok.pad_id, tok.eos_id) == (0, 1) == (reference.pad_id(), reference.eos_id())
    texts = [s for s in STRINGS if "\u2581" not in s]
    assert tok.tokenize(texts).to_list() == [reference.encode(s) for s in texts]
    assert reference.piece_to_id("<0xF0>") != reference.unk_id()   # byte fallback is on


def test_sentencepiece_from_file_and_dir(tmp_path, sp_proto):
    proto = train_sentencepiece(CORPUS, vocab_size=400, model_prefix_or_dir=tmp_path)
    assert (tmp_path / "sentencepiece.model").read_bytes() == proto
    train_sentencepiece(CORPUS, vocab_size=400, model_prefix_or_dir=str(tmp_path / "m"))
    from_path = SentencePieceTokenizer(str(tmp_path / "m.model"))
    from_bytes = SentencePieceTokenizer(sp_proto)
    assert from_path.tokenize(CORPUS[:4]).to_list() == from_bytes.tokenize(CORPUS[:4]).to_list()
    with pytest.raises(ValueError, match="not a valid SentencePiece model"):
        SentencePieceTokenizer(b"not a model")


# ------------------------------------------------------- common interface
def test_round_trip_lossless(tokenizer_and_texts):
    tok, texts = tokenizer_and_texts
    ids = tok.tokenize(texts)
    flat = ids.flat_values.numpy()
    assert flat.min() >= 0 and flat.max() < tok.vocab_size
    assert _decoded(tok.detokenize(ids)) == texts
    # Padded dense batch with eos: same strings.
    with_eos = tok.tokenize(texts, add_eos=True)
    assert all(row[-1] == tok.eos_id for row in with_eos.to_list())
    padded = with_eos.to_tensor(default_value=tok.pad_id)
    assert _decoded(tok.detokenize(padded)) == texts


def test_inside_tf_data_and_tf_function(tokenizer_and_texts):
    tok, texts = tokenizer_and_texts
    texts = texts[:8]
    eager = tok.tokenize(texts).to_list()
    ds = tf.data.Dataset.from_tensor_slices(texts).map(tok.tokenize)
    assert [x.numpy().tolist() for x in ds] == eager
    batched = tf.data.Dataset.from_tensor_slices(texts).batch(3).map(tok.tokenize)
    assert [row for rt in batched for row in rt.to_list()] == eager

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def round_trip(strings):
        return tok.detokenize(tok.tokenize(strings))

    assert _decoded(round_trip(tf.constant([t.encode("utf-8") for t in texts]))) == texts


def test_exported_savedmodel(tokenizer_and_texts, tmp_path):
    tok, texts = tokenizer_and_texts
    module = tf.Module()
    module.tokenizer = tok
    module.encode = tf.function(lambda s: tok.tokenize(s, add_eos=True).to_tensor(),
                                input_signature=[tf.TensorSpec([None], tf.string)])
    module.decode = tf.function(tok.detokenize, input_signature=[tf.TensorSpec([None, None], tf.int32)])
    tf.saved_model.save(module, str(tmp_path / "tok"))
    loaded = tf.saved_model.load(str(tmp_path / "tok"))
    texts = texts[:6]
    ids = loaded.encode(tf.constant(texts))
    assert ids.numpy().tolist() == tok.tokenize(texts, add_eos=True).to_tensor().numpy().tolist()
    assert _decoded(loaded.decode(ids)) == texts


def test_config_round_trip(tokenizer_and_texts):
    tok, texts = tokenizer_and_texts
    config = json.loads(json.dumps(tok.get_config()))
    clone = type(tok).from_config(config)
    assert clone.vocab_size == tok.vocab_size
    assert clone.tokenize(texts).to_list() == tok.tokenize(texts).to_list()
    restored = keras.saving.deserialize_keras_object(
        json.loads(json.dumps(keras.saving.serialize_keras_object(tok))))
    assert type(restored) is type(tok)
    assert restored.tokenize(texts).to_list() == tok.tokenize(texts).to_list()


def test_bad_inputs_raise_clear_errors(tokenizer_and_texts):
    tok, _ = tokenizer_and_texts
    with pytest.raises(ValueError, match="int32"):
        tok.tokenize(tf.constant([1, 2, 3]))
    with pytest.raises(ValueError, match="rank 2"):
        tok.tokenize(tf.constant([["a", "b"]]))
    with pytest.raises(ValueError, match="RaggedTensor"):
        tok.tokenize(tf.ragged.constant([["a"], []]))
    with pytest.raises(ValueError, match="float32"):
        tok.detokenize(tf.constant([1.0, 2.0]))
    with pytest.raises(ValueError, match="rank 1"):
        tok.detokenize(tf.zeros([2, 2, 2], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocab_size"):
        tok.detokenize([3, tok.vocab_size])
    with pytest.raises(tf.errors.InvalidArgumentError, match="negative"):
        tok.detokenize([[3, -1]])
    fn = tf.function(tok.detokenize, input_signature=[tf.TensorSpec([None], tf.int32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocab_size"):
        fn(tf.constant([3, 10_000]))


def test_get_tokenizer(sp_proto):
    assert isinstance(get_tokenizer("bytes"), ByteTokenizer)
    assert get_tokenizer("chars", vocabulary="ab").vocabulary == ["a", "b"]
    assert get_tokenizer("sentencepiece", model=sp_proto).vocab_size == SentencePieceTokenizer(sp_proto).vocab_size
    with pytest.raises(ValueError, match="Unknown tokenizer"):
        get_tokenizer("words")
