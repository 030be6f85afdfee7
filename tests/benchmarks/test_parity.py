"""benchmarks/parity.py end to end at toy size: two attention types trained for 3 steps with the
trainer's loop, and the reported bits checked against independent computations on the same
evaluation batches (the library's `evaluate_checkpoint`, `model.evaluate`'s loss, and NumPy)."""
import dataclasses
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import parity

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOY = parity.Suite("text", "lm", "shakespeare_plays", "tiny_text", seq_len=32, steps=3,
                   batch_size=4, num_layers=1, d_model=16, num_heads=2, d_ff=32, bucket_size=8,
                   num_hashes=1)
EVAL_BATCHES = 3


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = tmp_path_factory.getbasetemp() / "shared_tfds_data"  # as tests/training
    path.mkdir(exist_ok=True)
    return str(path)


@pytest.fixture(scope="module")
def parity_run(tmp_path_factory, data_dir):
    work = tmp_path_factory.mktemp("parity")
    output = str(work / "rows.jsonl")
    rows = parity.run_suite(TOY, ["lsh", "full"], str(work / "runs"), data_dir,
                            eval_hashes=["2"], num_eval_batches=EVAL_BATCHES, output=output,
                            jit_compile=False, warmup_steps=2, verbose=0)
    return rows, output


def _numpy_bits_per_char(logits, targets):
    """Cross-entropy in bits summed over every target byte / number of characters."""
    logits = logits.astype(np.float64)
    logits -= logits.max(-1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    nll = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0]
    byte = targets - 2  # ByteTokenizer: id = byte + 2; pad 0 / eos 1 are no characters
    chars = (byte >= 0) & ((byte < 0x80) | (byte >= 0xC0))
    return nll.sum() / math.log(2) / chars.sum(), chars.sum()


def test_rows_steps_and_table(parity_run):
    rows, output = parity_run
    assert [(r["attention"], r["eval_hashes"]) for r in rows] == [("lsh", 1), ("lsh", 2),
                                                                  ("full", None)]
    assert all(r["steps"] == 3 and r["stopped_by"] == "steps" for r in rows)
    assert all(r["seed"] == 0 for r in rows)  # run_suite's default seed, recorded per row
    assert len({r["eval_sha256"] for r in rows}) == 1
    assert all(r["eval_batches"] == EVAL_BATCHES for r in rows)
    assert rows[-1]["gap_pct"] == 0.0
    full = rows[-1]["eval_bits"]
    assert rows[0]["gap_pct"] == pytest.approx(100 * (rows[0]["eval_bits"] - full) / full)
    with open(output) as f:
        assert [json.loads(line)["eval_bits"] for line in f] == [r["eval_bits"] for r in rows]
    # the program itself (absl flags, main) renders the table from the JSON lines
    proc = subprocess.run([sys.executable, "-m", "benchmarks.parity", "--table_only",
                           f"--output={output}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "| attention | steps | wall time | train loss | eval bits/char | gap vs full |" \
        in proc.stdout
    assert "| lsh (2 hashes at eval) | 3 |" in proc.stdout
    assert "| full | 3 |" in proc.stdout and "+0.00 %" in proc.stdout


def test_bits_equal_independent_computations(parity_run, data_dir):
    from reformer_keras.training.loop import evaluate_checkpoint, load_checkpoint
    rows, _ = parity_run
    x, y, _ = parity.eval_batches(TOY, data_dir, EVAL_BATCHES)
    assert x.shape == (EVAL_BATCHES * TOY.batch_size, TOY.seq_len)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])  # next-byte targets
    for row in rows:
        model, _ = load_checkpoint(row["checkpoint"])
        hashes = None if row["eval_hashes"] in (None, TOY.num_hashes) else row["eval_hashes"]
        logits = np.asarray(model(x, training=False, num_hashes=hashes))
        bits, chars = _numpy_bits_per_char(logits, y)
        assert row["eval_bits"] == pytest.approx(bits, rel=1e-4)
        # model.evaluate's loss (nats per token) / ln 2, rescaled from tokens to characters
        assert row["eval_bits"] == pytest.approx(
            row["eval_loss"] / math.log(2) * y.size / chars, rel=1e-4)
        if hashes is None:  # the trainer's evaluation program's function, same batches
            ref = evaluate_checkpoint(row["checkpoint"], TOY.dataset, TOY.task, None,
                                      TOY.seq_len, TOY.batch_size, EVAL_BATCHES, data_dir,
                                      verbose=0)
            assert row["eval_bits"] == pytest.approx(ref["bits_per_char"], rel=1e-5)
    # more hash rounds at evaluation really changed the LSH model's scores
    assert rows[0]["eval_bits"] != rows[1]["eval_bits"]


def test_layer_types():
    assert parity.layer_types("lsh") == ["lsh"]
    assert parity.layer_types("local+lsh") == ["local", "lsh"]
    with pytest.raises(ValueError, match="unknown attention type"):
        parity.layer_types("local+hash")


def test_local_lsh_layout(parity_run, tmp_path, data_dir):
    """`local+lsh` (the paper's text layout): 2 layers really local then LSH, trained with the
    suite's hash rounds, evaluated with extra rounds like `lsh`, gap against a reference run."""
    from reformer_keras.layers import LocalSelfAttention, LSHSelfAttention
    from reformer_keras.training.loop import load_checkpoint
    suite = dataclasses.replace(TOY, num_layers=2)
    output = str(tmp_path / "rows.jsonl")
    rows = parity.run_suite(suite, ["local+lsh"], str(tmp_path / "runs"), data_dir,
                            eval_hashes=["2"], num_eval_batches=EVAL_BATCHES, output=output,
                            reference_rows=parity_run[0], jit_compile=False, warmup_steps=2,
                            verbose=0)
    assert [(r["attention"], r["eval_hashes"], r["steps"]) for r in rows] == [
        ("local+lsh", 1, 3), ("local+lsh", 2, 3)]
    assert rows[0]["eval_bits"] != rows[1]["eval_bits"]  # the LSH layer uses the extra rounds
    full = parity_run[0][-1]["eval_bits"]
    assert rows[1]["gap_pct"] == pytest.approx(100 * (rows[1]["eval_bits"] - full) / full)
    model, _ = load_checkpoint(rows[0]["checkpoint"])
    attention = [f.layer for f, _ in model.backbone.stack.blocks]
    assert [type(a) for a in attention] == [LocalSelfAttention, LSHSelfAttention]
    assert attention[0].chunk_size == attention[1].bucket_size == suite.bucket_size
    assert attention[1].num_hashes == suite.num_hashes
    proc = subprocess.run([sys.executable, "-m", "benchmarks.parity", "--table_only",
                           f"--output={output}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "| local+lsh (2 hashes at eval) | 3 |" in proc.stdout


def test_bits_per_dim_is_loss_over_ln2():
    """Image rows: bits/dim = evaluate loss / ln 2 (one token per sub-pixel)."""
    from reformer_keras.datasets import pipelines
    from reformer_keras.training import model_factory
    info = pipelines.describe("digits", "image")
    model = model_factory.build_model("image", "tiny_image", info, dict(
        d_model=16, num_layers=1, d_ff=32, attention_types=["lsh"], bucket_size=8), seed=0)
    rng = np.random.default_rng(0)
    y = rng.integers(0, 256, size=(4, info.seq_len)).astype("int32")
    x = np.concatenate([np.full((4, 1), 256, "int32"), y[:, :-1]], axis=1)
    for hashes in (None, 4):
        bits, loss = parity.evaluate_bits(model, info, x, y, 2, num_hashes=hashes)
        logits = np.asarray(model(x, num_hashes=hashes), np.float64)
        logits -= logits.max(-1, keepdims=True)
        nll = np.log(np.exp(logits).sum(-1)) - np.take_along_axis(logits, y[..., None], -1)[..., 0]
        assert bits == pytest.approx(loss / math.log(2), rel=1e-5)
        assert bits == pytest.approx(nll.mean() / math.log(2), rel=1e-4)
