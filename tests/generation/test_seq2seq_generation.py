"""Cached encoder-decoder generation (`generate_seq2seq`, `ReformerSeq2Seq.generate`).

(1) every decoding step's logits equal the teacher-forced `model(...)` over the same decoder
prefix, with encoder padding in the batch; (2) greedy generation equals the uncached greedy loop
(the pre-cache `translate`); (3) seeded sampling is reproducible and the same eagerly and in a
`tf.function`; (4) bad arguments raise ValueErrors naming the argument.
"""

import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.generation import (generate_seq2seq, init_seq2seq_cache,
                                       seq2seq_decode_step)
from reformer_keras.models import ReformerSeq2Seq

SRC_VOCAB, TGT_VOCAB = 20, 18


def tiny_seq2seq(decoder_types=("local", "full", "lsh"), seed=3):
    """d_model 16, chunk / bucket size 4, LSH with one bucket (two rounds), built."""
    model = ReformerSeq2Seq(
        encoder_vocab_size=SRC_VOCAB, decoder_vocab_size=TGT_VOCAB, d_model=16,
        num_encoder_layers=1, num_decoder_layers=len(decoder_types), num_heads=2, d_ff=32,
        encoder_attention_types=["full"], decoder_attention_types=list(decoder_types),
        bucket_size=4, num_hashes=2, num_buckets=1, encoder_max_len=16, decoder_max_len=24,
        seed=seed)
    model({"encoder_token_ids": np.zeros((1, 4), "int32"),
           "decoder_token_ids": np.zeros((1, 4), "int32")})
    return model


def ids(batch, length, vocab, seed):
    return np.random.default_rng(seed).integers(1, vocab, size=(batch, length)).astype("int32")


def source_with_padding():
    """Batch of 3 sources of length 10: row 1 has 6 real tokens, row 2 has 3 (junk after)."""
    src = ids(3, 10, SRC_VOCAB, seed=7)
    mask = np.arange(10)[None] < np.array([[10], [6], [3]])
    return src, mask


def forward_fn(model, batch, src_len):
    """Teacher-forced `model(...)` for any decoder prefix length (traced once)."""
    return tf.function(
        lambda src, mask, dec: model({"encoder_token_ids": src, "encoder_padding_mask": mask,
                                      "decoder_token_ids": dec}),
        input_signature=[tf.TensorSpec((batch, src_len), tf.int32),
                         tf.TensorSpec((batch, src_len), tf.bool),
                         tf.TensorSpec((batch, None), tf.int32)])


def uncached_translate(model, encoder_token_ids, max_new_tokens, start_id, end_id=None,
                       encoder_padding_mask=None):
    """The pre-cache `ReformerSeq2Seq.translate`: greedy, re-runs the decoder on the prefix."""
    enc = np.asarray(encoder_token_ids)
    context = model.encode(enc, encoder_padding_mask)
    out = np.full((enc.shape[0], 1), start_id, np.int32)
    done = np.zeros(enc.shape[0], bool)
    for _ in range(int(max_new_tokens)):
        logits = np.asarray(model.decode(out, context, encoder_padding_mask))[:, -1]
        nxt = logits.argmax(-1).astype(np.int32)
        if end_id is not None:
            nxt = np.where(done, end_id, nxt)
            done |= nxt == end_id
        out = np.concatenate([out, nxt[:, None]], axis=1)
    return out


@pytest.fixture(scope="module")
def model():
    return tiny_seq2seq()


def test_every_step_matches_teacher_forced_forward(model):
    src, mask = source_with_padding()
    tgt = ids(3, 14, TGT_VOCAB, seed=8)          # 14 steps: prefixes spanning 1..4 chunks of 4
    forward = forward_fn(model, 3, 10)
    cache = init_seq2seq_cache(model, model.encode(src, mask), 14, mask)
    step = tf.function(lambda c, tok, t: seq2seq_decode_step(model, c, tok, t))
    cached = []
    for t in range(14):
        logits, cache = step(cache, tgt[:, t], tf.constant(t))
        expected = np.asarray(forward(src, mask, tgt[:, :t + 1]))[:, -1]
        np.testing.assert_allclose(np.asarray(logits), expected, atol=1e-4,
                                   err_msg=f"logits after decoder prefix of length {t + 1}")
        cached.append(np.asarray(logits))
    # The padding mask reached the cached cross-attention: row 2 equals its unpadded source.
    short = np.asarray(model({"encoder_token_ids": src[2:, :3],
                              "decoder_token_ids": tgt[2:]}))[0]
    np.testing.assert_allclose(np.stack(cached, 1)[2], short, atol=1e-4)
    junk = np.asarray(model({"encoder_token_ids": src, "decoder_token_ids": tgt}))
    assert np.abs(junk[2] - short).max() > 1e-3  # (without the mask the junk would matter)


def test_greedy_generate_equals_uncached_greedy_loop(model):
    src, mask = source_with_padding()
    want = uncached_translate(model, src, 12, start_id=2, encoder_padding_mask=mask)
    got = np.asarray(model.generate(src, 12, encoder_padding_mask=mask, start_id=2,
                                    temperature=0.0))
    assert got.dtype == np.int32 and got.shape == (3, 13)
    np.testing.assert_array_equal(got, want)
    # `translate` now delegates to `generate`; with an end id the rest of a row is the end id.
    end_id = int(want[0, 3])
    want_end = uncached_translate(model, src, 12, start_id=2, end_id=end_id,
                                  encoder_padding_mask=mask)
    assert (want_end == end_id).sum() > 1
    got_end = model.translate(src, 12, start_id=2, end_id=end_id, encoder_padding_mask=mask)
    assert isinstance(got_end, np.ndarray) and got_end.dtype == np.int32
    np.testing.assert_array_equal(got_end, want_end)
    # Another decoder (local + full), no source padding, default start id.
    other = tiny_seq2seq(("local", "full"), seed=11)
    src2 = ids(2, 7, SRC_VOCAB, seed=9)
    np.testing.assert_array_equal(
        np.asarray(generate_seq2seq(other, src2, 20, temperature=0.0)),
        uncached_translate(other, src2, 20, start_id=0))


def test_seeded_sampling_same_eager_and_in_tf_function(model):
    src, mask = source_with_padding()
    sampling = dict(temperature=0.9, top_k=10, top_p=0.95, start_id=1)
    eager = np.asarray(model.generate(src, 10, encoder_padding_mask=mask,
                                      seed=tf.constant([4, 2]), **sampling))
    fn = tf.function(lambda s, m, seed: model.generate(s, 10, encoder_padding_mask=m,
                                                       seed=seed, **sampling))
    args = (tf.constant(src), tf.constant(mask))
    graph = np.asarray(fn(*args, tf.constant([4, 2])))
    again = np.asarray(fn(*args, tf.constant([4, 2])))
    other = np.asarray(fn(*args, tf.constant([5, 2])))
    assert eager.shape == (3, 11) and eager.dtype == np.int32
    assert (eager[:, 0] == 1).all() and eager.min() >= 0 and eager.max() < TGT_VOCAB
    np.testing.assert_array_equal(graph, eager)
    np.testing.assert_array_equal(again, eager)
    assert not np.array_equal(other, eager)
    graph_ops = fn.get_concrete_function(
        tf.TensorSpec((3, 10), tf.int32), tf.TensorSpec((3, 10), tf.bool),
        tf.TensorSpec((2,), tf.int32)).graph.get_operations()
    assert "While" in {op.type for op in graph_ops}
    # eos: after a row emits it, the rest of the row is pad_id.
    eos = int(eager[0, 3])
    ended = np.asarray(model.generate(src, 10, encoder_padding_mask=mask, seed=tf.constant([4, 2]),
                                      eos_id=eos, pad_id=TGT_VOCAB - 1, **sampling))
    for row, ref in zip(ended, eager):
        hits = np.flatnonzero(ref[1:] == eos)
        stop = 1 + (hits[0] + 1 if hits.size else 10)
        np.testing.assert_array_equal(row[:stop], ref[:stop])
        assert (row[stop:] == TGT_VOCAB - 1).all()


SRC = np.array([[3, 4, 5]], "int32")
BAD = [
    (dict(encoder_token_ids=SRC.astype("float32")), "encoder_token_ids"),
    (dict(encoder_token_ids=np.array([3, 4], "int32")), "encoder_token_ids"),      # rank 1
    (dict(encoder_token_ids=np.zeros((1, 0), "int32")), "encoder_token_ids"),      # empty
    (dict(encoder_token_ids=np.array([[3, SRC_VOCAB]], "int32")), "encoder_token_ids"),
    (dict(encoder_token_ids=np.zeros((1, 17), "int32")), "encoder_token_ids"),     # > max_len
    (dict(encoder_token_ids=[["a"]]), "encoder_token_ids"),
    (dict(encoder_padding_mask=np.ones((1, 4), bool)), "encoder_padding_mask"),
    (dict(encoder_padding_mask=np.ones((1, 3), "float32")), "encoder_padding_mask"),
    (dict(max_new_tokens=-1), "max_new_tokens"),
    (dict(max_new_tokens=2.0), "max_new_tokens"),
    (dict(max_new_tokens=24), "max_new_tokens"),                                   # 1 + 24 > 24
    (dict(start_id=TGT_VOCAB), "start_id"),
    (dict(start_id=-1), "start_id"),
    (dict(eos_id=TGT_VOCAB), "eos_id"),
    (dict(pad_id=-1), "pad_id"),
    (dict(temperature=-1.0), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(top_p=1.5), "top_p"),
    (dict(seed="x"), "seed"),
]


@pytest.mark.parametrize("kwargs,name", BAD, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD)])
def test_bad_argument_raises_value_error_naming_it(model, kwargs, name):
    args = dict(encoder_token_ids=SRC, max_new_tokens=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"`{name}`"):
        generate_seq2seq(model, **args)


def test_bad_model_and_cache_size(model):
    with pytest.raises(ValueError, match="`model`"):
        generate_seq2seq(object(), SRC, 2)
    context = model.encode(SRC)
    for bad in (0, 25, 3.0):
        with pytest.raises(ValueError, match="`max_length`"):
            init_seq2seq_cache(model, context, bad)
