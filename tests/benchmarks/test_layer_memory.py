"""benchmarks/layer_memory.py: the knobs must lower the measured peak of their layer (a real
measurement at a small length, each configuration in a fresh process as the benchmark does: inside
a test worker that already ran other tests the peaks differ), and the CLI prints both tables."""

import subprocess
import sys

from benchmarks import layer_memory


def test_knobs_lower_the_peak_and_ratios_pair_up():
    rows = layer_memory.run([2048], list(layer_memory.CONFIGS), steps=1)
    by = {r["config"]: r for r in rows}
    assert by["lsh attn_chunks=8"]["peak_kib_per_token"] < \
        0.6 * by["lsh attn_chunks=1"]["peak_kib_per_token"]
    assert by["ff chunk_size=128 chunked_backward"]["peak_kib_per_token"] < \
        0.6 * by["ff whole"]["peak_kib_per_token"]
    # A chunked forward alone saves nothing once differentiated: a taped call runs the whole
    # sequence (`ChunkedFeedForward._whole_for_gradient`), the same graph as "ff whole", whose
    # peak still varies by +-25 % between processes with the executor's op order.
    assert by["ff chunk_size=128"]["peak_kib_per_token"] > \
        0.6 * by["ff whole"]["peak_kib_per_token"]
    assert by["ff chunk_size=128 chunked_backward"]["peak_kib_per_token"] < \
        0.4 * by["ff chunk_size=128"]["peak_kib_per_token"]
    pairs = layer_memory.ratios(rows)
    assert [(p[0], p[2]) for p in pairs] == [("lsh attn_chunks=8", 2048),
                                            ("lsh attn_chunks=8 query_chunk_len=1024", 2048),
                                            ("ff chunk_size=128", 2048),
                                            ("ff chunk_size=128 chunked_backward", 2048)]


def test_cli_prints_rows_and_ratios(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.layer_memory", "--lengths=512", "--steps=1",
         "--configs=ff whole,ff chunk_size=128 chunked_backward",
         f"--output={tmp_path / 'rows.jsonl'}"],
        capture_output=True, text=True, check=True)
    assert "| ff chunk_size=128 chunked_backward | ff whole | 512 |" in out.stdout
    assert len((tmp_path / "rows.jsonl").read_text().splitlines()) == 2
