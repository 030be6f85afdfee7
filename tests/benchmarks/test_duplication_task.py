"""The duplication-task benchmark: weight transfer between attention kinds, accuracy, CLI."""

import json
import os
import subprocess
import sys

import numpy as np

from benchmarks import duplication_task as dup
from reformer_keras.datasets.duplication import make_sequences


def test_lsh_weights_in_a_full_model_give_full_attention():
    """An LSH model whose one chunk spans the sequence IS full shared-QK attention, so the full
    model that receives its weights must produce the same logits; a wrong weight mapping (or a
    full model without shared QK) fails this."""
    lsh = dup.build_model("lsh", 32, 16, num_hashes=2, d_model=32, d_ff=64, num_heads=2,
                          bucket_size=32, seed=3)
    full = dup.build_model("full", 32, 16, d_model=32, d_ff=64, num_heads=2, seed=4)
    full.set_weights(lsh.get_weights())
    x = np.random.default_rng(0).integers(0, 16, size=(3, 31))
    np.testing.assert_allclose(np.asarray(full(x)), np.asarray(lsh(x)), atol=1e-5)
    other = dup.build_model("full", 32, 16, d_model=32, d_ff=64, num_heads=2, seed=4)
    assert np.abs(np.asarray(other(x)) - np.asarray(lsh(x))).max() > 1e-3


def test_accuracy_counts_only_the_second_copy():
    """A model is scored on the second copy only: a batch whose second copy is exactly what the
    model predicts scores 1.0, whatever it predicts elsewhere; corrupting one second-copy target
    out of n lowers the score by exactly 1/n."""
    model = dup.build_model("full", 16, 8, d_model=16, d_ff=32, num_heads=2)
    tokens, mask = make_sequences(np.random.default_rng(1).integers(1, 8, size=(2, 7)))
    inputs, weights = tokens[:, :-1], mask[:, 1:].astype("float32")
    pred = np.argmax(np.asarray(model(inputs)), axis=-1)
    targets = np.where(weights > 0, pred, (pred + 1) % 8)   # wrong off the second copy
    assert dup.accuracy(model, None, [(inputs, targets, weights)]) == 1.0
    targets[0, -1] = (targets[0, -1] + 1) % 8
    n = weights.sum()
    assert abs(dup.accuracy(model, None, [(inputs, targets, weights)]) - (n - 1) / n) < 1e-9


def test_quick_cli_writes_rows_and_table(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.duplication_task", "--quick", "--train=full,lsh2",
         "--steps=4", f"--work_dir={tmp_path}", f"--data_dir={tmp_path / 'data'}"],
        capture_output=True, text=True, env=env, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = [json.loads(l) for l in (tmp_path / "quick.jsonl").read_text().splitlines()]
    assert [r["train"] for r in rows] == ["full", "lsh2"]
    for row in rows:
        assert set(row["accuracy"]) == set(dup.EVALS)
        assert all(0.0 <= a <= 1.0 for a in row["accuracy"].values())
    assert "| LSH-2 | 4 |" in proc.stdout
