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
        assert (row["bucket_size"], row["d_model"]) == (8, 64)   # --quick's sizes
    assert "| LSH-2 | 4 |" in proc.stdout


def test_rows_of_different_bucket_sizes_are_kept_apart(tmp_path, capsys):
    """Rows record their bucket size and width; reading keeps a bucket-16 row apart from the
    bucket-32 row of the same setting (an old row without the keys counts as bucket 32, d_model
    128, and a newer explicit bucket-32 row replaces it), and a table that mixes bucket sizes
    names each row's."""
    def row(acc, **sizes):
        return dict(config="w127_v128", train="full", steps=2500, schedule="constant", seed=0,
                    batch_size=16, wall_s=600.0, final_loss=0.0,
                    accuracy={"full": 1.0, "lsh1": acc}, **sizes)
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [
        row(0.972),                                   # written before rows had the keys
        row(0.55, bucket_size=16, d_model=128),
        row(0.5, bucket_size=16, d_model=64),
        row(0.973, bucket_size=32, d_model=128),      # same setting as the first: replaces it
        dict(row(0.1, bucket_size=16, d_model=128), config="w511_v128"),
    ]) + "\n")
    rows = dup.read_rows(str(path), "w127_v128")
    assert sorted((r.get("bucket_size"), r.get("d_model"), r["accuracy"]["lsh1"])
                  for r in rows) == [(16, 64, 0.5), (16, 128, 0.55), (32, 128, 0.973)]
    dup.print_table(rows)
    out = capsys.readouterr().out
    assert "| full attention (bucket 16) (d_model 128) | 2500 |" in out
    assert "| full attention (bucket 32) (d_model 128) | 2500 |" in out
    assert "55.0 %" in out and "97.3 %" in out
    dup.print_table([r for r in rows if r.get("bucket_size") == 16 and r["d_model"] == 128])
    assert "| full attention | 2500 |" in capsys.readouterr().out   # one size: plain names


def test_rebuild_evaluates_at_the_asked_bucket_size(tmp_path):
    """Evaluation rebuilds a saved model with the evaluation's attention kind and bucket size:
    an LSH model trained (built) with one chunk spanning the sequence, rebuilt at bucket 32, is
    full shared-QK attention; rebuilt at bucket 4 it gives the logits of a model built at
    bucket 4 with its weights (not its own bucket-32 logits), and its saved bucket size is read
    back from the file."""
    lsh = dup.build_model("lsh", 32, 16, num_hashes=2, d_model=32, d_ff=64, num_heads=2,
                          bucket_size=32, seed=3)
    path = str(tmp_path / "w_lsh2.keras")
    lsh.save(path)
    assert dup.saved_bucket_size(path) == 32
    import keras  # pylint: disable=import-outside-toplevel
    trained = keras.saving.load_model(path)
    x = np.random.default_rng(0).integers(0, 16, size=(3, 31))
    full = dup.rebuild(trained, "full")
    np.testing.assert_allclose(np.asarray(dup.rebuild(trained, "lsh", 32)(x, num_hashes=2)),
                               np.asarray(full(x)), atol=1e-5)
    small = dup.build_model("lsh", 32, 16, num_hashes=2, d_model=32, d_ff=64, num_heads=2,
                            bucket_size=4, seed=3)
    small.set_weights(lsh.get_weights())
    rebuilt = dup.rebuild(trained, "lsh", 4)
    assert rebuilt.backbone.bucket_size == 4
    np.testing.assert_allclose(np.asarray(rebuilt(x, num_hashes=1)),
                               np.asarray(small(x, num_hashes=1)), atol=1e-5)
    assert np.abs(np.asarray(rebuilt(x, num_hashes=1)) - np.asarray(full(x))).max() > 1e-3


def test_evaluation_rows_are_kept_apart_from_training_rows(tmp_path, capsys):
    """Evaluation-only rows (kind 'eval') do not replace or join the training table; they have
    their own table, in file order, naming the trained and the evaluation bucket size."""
    train = dict(config="w127_v128", train="full", steps=2500, schedule="constant", seed=0,
                 batch_size=16, wall_s=600.0, final_loss=0.0, bucket_size=32, d_model=128,
                 accuracy={"full": 1.0, "lsh1": 0.97})
    ev = [dict(kind="eval", config="w127_v128", model="/m/w127_v128_lsh4.keras", train="lsh4",
               trained_bucket_size=32, eval_bucket_size=b, accuracy={"full": 1.0, "lsh1": a})
          for b, a in ((32, 0.99), (8, 0.5))]
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [train] + ev) + "\n")
    assert dup.read_rows(str(path), "w127_v128") == [train]
    assert dup.read_eval_rows(str(path), "w127_v128") == ev
    assert dup.read_eval_rows(str(path), "w511_v128") == []
    dup.print_eval_table(ev)
    out = capsys.readouterr().out
    assert "| /m/w127_v128_lsh4.keras | LSH-4 | 32 | 8 | 100.0 % | 50.0 % |" in out
