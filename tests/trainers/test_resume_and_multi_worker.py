"""Fault tolerance and distribution, end to end through trainers/train.py (both slow, ~1-2 min
each on 2 shared cores; run with `pytest -m slow`):
  * a run killed with SIGKILL mid-training resumes from its backup and finishes at the right
    step with every checkpoint readable and no temporary file left;
  * two local workers (MultiWorkerMirroredStrategy over 127.0.0.1) match a single-worker run
    with the same global batch."""
import json
import os
import pathlib
import signal
import socket
import subprocess
import time

import keras
import numpy as np
import pytest

import _cli

STEPS, STEPS_PER_EPOCH = 100, 5


def _train_flags(model_dir, data_dir, steps=STEPS, batch=4, extra=()):
    return ["--dataset=duplication/tiny", f"--data_dir={data_dir}", f"--model_dir={model_dir}",
            f"--steps={steps}", f"--steps_per_epoch={STEPS_PER_EPOCH}", f"--batch_size={batch}",
            "--eval_steps=0", "--sample_every=0", "--sample_tokens=4", "--max_minutes=0",
            "--seed=3", *_cli.TINY_FLAGS, *extra]


def _prepare(data_dir):
    result = _cli.run("train", *_train_flags(pathlib.Path(data_dir).parent / "prep", data_dir,
                                             steps=1))
    assert result.returncode == 0, result.stderr[-3000:]


def _backup_epoch(model_dir):
    try:
        return json.loads((model_dir / "backup" / "training_metadata.json").read_text())["epoch"]
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_resume_after_sigkill(tmp_path, shared_data_dir):
    _prepare(shared_data_dir)
    model_dir = tmp_path / "run"
    flags = _train_flags(model_dir, shared_data_dir)
    proc = subprocess.Popen(_cli.command("train", *flags), cwd=_cli.REPO, env=_cli.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while _backup_epoch(model_dir) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # mid-run, after >= 2 backups / checkpoints
    assert proc.wait() == -signal.SIGKILL
    killed_at = _backup_epoch(model_dir)
    assert 2 <= killed_at < STEPS // STEPS_PER_EPOCH, "the run finished before the kill"
    assert not (model_dir / "summary.json").exists()

    result = _cli.run("train", *flags)  # same flags: resumes
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Epoch 1/" not in result.stdout  # did not start over
    assert f"Epoch {killed_at + 1}/{STEPS // STEPS_PER_EPOCH}" in result.stdout
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["step"] == STEPS and summary["stopped_by"] == "steps"
    assert np.isfinite(summary["logs"]["loss"])
    names = sorted(os.listdir(model_dir / "checkpoints"))
    assert names == [f"ckpt-{e:04d}.keras" for e in range(1, STEPS // STEPS_PER_EPOCH + 1)]
    import reformer_keras.models  # noqa: F401  (registers the classes for load_model)
    x = np.zeros((1, 31), "int32")
    for name in names:
        model = keras.models.load_model(model_dir / "checkpoints" / name, compile=False)
        assert np.all(np.isfinite(np.asarray(model(x))))
    leftovers = [p for p in model_dir.rglob("*") if p.name.startswith(".tmp-")]
    assert not leftovers
    backup = json.loads((model_dir / "backup" / "training_metadata.json").read_text())
    assert backup["step"] == STEPS


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_match_single_worker(tmp_path, shared_data_dir):
    """Global batch 8 = 2 workers x 4. Tolerance: |loss_mw - loss_single| <= 1e-3 * loss per
    step (float reduction order differs: all-reduce of two half-batch gradients)."""
    _prepare(shared_data_dir)
    steps = 6
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    workers = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        flags = _train_flags(tmp_path / f"worker{index}", shared_data_dir, steps=steps, batch=8,
                             extra=["--strategy=multi_worker"])
        workers.append(subprocess.Popen(
            _cli.command("train", *flags), cwd=_cli.REPO, env=_cli.env(TF_CONFIG=tf_config),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    single = _cli.run("train", *_train_flags(tmp_path / "single", shared_data_dir, steps=steps,
                                             batch=8, extra=["--strategy=one_device"]))
    outputs = [w.communicate(timeout=900)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs[0][-3000:] + outputs[1][-3000:]
    assert single.returncode == 0, single.stderr[-3000:]
    chief = _cli.loss_log(tmp_path / "worker0")  # only the chief (worker 0) writes
    assert not (tmp_path / "worker1" / "loss_log.csv").exists()
    reference = _cli.loss_log(tmp_path / "single")
    assert [s for s, _ in chief] == [s for s, _ in reference] == list(range(1, steps + 1))
    np.testing.assert_allclose([l for _, l in chief], [l for _, l in reference], rtol=1e-3)
