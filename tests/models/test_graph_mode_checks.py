"""Data-dependent input checks hold inside graphs with unknown shapes (tf.function, fit), not
only in eager mode: an over-long sequence fails with InvalidArgumentError naming both lengths
instead of wrapping positions (position 32 would get position 0's axial embedding), and ids out
of range fail the same way."""
import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.layers import AxialPositionalEmbedding
from reformer_keras.models import ReformerLM


def _lm():
    model = ReformerLM(vocab_size=16, d_model=16, num_layers=1, num_heads=2, d_ff=32,
                       bucket_size=8, axial_shape=(4, 8), axial_dims=(8, 8),
                       attention_types=["lsh"], seed=1)
    model.build((None, 32))
    return model


def _unknown_length(fn, dtype=tf.int32):
    return tf.function(fn, input_signature=[tf.TensorSpec([None, None], dtype)],
                       autograph=False)


def test_over_length_in_tf_function_names_both_lengths():
    model = _lm()
    logits = _unknown_length(lambda ids: model(ids))
    assert logits(tf.zeros([2, 32], tf.int32)).shape == (2, 32, 16)
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"(?s)exceeds max_len.*\[40\].*\[32\]"):
        logits(tf.zeros([2, 40], tf.int32))
    with pytest.raises(ValueError, match="Sequence length 40 exceeds max_len 32"):
        model(np.zeros([2, 40], "int32"))  # static length: caught at call time


def test_axial_embedding_alone_refuses_over_length_in_graph():
    layer = AxialPositionalEmbedding((4, 8), (8, 8), seed=0)
    layer.build((None, None, 16))
    add = tf.function(layer, input_signature=[tf.TensorSpec([None, None, 16])], autograph=False)
    x = tf.zeros([1, 32, 16])
    np.testing.assert_array_equal(add(x).numpy(), layer(x).numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)prod\(axial_shape\).*\[33\]"):
        add(tf.zeros([1, 33, 16]))


def test_ids_out_of_range_in_tf_function():
    model = _lm()
    logits = _unknown_length(lambda ids: model(ids))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"vocab_size=16"):
        logits(tf.constant([[1, 2, 16]], tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"vocab_size=16"):
        logits(tf.constant([[1, -1, 2]], tf.int32))


def test_over_length_in_fit_with_unknown_length():
    import keras
    model = _lm()
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    ds = tf.data.Dataset.from_generator(
        lambda: iter([(np.zeros([1, 40], "int32"), np.zeros([1, 40], "int32"))]),
        output_signature=(tf.TensorSpec([None, None], tf.int32),) * 2)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"(?s)max_len.*\[40\].*\[32\]"):
        model.fit(ds, epochs=1, verbose=0)
