"""Tiny causal ReformerLMs shared by the generation tests."""

import numpy as np

from reformer_keras.models import ReformerLM

VOCAB = 16


def tiny_lm(attention_types, num_buckets=1, num_hashes=2, max_len=32, axial_shape=None,
            seed=3, **kw):
    """2-3 layer LM, d_model 16, chunk / bucket size 4, dropout 0, built."""
    model = ReformerLM(vocab_size=VOCAB, d_model=16, num_layers=len(attention_types),
                       num_heads=2, d_ff=32, attention_types=attention_types, bucket_size=4,
                       num_hashes=num_hashes, num_buckets=num_buckets, max_len=max_len,
                       axial_shape=axial_shape, seed=seed, **kw)
    model(np.zeros((1, 4), "int32"))
    return model


def attention_layers(model):
    return [f.layer for f, _ in model.backbone.stack.blocks]


def random_ids(batch, length, seed=0):
    return np.random.default_rng(seed).integers(0, VOCAB, size=(batch, length)).astype("int32")
