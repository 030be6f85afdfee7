"""ReformerTextPreprocessor: lossless UTF-8 round trips, shift / padding, tf.data, other
tokenizers, config round trip."""

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.models import ReformerTextPreprocessor
from reformer_keras.tokenizers import train_sentencepiece


def _random_text(rng, n):
    # Code points from ASCII to the astral planes (no surrogates), incl. NUL and combining marks.
    ranges = [(0, 0x7F), (0x80, 0x7FF), (0x800, 0xD7FF), (0xE000, 0xFFFF), (0x10000, 0x10FFFF)]
    out = []
    for _ in range(n):
        lo, hi = ranges[rng.integers(len(ranges))]
        out.append(chr(int(rng.integers(lo, hi + 1))))
    return "".join(out)


def test_bytes_round_trip_is_lossless_for_arbitrary_utf8():
    rng = np.random.default_rng(0)
    texts = [_random_text(rng, int(rng.integers(0, 40))) for _ in range(20)]
    texts += ["", "\x00", "naïve café — 日本語 🤖 e\u0301", "\U0010FFFF"]
    pre = ReformerTextPreprocessor(sequence_length=200)
    out = pre.tokenize(texts)
    ids = out["token_ids"].numpy()
    for text, row, mask in zip(texts, ids, out["padding_mask"].numpy()):
        utf8 = text.encode("utf-8")
        # Reference: start (eos=1), bytes + 2, end (eos=1), then pad 0.
        want = [1] + [b + 2 for b in utf8] + [1]
        assert row[:len(want)].tolist() == want and (row[len(want):] == 0).all()
        assert mask.sum() == len(want)
    back = pre.detokenize(ids).numpy()
    assert [b.decode("utf-8") for b in back] == texts


def test_lm_outputs_are_shifted_and_padded():
    pre = ReformerTextPreprocessor(sequence_length=6)
    x, y, w = pre(tf.constant(["ab", "abcdefghij"]))
    # "ab" -> [1, 99, 100, 1]; "abcdefghij" -> [1, 99, ..., 108, 1] truncated to 7 = L + 1.
    assert x["token_ids"].numpy().tolist() == [[1, 99, 100, 1, 0, 0], [1, 99, 100, 101, 102, 103]]
    assert y.numpy().tolist() == [[99, 100, 1, 0, 0, 0], [99, 100, 101, 102, 103, 104]]
    assert w.numpy().tolist() == [[1, 1, 1, 0, 0, 0], [1] * 6]
    assert x["padding_mask"].numpy().tolist() == [[1, 1, 1, 1, 0, 0], [1] * 6]
    # Scalar input and tf.data.
    xs, ys, _ = pre("ab")
    assert xs["token_ids"].shape == (6,) and ys.numpy().tolist() == [99, 100, 1, 0, 0, 0]
    ds = tf.data.Dataset.from_tensor_slices(["ab", "abcdefghij"]).batch(2).map(pre)
    (dx, dy, _), = list(ds)
    np.testing.assert_array_equal(dx["token_ids"], x["token_ids"])
    np.testing.assert_array_equal(dy, y)


def test_chars_and_sentencepiece_tokenizers_and_config_round_trip(tmp_path):
    chars = ReformerTextPreprocessor("chars", sequence_length=8,
                                     tokenizer_kwargs={"vocabulary": "abc "},
                                     add_start_token=False)
    ids = chars.tokenize(["ab ca"])["token_ids"].numpy()
    assert ids.tolist() == [[3, 4, 6, 5, 3, 1, 0, 0]]
    corpus = ["the quick brown fox jumps over the lazy dog"] * 50 + ["Über Ünïcode ✓"] * 10
    train_sentencepiece(corpus, 300, tmp_path)
    sp = ReformerTextPreprocessor.from_sentencepiece(tmp_path / "sentencepiece.model",
                                                     sequence_length=32)
    text = "the lazy fox ✓ Ünïcode"
    assert sp.detokenize(sp.tokenize([text])["token_ids"]).numpy()[0].decode() == text
    for pre in (chars, sp, ReformerTextPreprocessor(sequence_length=16)):
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(pre)))
        clone = keras.saving.deserialize_keras_object(config)
        assert type(clone.tokenizer) is type(pre.tokenizer)
        a, b = pre(["ab ca", "ba"]), clone(["ab ca", "ba"])
        np.testing.assert_array_equal(a[0]["token_ids"], b[0]["token_ids"])
        np.testing.assert_array_equal(a[1], b[1])


def test_bad_inputs_raise():
    pre = ReformerTextPreprocessor(sequence_length=4)
    with pytest.raises(ValueError, match="tf.string"):
        pre(tf.constant([1, 2]))
    with pytest.raises(ValueError, match="rank"):
        pre(tf.constant([["a"]]))
    with pytest.raises(ValueError, match="integer"):
        pre.detokenize(np.array([1.0, 2.0]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="vocab_size=258"):
        pre.detokenize(np.array([5, 300]))
    with pytest.raises(ValueError, match="sequence_length"):
        ReformerTextPreprocessor(sequence_length=0)
    with pytest.raises(ValueError, match="Unknown tokenizer"):
        ReformerTextPreprocessor("words")
