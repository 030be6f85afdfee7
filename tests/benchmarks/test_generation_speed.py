"""benchmarks/generation_speed.py against Hugging Face at toy size: one command times both sides
(each generated the requested tokens from the same prompt, on the same configuration), and the
peer's model, converted with `from_hf`, continues a prompt greedily as Hugging Face does."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEER_PYTHON = "/tmp/peers/venv/bin/python"
TOY = ["--d_model=32", "--num_heads=2", "--d_ff=64", "--num_buckets=4",
       "--num_hashes=2", "--num_layers=4", "--attention_types=local,lsh", "--seed=3"]
needs_peer = pytest.mark.skipif(not os.path.exists(PEER_PYTHON),
                                reason=f"no PyTorch peer virtualenv at {PEER_PYTHON}")


@needs_peer
def test_one_command_times_ours_and_hugging_face(tmp_path):
    output = tmp_path / "rows.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.generation_speed", *TOY, "--total_len=64",
         "--prompt_len=32",
         "--bucket_size=16", "--baseline_points=0", "--peer_malloc=default",
         f"--peer_python={PEER_PYTHON}", f"--output={output}"],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = re.search(r"generation 32\+32 tokens: ours ([\d.]+) tok/s, HF \(best: malloc "
                     r"default\) ([\d.]+) tok/s, ours / HF ([\d.]+)x", proc.stdout)
    assert line, proc.stdout
    assert "same configuration on both sides" in proc.stdout
    (row,) = [json.loads(l) for l in output.read_text().splitlines()]
    assert row["ours_generated"] == row["hf_generated"] == 32
    assert row["hf_best_malloc"] == "default" and [r["malloc"] for r in row["hf"]] == ["default"]
    assert row["ours_over_hf"] == pytest.approx(
        row["ours_tokens_per_s"] / row["hf_best_tokens_per_s"], rel=1e-2)
    assert float(line.group(3)) == pytest.approx(row["ours_over_hf"], abs=0.01)
    assert row["date"] and row["commit"] and row["machine"]


@needs_peer
def test_peer_model_converted_generates_as_hugging_face(tmp_path):
    from reformer_keras.models import from_hf
    prompt = np.random.default_rng(0).integers(0, 256, size=(1, 20))
    proc = subprocess.run(
        [PEER_PYTHON, os.path.join(ROOT, "benchmarks", "peer_generation.py"), *TOY,
         "--total_len=48", "--chunk=8", "--prompt=" + ",".join(map(str, prompt[0])),
         "--warmup_tokens=1", "--greedy_tokens=12", f"--save_dir={tmp_path}"],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads([l for l in proc.stdout.splitlines() if l.startswith("{")][-1])
    assert len(record["ids"]) == 48 and record["ids"][:20] == prompt[0].tolist()
    model, _ = from_hf(tmp_path)
    ours = np.asarray(model.generate(prompt.astype("int32"), 12, temperature=0.0))
    assert ours[0].tolist() == record["greedy_uncached"]
