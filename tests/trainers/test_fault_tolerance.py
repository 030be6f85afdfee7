"""A run never loses or corrupts work, end to end through trainers/train.py with a tiny model:

  * killed with SIGKILL during a step, during a checkpoint write, during a backup write and
    during the export (deterministic kill points: `REFORMER_FAULT_INJECTION`, see
    reformer_keras/fault_injection.py) and resumed each time, the run ends with weights, loss
    log and export equal bit for bit to an uninterrupted run's;
  * a NaN loss stops the run with exit status 1 and one line, keeps the last good checkpoint and
    backup, writes no sample or export from it, records the step in summary.json, and the
    rerun resumes from the good state (again equal to the uninterrupted run);
  * a second run on a model_dir in use is refused with one line and exit status 2.
"""
import json
import os

import keras
import numpy as np
import pytest

import _cli
from reformer_keras.training.run_lock import RunLock

STEPS, STEPS_PER_EPOCH = 12, 4
FINAL = f"ckpt-{STEPS // STEPS_PER_EPOCH:04d}.keras"


def _train(model_dir, data_dir, *extra, fault=""):
    return _cli.run("train", "--dataset=duplication/tiny", f"--data_dir={data_dir}",
                    f"--model_dir={model_dir}", f"--steps={STEPS}",
                    f"--steps_per_epoch={STEPS_PER_EPOCH}", "--batch_size=4", "--eval_steps=0",
                    "--sample_every=0", "--sample_tokens=4", "--max_minutes=0", "--seed=3",
                    *_cli.TINY_FLAGS, *extra, REFORMER_FAULT_INJECTION=fault)


def _weights(path):
    import reformer_keras.models  # noqa: F401  (registers the classes for load_model)
    model = keras.models.load_model(path, compile=False)
    return [np.asarray(w) for w in model.weights]


def _assert_same_weights(path, reference):
    weights = _weights(path)
    assert len(weights) == len(reference)
    for got, want in zip(weights, reference):
        np.testing.assert_array_equal(got, want)


def _temporaries(model_dir):
    return [p for p in model_dir.rglob("*") if p.name.startswith(".tmp-")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, shared_data_dir):
    """The uninterrupted run: (final weights, loss log rows)."""
    model_dir = tmp_path_factory.mktemp("reference") / "run"
    result = _train(model_dir, shared_data_dir, "--noexport")
    assert result.returncode == 0, result.stderr[-3000:]
    return _weights(model_dir / "checkpoints" / FINAL), _cli.loss_log(model_dir)


def test_kills_at_every_stage_then_resume_equal_uninterrupted(tmp_path, shared_data_dir,
                                                               reference):
    ref_weights, ref_log = reference
    model_dir = tmp_path / "run"
    for fault, export in [("kill:step:6", False),         # mid-epoch 2 (backup at step 4)
                          ("kill:checkpoint:1", False),   # ckpt-0002 under its temporary name
                          ("kill:backup:1", False),       # backup weights in, metadata not
                          ("kill:export:1", True)]:       # after step 12, SavedModel in tmp
        result = _train(model_dir, shared_data_dir, "--export" if export else "--noexport",
                        fault=fault)
        assert result.returncode == -9, (fault, result.stderr[-3000:])
        assert not (model_dir / "summary.json").exists()
    assert _temporaries(model_dir)  # the checkpoint and export kills left temporaries
    assert not (model_dir / "export" / "reformer_lm" / "1").exists()
    result = _train(model_dir, shared_data_dir, "--export")  # resumes at step 12, exports
    assert result.returncode == 0, result.stderr[-3000:]
    assert "done: step 12/12" in result.stdout
    assert _cli.loss_log(model_dir) == ref_log  # each step once, same losses
    _assert_same_weights(model_dir / "checkpoints" / FINAL, ref_weights)
    assert not _temporaries(model_dir)
    import tensorflow as tf
    exported = tf.saved_model.load(str(model_dir / "export" / "reformer_lm" / "1"))
    values = [v.numpy() for v in exported.signatures["serving_default"].variables]
    for want in ref_weights:  # every weight of the reference is exported unchanged
        assert any(v.shape == want.shape and np.array_equal(v, want) for v in values)


def test_nan_stops_keeps_good_state_and_rerun_resumes(tmp_path, shared_data_dir, reference):
    ref_weights, ref_log = reference
    model_dir = tmp_path / "run"
    result = _train(model_dir, shared_data_dir, "--export", fault="nan_at_step:7")
    assert result.returncode == 1, result.stderr[-3000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("train: error: stopped at the first non-finite loss (nan) at step 7")
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["stopped_by"] == "non_finite" and summary["non_finite"]["step"] == 7
    assert summary["resume_step"] == STEPS_PER_EPOCH
    assert os.listdir(model_dir / "checkpoints") == ["ckpt-0001.keras"]
    for w in _weights(model_dir / "checkpoints" / "ckpt-0001.keras"):
        assert np.all(np.isfinite(w))
    backup = json.loads((model_dir / "backup" / "training_metadata.json").read_text())
    assert backup["step"] == STEPS_PER_EPOCH
    assert not (model_dir / "export").exists() and not (model_dir / "samples").exists()
    assert [s for s, _ in _cli.loss_log(model_dir)] == list(range(1, 7))  # not the NaN row

    result = _train(model_dir, shared_data_dir, "--noexport")  # no fault: resumes at step 4
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 1/" not in result.stdout
    assert _cli.loss_log(model_dir) == ref_log
    _assert_same_weights(model_dir / "checkpoints" / FINAL, ref_weights)


def test_second_run_on_a_locked_model_dir_is_refused(tmp_path):
    model_dir = tmp_path / "run"
    with RunLock(model_dir):
        result = _cli.run("train", f"--model_dir={model_dir}", f"--data_dir={tmp_path / 'd'}",
                          timeout=120)
        # (checked while held: a lock that created model_dir removes it again when released)
        assert sorted(os.listdir(model_dir)) == [".lock"] and not (tmp_path / "d").exists()
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"train: error: flag --model_dir={model_dir}: ")
    assert f"in use by another run (pid {os.getpid()})" in lines[-1]
    assert "Traceback" not in result.stderr
    with RunLock(model_dir):  # released by the first holder: can be taken again
        pass
