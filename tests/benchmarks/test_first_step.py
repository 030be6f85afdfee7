"""benchmarks/first_step.py: each child process reports how often the train step was traced; the
library's variant traces once, Keras's deferred building (the reference) twice."""

import json
import subprocess
import sys


def test_cli_counts_the_traces(tmp_path):
    out_file = tmp_path / "rows.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.first_step", "--seq_len=64", "--depths=2",
         f"--output={out_file}"], capture_output=True, text=True, timeout=600, check=True)
    assert "first step s" in out.stdout
    rows = {r["variant"]: r for r in map(json.loads, out_file.read_text().splitlines())}
    assert rows["library"]["traces"] == 1 and rows["keras_deferred"]["traces"] == 2
    assert all(r["first_step_s"] > 0 and r["peak_rss_gib"] > 0 for r in rows.values())
