"""LSH with automatic bucket counts in graphs traced for unknown lengths (what a SavedModel
signature holds): inference hashes exactly as eager does at every length up to the model's
max_len, including lengths whose bucket count is factorised. Reference: the eager model."""
import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.export import export_model
from reformer_keras.models import ReformerLM


def _lm(bucket_size, max_len):
    return ReformerLM(vocab_size=20, d_model=8, num_layers=2, num_heads=2, d_ff=16,
                      attention_types=["lsh"], bucket_size=bucket_size, max_len=max_len, seed=1)


@pytest.mark.parametrize("bucket_size, max_len, lengths", [
    (4, 64, (5, 8, 16, 24, 40, 64)),     # 2 .. 16 buckets
    (2, 1024, (700, 1024)),              # 512 buckets: factorised as 32 x 16
])
def test_unknown_length_graph_equals_eager(bucket_size, max_len, lengths):
    model = _lm(bucket_size, max_len)
    graph = tf.function(model, input_signature=[tf.TensorSpec((None, None), tf.int32)])
    rng = np.random.default_rng(0)
    for length in lengths:
        ids = rng.integers(0, 20, size=(2, length)).astype("int32")
        np.testing.assert_allclose(graph(ids).numpy(), np.asarray(model(ids)), atol=1e-5,
                                   rtol=0, err_msg=f"length {length}")


def test_exported_lsh_model_serves_eager_logits(tmp_path):
    model = _lm(4, 64)
    rng = np.random.default_rng(1)
    model(rng.integers(0, 20, size=(1, 8)).astype("int32"))
    result = export_model(model, str(tmp_path), "lsh_lm", write_config=False)
    serve = tf.saved_model.load(result["path"]).signatures["serving_default"]
    for length in (9, 33, 64):
        ids = rng.integers(0, 20, size=(2, length)).astype("int32")
        np.testing.assert_allclose(serve(token_ids=tf.constant(ids))["logits"].numpy(),
                                   np.asarray(model(ids)), atol=1e-5, rtol=0,
                                   err_msg=f"length {length}")
