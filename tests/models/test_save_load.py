"""`.keras` round trips reproduce every task's outputs exactly (one in a fresh process)."""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest

from reformer_keras import models

SMALL = dict(d_model=16, num_heads=2, d_ff=32, bucket_size=4, num_hashes=2, seed=1)


def _cases():
    rng = np.random.default_rng(0)
    return {
        "lm": (lambda: models.ReformerLM(vocab_size=30, num_layers=2, max_len=32,
                                         attention_types=["lsh", "local"], **SMALL),
               rng.integers(0, 30, (2, 12)).astype("int32")),
        "image": (lambda: models.ReformerImageGenerator(
            image_shape=[2, 3, 2], num_classes=4, num_layers=2, attention_types=["lsh", "full"],
            **SMALL), rng.integers(0, 260, (2, 12)).astype("int32")),
        "music": (lambda: models.ReformerMusicGenerator(
            num_layers=1, attention_types=["lsh"], max_len=32,
            tokenizer={"steps_per_second": 50, "max_shift_steps": 50, "num_velocity_bins": 8},
            **SMALL), rng.integers(0, 316, (2, 10)).astype("int32")),
        "classifier": (lambda: models.ReformerClassifier(
            num_classes=3, vocab_size=30, num_layers=2, max_len=32,
            attention_types=["local", "lsh"], classifier_dropout=0.1, **SMALL),
            {"token_ids": rng.integers(0, 30, (2, 12)).astype("int32"),
             "padding_mask": np.arange(12)[None].repeat(2, 0) < 9}),
        "seq2seq": (lambda: models.ReformerSeq2Seq(
            encoder_vocab_size=30, decoder_vocab_size=25, num_encoder_layers=2,
            num_decoder_layers=2, encoder_attention_types=["lsh", "local"],
            decoder_attention_types=["lsh", "full"], encoder_max_len=32, decoder_max_len=16,
            **SMALL),
            {"encoder_token_ids": rng.integers(0, 30, (2, 14)).astype("int32"),
             "encoder_padding_mask": np.arange(14)[None].repeat(2, 0) < 11,
             "decoder_token_ids": rng.integers(0, 25, (2, 9)).astype("int32")}),
    }


@pytest.mark.parametrize("task", ["lm", "image", "music", "classifier", "seq2seq"])
def test_keras_round_trip_reproduces_outputs(task, tmp_path):
    make, x = _cases()[task]
    model = make()
    want = np.asarray(model(x))
    path = tmp_path / f"{task}.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded) is type(model)
    assert loaded.get_config() == model.get_config()
    np.testing.assert_array_equal(np.asarray(loaded(x)), want)
    if task == "music":
        assert loaded.tokenizer.get_config() == model.tokenizer.get_config()
        assert loaded.vocab_size == 2 + 128 + 128 + 50 + 8


def test_seq2seq_round_trip_in_a_fresh_process(tmp_path):
    make, x = _cases()["seq2seq"]
    model = make()
    want = np.asarray(model(x))
    model.save(tmp_path / "s2s.keras")
    np.savez(tmp_path / "x.npz", **x)
    script = (
        "import numpy as np, keras, reformer_keras.models\n"
        f"m = keras.models.load_model({str(tmp_path / 's2s.keras')!r})\n"
        f"x = dict(np.load({str(tmp_path / 'x.npz')!r}))\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, np.asarray(m(x)))\n")
    subprocess.run([sys.executable, "-c", script], check=True, cwd=os.getcwd(),
                   env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
