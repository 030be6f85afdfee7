"""ReformerLM end to end: model.fit (XLA on/off, mixed bfloat16), saving, bad inputs."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from reformer_keras.models import ReformerLM

VOCAB = 32


def _lm(**kw):
    config = dict(vocab_size=VOCAB, d_model=32, num_layers=2, num_heads=2, d_ff=64,
                  attention_types=("lsh", "local"), bucket_size=8, num_hashes=2, max_len=64,
                  seed=1)
    config.update(kw)
    return ReformerLM(**config)


def _copy_task(n=64, length=37, seed=0):
    """Repeat a 5-token motif; lengths not a multiple of the bucket size."""
    rng = np.random.default_rng(seed)
    motifs = rng.integers(1, VOCAB, size=(n, 5))
    seq = np.tile(motifs, (1, length // 5 + 1))[:, :length + 1]
    return seq[:, :-1].astype("int32"), seq[:, 1:].astype("int32")


def _fit(model, jit_compile, epochs=3):
    model.compile(optimizer=keras.optimizers.Adam(3e-3), jit_compile=jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _copy_task()
    return model.fit(x, y, batch_size=16, epochs=epochs, verbose=0).history["loss"]


@pytest.mark.parametrize("jit_compile", [False, True])
def test_fit_learns_with_and_without_xla(jit_compile):
    model = _lm(dropout=0.05)
    losses = _fit(model, jit_compile, epochs=4)
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0] - 0.1, losses
    x, _ = _copy_task(n=4)
    eager = np.asarray(model(x))
    np.testing.assert_allclose(model.predict(x, verbose=0), eager, atol=1e-4)


def test_mixed_bfloat16_keeps_residual_stream_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = _lm()
    x, _ = _copy_task(n=2)
    logits = model(x)
    assert logits.dtype == "float32"
    assert model.backbone.stack.compute_dtype == "float32"
    assert model.backbone.stack.blocks[0][0].compute_dtype == "bfloat16"
    losses = _fit(model, jit_compile=False, epochs=2)
    assert np.all(np.isfinite(losses))


def test_keras_file_round_trip_in_a_fresh_process(tmp_path):
    model = _lm(attention_types=("lsh", "full"), num_buckets=4)
    _fit(model, jit_compile=False, epochs=1)
    x, _ = _copy_task(n=3, seed=5)
    path = tmp_path / "lm.keras"
    model.save(path)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import numpy as np, keras, reformer_keras.models\n"
        f"m = keras.models.load_model({str(path)!r})\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(m(x)))\n")
    subprocess.run([sys.executable, "-c", script], check=True,
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), np.asarray(model(x)))
    clone = ReformerLM.from_config(json.loads(json.dumps(model.get_config())))
    clone(x)
    clone.set_weights(model.get_weights())
    np.testing.assert_array_equal(np.asarray(clone(x)), np.asarray(model(x)))


def test_padding_mask_and_eval_hash_rounds():
    model = _lm(num_buckets=4)
    x, _ = _copy_task(n=2, length=20)
    padded = np.concatenate([x, np.full((2, 9), 7, "int32")], axis=1)
    mask = np.arange(29)[None, :] < 20
    want = np.asarray(model(x))
    got = np.asarray(model({"token_ids": padded, "padding_mask": np.repeat(mask, 2, 0)}))
    np.testing.assert_allclose(got[:, :20], want, atol=1e-5)
    more = np.asarray(model(x, num_hashes=8))
    assert more.shape == want.shape and np.abs(more - want).max() > 1e-6


def test_bad_token_ids_raise_clear_errors():
    model = _lm()
    ids = np.ones((2, 10), "int32")
    model(ids)
    with pytest.raises(ValueError, match="token_ids.*integer"):
        model(ids.astype("float32"))
    with pytest.raises(ValueError, match="token_ids.*rank 2"):
        model(ids[0])
    with pytest.raises(ValueError, match=r"token_ids.*\[0, vocab_size=32\)"):
        model(ids * 40)
    with pytest.raises(ValueError, match="token_ids"):
        model(ids * -1)
    with pytest.raises(ValueError, match="max_len"):
        model(np.ones((1, 65), "int32"))
    # Inside a traced graph (predict), the same message comes from a graph assertion.
    with pytest.raises(Exception, match=r"token_ids.*vocab_size=32"):
        model.predict(ids * 40, verbose=0)
    with pytest.raises(ValueError, match="attention_types"):
        _lm(attention_types=("lsh", "sparse"))
