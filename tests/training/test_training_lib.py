"""Training library: bits metric, LR schedule, atomic checkpoints/backups, model factory,
step planning and same-seed determinism of the fit loop."""
import json
import math
import os

import keras
import numpy as np
import pytest

from reformer_keras.datasets import pipelines
from reformer_keras.training import callbacks as cb
from reformer_keras.training import model_factory
from reformer_keras.training.loop import TrainConfig, load_checkpoint, plan_steps, train
from reformer_keras.training.metrics import BitsPerToken, WarmupSchedule

TINY = dict(d_model=16, num_layers=2, num_heads=2, d_ff=32, bucket_size=8,
            attention_types=["local", "lsh"])


def _log_softmax(x):
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_bits_per_token_matches_numpy_with_weights():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(2, 5, 7)).astype("float32")
    labels = rng.integers(0, 7, size=(2, 5))
    weights = (rng.random((2, 5)) > 0.4).astype("float32")
    metric = BitsPerToken()
    metric.update_state(labels, logits, sample_weight=weights)
    nll = -np.take_along_axis(_log_softmax(logits), labels[..., None], -1)[..., 0] / math.log(2)
    np.testing.assert_allclose(float(metric.result()), (nll * weights).sum() / weights.sum(),
                               rtol=1e-5)


def test_bits_per_character_counts_utf8_characters():
    text = "é€a".encode("utf-8")  # 3 characters in 6 bytes
    labels = np.array([[b + 2 for b in text] + [1]])  # + eos: its bits count, it is no char
    logits = np.zeros((1, labels.shape[1], 258), "float32")  # uniform: 8.011 bits per token
    per_char = BitsPerToken(per_character=True)
    per_char.update_state(labels, logits)
    per_token = BitsPerToken()
    per_token.update_state(labels, logits)
    np.testing.assert_allclose(float(per_char.result()), float(per_token.result()) * 7 / 3,
                               rtol=1e-5)
    np.testing.assert_allclose(float(per_token.result()), math.log2(258), rtol=1e-5)


@pytest.mark.parametrize("kind", WarmupSchedule.KINDS)
def test_warmup_schedules(kind):
    schedule = WarmupSchedule(1.0, kind, warmup_steps=10, total_steps=110)
    lr = [float(schedule(s)) for s in (0, 4, 9, 60, 109)]
    assert lr[0] == pytest.approx(0.1) and lr[1] == pytest.approx(0.5) and lr[2] == 1.0
    expected = {"constant": (1.0, 1.0), "cosine": (0.5 * (1 + math.cos(math.pi * 0.5)),
                                                   0.5 * (1 + math.cos(math.pi * 0.99))),
                "rsqrt": (math.sqrt(10 / 60), math.sqrt(10 / 109))}[kind]
    assert lr[3] == pytest.approx(expected[0], rel=1e-5)
    assert lr[4] == pytest.approx(expected[1], rel=1e-4, abs=1e-6)
    assert WarmupSchedule.from_config(schedule.get_config()).get_config() == schedule.get_config()


def test_plan_steps():
    assert plan_steps(TrainConfig(steps=25, steps_per_epoch=10)) == (25, 3, 10)
    assert plan_steps(TrainConfig(steps=5, steps_per_epoch=10)) == (5, 1, 5)
    assert plan_steps(TrainConfig(steps=None, epochs=3, steps_per_epoch=4)) == (12, 3, 4)


def test_model_factory_presets_and_overrides():
    info = pipelines.describe("duplication/tiny", "lm")
    config = model_factory.model_config("lm", "tiny_text", info, dict(num_layers=3, d_model=32))
    assert config["num_layers"] == 3 and config["vocab_size"] == 16
    assert config["axial_shape"] is None and config["max_len"] == 31  # 16x16 axial != 31
    with pytest.raises(ValueError, match="unknown preset"):
        model_factory.check_preset("nope", "lm")
    with pytest.raises(ValueError, match="not for task 'lm'"):
        model_factory.check_preset("tiny_image", "lm")
    model = model_factory.build_model("lm", "tiny_text", info, TINY, seed=0)
    assert model(np.zeros((1, 31), "int32")).shape == (1, 31, 16)


def test_model_factory_speed_and_memory_overrides():
    """The trainers' --stored_top_blocks / --attn_chunks / --query_chunk_len /
    --ff_chunked_backward reach the backbone and its layers, and the model keeps training the
    same function: its logits equal those of the model built without them."""
    info = pipelines.describe("duplication/tiny", "lm")
    knobs = dict(stored_top_blocks=1, attn_chunks=2, query_chunk_len=8, ff_chunked_backward=True)
    config = dict(TINY, attention_types=["lsh"], dropout=0.0)
    model = model_factory.build_model("lm", "tiny_text", info, dict(config, **knobs), seed=0)
    plain = model_factory.build_model("lm", "tiny_text", info, config, seed=0)
    backbone = model.backbone
    assert backbone.stored_top_blocks == 1 and backbone.attn_chunks == 2
    assert backbone.query_chunk_len == 8 and backbone.ff_chunked_backward
    saved = model.get_config()
    assert {k: saved[k] for k in knobs} == knobs
    plain.set_weights(model.get_weights())
    x = np.random.default_rng(0).integers(0, 16, size=(2, 31)).astype("int32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(plain(x)), atol=2e-5)
    # The seq2seq model takes them too, for encoder and decoder.
    seq2seq = model_factory.build_model("seq2seq", "tiny_seq2seq", info,
                                        dict(knobs, bucket_size=8), seed=0)
    assert {k: seq2seq.get_config()[k] for k in knobs} == knobs
    assert seq2seq.decoder.stack.stored_top_blocks == 1


def _fit(tmp_path, backup, checkpoint, epochs):
    model = model_factory.build_model("lm", "tiny_text", pipelines.describe("duplication/tiny"),
                                      TINY, seed=0)
    model.compile(optimizer="adam",
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x = np.random.default_rng(0).integers(0, 16, size=(8, 31)).astype("int32")
    model.fit(x, x, batch_size=4, epochs=epochs, verbose=0, callbacks=[backup, checkpoint])
    return model


def test_atomic_checkpoint_and_backup_resume(tmp_path):
    backup_dir, ckpt_dir = tmp_path / "backup", tmp_path / "checkpoints"
    ckpt_dir.mkdir()
    stale = ckpt_dir / ".tmp-99999-ckpt-0009.keras"
    stale.write_bytes(b"half written")
    make = lambda: (cb.AtomicBackupAndRestore(str(backup_dir), delete_checkpoint=False),  # noqa
                    cb.AtomicModelCheckpoint(str(ckpt_dir / "ckpt-{epoch:04d}.keras")))
    model = _fit(tmp_path, *make(), epochs=2)
    assert cb.global_step(model) == 4
    assert sorted(os.listdir(ckpt_dir)) == ["ckpt-0001.keras", "ckpt-0002.keras"]  # stale gone
    meta = json.loads((backup_dir / "training_metadata.json").read_text())
    states = meta.pop("rng_states")  # the seed generators' states, restored on resume
    assert meta == {"epoch": 2, "step": 4, "weights": "state-000002.weights.h5"}
    assert len(states) == len(cb.rng_variables(model)) > 0
    assert sorted(os.listdir(backup_dir)) == ["state-000002.weights.h5",
                                              "training_metadata.json"]
    resumed = _fit(tmp_path, *make(), epochs=3)  # restores epoch 2 / step 4, runs 1 epoch
    assert cb.global_step(resumed) == 6
    loaded, path = load_checkpoint(str(tmp_path))
    assert path.endswith("ckpt-0003.keras")
    x = np.zeros((1, 31), "int32")
    np.testing.assert_allclose(loaded(x), resumed(x), atol=1e-5)
    assert not [n for n in os.listdir(ckpt_dir) + os.listdir(backup_dir) if n.startswith(".tmp-")]


def _run(tmp_path, name, steps, shared_data_dir, **kw):
    cfg = TrainConfig(dataset="duplication/tiny", data_dir=shared_data_dir,
                      model_dir=str(tmp_path / name), steps=steps, steps_per_epoch=10,
                      batch_size=4, max_minutes=None, verbose=0, eval_steps=1, sample_every=0,
                      sample_tokens=4, seed=7, overrides=dict(TINY), **kw)
    return train(cfg)


def test_same_seed_same_loss_curve(tmp_path, shared_data_dir):
    first = _run(tmp_path, "a", 20, shared_data_dir)
    second = _run(tmp_path, "b", 20, shared_data_dir)
    assert len(first["losses"]) == 20 and np.all(np.isfinite(first["losses"]))
    assert first["losses"] == second["losses"]  # bit-identical on CPU
    assert first["step"] == 20 and first["metric"] == "bits_per_token"
    assert os.path.exists(tmp_path / "a" / "samples" / "final.txt")


@pytest.mark.slow
def test_same_seed_same_loss_curve_100_steps(tmp_path, shared_data_dir):
    first = _run(tmp_path, "a", 100, shared_data_dir)
    second = _run(tmp_path, "b", 100, shared_data_dir)
    assert len(first["losses"]) == 100 and first["losses"] == second["losses"]
