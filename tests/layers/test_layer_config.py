"""get_config/from_config round trips reproduce outputs; bad arguments raise clear errors."""

import numpy as np
import pytest

from reformer_keras.layers import (AxialPositionalEmbedding, ChunkedFeedForward,
                                   FullSelfAttention, LocalSelfAttention, LSHSelfAttention,
                                   PreNormBranch, ReversibleSequence)

X = np.random.default_rng(0).normal(size=(2, 21, 16)).astype("float32")


def _makers():
    return [
        lambda: LSHSelfAttention(2, 8, bucket_size=8, num_hashes=3, num_buckets=[2, 4],
                                 causal=True, allow_duplicate_attention=False, attn_chunks=2),
        lambda: LSHSelfAttention(2, 8, bucket_size=4),  # no seed: hash seed drawn, then kept
        lambda: LocalSelfAttention(2, 8, chunk_size=4, num_chunks_after=1, shared_qk=True),
        lambda: FullSelfAttention(2, 8, causal=True),
        lambda: ChunkedFeedForward(32, chunk_size=5, activation="relu"),
        lambda: AxialPositionalEmbedding((3, 7), (8, 8)),
        lambda: PreNormBranch(LSHSelfAttention(2, 8, bucket_size=8, seed=3)),
        lambda: ReversibleSequence(
            [(PreNormBranch(LSHSelfAttention(2, 8, bucket_size=8)),
              PreNormBranch(ChunkedFeedForward(32, chunk_size=8)))] * 1, stored_top_blocks=1),
    ]


@pytest.mark.parametrize("index", range(8))
def test_config_round_trip_reproduces_outputs(index):
    layer = _makers()[index]()
    want = np.asarray(layer(X))
    clone = layer.__class__.from_config(layer.get_config())
    clone(X)
    clone.set_weights(layer.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(X)), want)
    assert clone.get_config() == layer.get_config()


@pytest.mark.parametrize("kwargs, name", [
    (dict(bucket_size=0), "bucket_size"),
    (dict(bucket_size=-4), "bucket_size"),
    (dict(num_hashes=0), "num_hashes"),
    (dict(num_buckets=3), "num_buckets"),
    (dict(num_buckets=[2, 5]), "num_buckets"),
    (dict(num_chunks_before=-1), "num_chunks_before"),
    (dict(attn_chunks=3), "attn_chunks"),
    (dict(attention_dropout=1.5), "attention_dropout"),
])
def test_bad_lsh_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LSHSelfAttention(2, 8, **kwargs)


def test_bad_call_inputs():
    layer = LSHSelfAttention(2, 8, bucket_size=4)
    with pytest.raises(ValueError, match="num_hashes"):
        layer(X, num_hashes=0)
    with pytest.raises(ValueError, match="rank 3"):
        layer(X[0])
    with pytest.raises(ValueError, match="float"):
        LocalSelfAttention(2, 8)(X.astype("int32"))
    with pytest.raises(ValueError, match="padding_mask"):
        layer(X, padding_mask=np.ones((2, 21, 1), bool))
    with pytest.raises(ValueError, match="num_heads"):
        FullSelfAttention(0, 8)
