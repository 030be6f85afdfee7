"""The scaling benchmark's report (tables, targets, plots) and skip predictions, on made-up rows."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import scaling_report, scaling_run

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _row(impl, mode, length, layers, step_s, peak, attention="lsh", reversible=True, **extra):
    tokens = extra.pop("tokens", length)
    return dict(kind="step", impl=impl, mode=mode, seq_len=length, num_layers=layers,
                attention=attention, reversible=reversible, jit_compile=False,
                malloc_tuned=False, status="ok", median_step_s=step_s,
                tokens_per_s=tokens / step_s, peak_rss_gib=peak, rss_after_build_gib=0.8,
                cpu_util=1.95, run_id="r1", **extra)


def _rows():
    rows = [dict(kind="matmul", status="ok", best_gflops=100.0, shapes={"2048x2048x2048": 100.0},
                 run_id="r1")]
    for length, step in ((1024, 0.5), (4096, 2.0), (16384, 8.0), (65536, 40.0)):
        rows.append(_row("ours", "train", length, 6, step, 1.0 + length / 16384))
        rows.append(_row("ours", "infer", length, 6, step / 3, 0.9 + length / 32768))
    for length, step in ((1024, 0.6), (4096, 4.0), (16384, 16.0)):
        rows.append(_row("reformer_pytorch", "train", length, 6, step, 0.5 + length / 8192))
    rows += [_row("ours", "train", 1024, 6, 0.25, 1.0, attention="full"),
             _row("ours", "train", 4096, 6, 2.0, 2.2, attention="full"),
             _row("ours", "train", 16384, 2, 6.0, 2.0), _row("ours", "train", 16384, 12, 12.0, 2.2),
             _row("ours", "train", 16384, 12, 60.0, 11.7, reversible=False),
             _row("ours", "generate", 1024, 6, 2.0, 0.9, tokens=192),
             dict(_row("ours", "train", 1048576, 6, 1.0, 1.0), status="skipped_memory",
                  reason="predicted peak 40.0 GiB > --mem_limit_gib 20.0")]
    return rows


def test_targets_from_rows():
    rows = _rows()
    for r in rows:
        scaling_report.add_flops(r, 100.0)
    lines = "\n".join(scaling_report.targets(rows))
    assert "train, 4096 tokens (6 layers): 2.000 (target >= 1.5: met)" in lines
    assert "train, 16384 tokens (6 layers): 2.000 (target >= 1.5: met)" in lines
    assert "peak memory ours / reformer_pytorch, train, 16384 tokens: 0.800" in lines
    assert "reversible peak 12 layers / 2 layers, train, 16384 tokens: 1.100" in lines
    # 40 s / 65536 tokens over 0.5 s / 1024 tokens.
    assert f"LSH time per token 65536 / 1024 tokens, train: {40 / 64 / 0.5:.3f}" in lines
    assert "full attention time per token 4096 / 1024 tokens: 2.00 (6 layers)" in lines
    assert ("step time LSH / full attention, train, 1024 tokens: 0.500 s / 0.250 s = 2.00"
            in lines)
    assert "peak memory, 6 layers, train, 1048576 tokens (GiB): n/a [skipped_memory" in lines
    ours16k = [r for r in rows if r.get("seq_len") == 16384 and r.get("num_layers") == 6
               and r.get("impl") == "ours" and r["mode"] == "train"][0]
    pct = ours16k["model_flops"] / 8.0 / 1e9 / 100.0 * 100
    assert abs(ours16k["pct_matmul"] - round(pct, 1)) < 1e-9
    rate_line = lines.split("model FLOP rate / matmul rate")
    assert len(rate_line) == 2 and "n/a" not in rate_line[1]


def test_targets_without_rows_are_na():
    lines = scaling_report.targets([])
    assert lines and all(l.rstrip().endswith("n/a") for l in lines), lines


def test_side_by_side_ratio():
    lines = scaling_report.side_by_side(_rows())
    row = [l for l in lines if l.split()[:2] == ["train", "4096"]][0]
    assert row.split()[3] == "y" and row.split()[6] == "2.00"


def test_peer_rows_without_recompute_pair_with_ours_without():
    """reformer_pytorch with its ordinary-backprop blocks (reversible=False) is compared with
    ours at reversible=False, and never counted for the speed or memory ratio against
    the peer."""
    rows = _rows() + [_row("ours", "train", 4096, 6, 1.0, 2.0, reversible=False),
                      _row("reformer_pytorch", "train", 4096, 6, 3.0, 1.5, reversible=False)]
    lines = scaling_report.side_by_side(rows)
    irreversible = [l.split() for l in lines if l.split()[:4] == ["train", "4096", "6", "n"]]
    assert len(irreversible) == 1 and irreversible[0][6] == "3.00"
    for r in rows:
        scaling_report.add_flops(r, 100.0)
    assert "train, 4096 tokens (6 layers): 2.000 (target >= 1.5: met)" in "\n".join(
        scaling_report.targets(rows))


def test_best_peer_per_length_on_made_up_rows():
    """The fastest finished peer of any implementation and allocator setting is the one we
    are compared with, at each length; lengths where no peer finished say why."""
    rows = [_row("ours", "train", 4096, 6, 1.0, 1.2), _row("ours", "train", 16384, 6, 4.0, 1.8),
            _row("ours", "train", 65536, 6, 20.0, 4.0),
            _row("torch_full", "train", 4096, 6, 0.8, 0.9, attention="full", reversible=False),
            _row("hf", "train", 4096, 6, 1.5, 0.9),
            dict(_row("hf", "train", 4096, 6, 1.25, 0.95), malloc_tuned=True),
            _row("torch_full", "train", 16384, 6, 12.0, 2.3, attention="full", reversible=False),
            dict(_row("hf", "train", 16384, 6, 8.0, 2.4), malloc_tuned=True),
            _row("reformer_pytorch", "train", 16384, 6, 10.0, 2.0),
            dict(_row("hf", "train", 65536, 6, 1.0, 12.8), status="killed_memory"),
            _row("ours", "infer", 4096, 6, 0.1, 1.0), _row("hf", "infer", 4096, 6, 0.01, 1.0)]
    found = {f["seq_len"]: f for f in scaling_report.best_peers(rows)}
    assert found[4096]["best"]["impl"] == "torch_full"          # the infer row does not count
    assert found[4096]["speed"] == pytest.approx(0.8)           # 4096/1.0 vs 4096/0.8 tok/s
    assert found[4096]["memory"] == pytest.approx(1.2 / 0.9)
    assert found[16384]["best"]["impl"] == "hf" and found[16384]["best"]["malloc_tuned"]
    assert found[16384]["speed"] == pytest.approx(2.0)
    assert found[65536]["best"] is None and found[65536]["speed"] is None
    lines = scaling_report.best_peer_lines(rows)
    assert [l.split()[3:6] for l in lines if l.split()[:1] == ["16384"]] == [
        ["hf", "(malloc", "tuned)"]]
    assert "no peer finished (hf: killed_memory)" in "\n".join(lines)


def test_dry_run_races_every_peer_with_both_allocators(tmp_path):
    fake_peer = tmp_path / "python"
    fake_peer.write_text("")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--dry_run",
                           f"--peer_python={fake_peer}", "--lengths=4096", "--depths=6",
                           "--attention=lsh", "--modes=train", "--reversible=true"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True)
    peers = sorted((l.split("impl=")[1].split()[0], l.split("malloc_tuned=")[1].split()[0],
                    l.split("attention=")[1].split()[0])
                   for l in proc.stdout.splitlines() if "impl=" in l and "impl=ours" not in l)
    assert peers == [(impl, tuned, "full" if impl == "torch_full" else "lsh")
                     for impl in ("hf", "reformer_pytorch", "torch_full")
                     for tuned in ("False", "True")]


def test_dry_run_lists_irreversible_peers(tmp_path):
    fake_peer = tmp_path / "python"
    fake_peer.write_text("")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--dry_run",
                           f"--peer_python={fake_peer}", "--lengths=4096", "--depths=6",
                           "--attention=lsh", "--modes=train", "--reversible=true,false",
                           "--peer_reversible=true,false", "--peer_malloc=default"], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True)
    peer_lines = [l for l in proc.stdout.splitlines() if "reformer_pytorch" in l or "hf" in l]
    assert len([l for l in peer_lines if "reformer_pytorch" in l]) == 2
    assert len([l for l in peer_lines if "hf" in l]) == 1     # hf: reversible only


def test_plots_are_written(tmp_path):
    paths = scaling_report.plots(_rows(), str(tmp_path))
    assert len(paths) == 4
    for path in paths:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
        assert os.path.getsize(path) > 10_000


def test_plot_only_cli(tmp_path):
    results = tmp_path / "rows.jsonl"
    rows = _rows()
    results.write_text("".join(json.dumps(r) + "\n" for r in rows + [rows[1]]))
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scaling", f"--plot_only={results}",
         f"--plots_dir={tmp_path / 'img'}"], cwd=REPO, capture_output=True, text=True,
        timeout=120, check=True)
    assert "tokens/s ours / reformer_pytorch" in proc.stdout
    assert proc.stdout.count("ours             train    lsh       4096   6") == 1
    assert sorted(os.listdir(tmp_path / "img")) == [
        "scaling_generation.png", "scaling_memory_vs_depth.png",
        "scaling_memory_vs_length.png", "scaling_time_per_token.png"]


def test_predictions_skip_quadratic_and_follow_failures():
    full = dict(impl="ours", mode="train", seq_len=16384, num_layers=2, attention="full",
                reversible=True)
    mem, step, wall, why = scaling_run.predict(full, [], steps=2, long_step_s=120, warmup=2)
    assert mem > 20 and step is None and why is None  # 5 x 4 heads x L^2 float32 alone: 20 GiB
    prev = dict(full, seq_len=4096, status="ok", peak_rss_gib=2.15, rss_after_build_gib=0.8,
                median_step_s=4.0)
    mem, step, wall, _ = scaling_run.predict(full, [prev], steps=2, long_step_s=120, warmup=2)
    assert abs(mem - (0.8 + 1.35 * 16)) < 1e-9  # the excess over the build RSS, x (L/L')^2
    assert 16 * 4.0 * 0.5 < step < 16 * 4.0  # attention dominates the FLOPs: ~L^2
    lsh = dict(full, attention="lsh", seq_len=65536)
    prev = dict(lsh, seq_len=16384, status="ok", peak_rss_gib=2.8, rss_after_build_gib=0.8,
                median_step_s=10.0)
    mem, step, wall, _ = scaling_run.predict(lsh, [prev], steps=2, long_step_s=120, warmup=2)
    assert abs(mem - (0.8 + 2.0 * 4)) < 1e-9 and 35 < step < 45  # linear in L
    assert wall == scaling_run.STARTUP_S + 4 * step  # 2 warm-up + 2 timed steps
    _, _, wall, _ = scaling_run.predict(lsh, [prev], steps=2, long_step_s=120, warmup=1)
    assert wall == scaling_run.STARTUP_S + 3 * step
    failed = dict(prev, status="timeout", reason="still running after 1800 s")
    assert scaling_run.predict(lsh, [failed], 2, 120, 2)[3].startswith("timeout at 16384")


def test_guarded_child_timeout_and_memory_kill():
    sleeper = [sys.executable, "-c", "import json, time; print(json.dumps(dict(status='running', "
               "peak_rss_gib=0.01)), flush=True); time.sleep(60)"]
    out = scaling_run.run_guarded(sleeper, timeout_s=1.5)
    assert out["status"] == "timeout" and out["peak_rss_gib"] == 0.01 and out["wall_s"] < 10
    hog = [sys.executable, "-c", "import time; x = bytearray(600 * 2**20); time.sleep(60)"]
    out = scaling_run.run_guarded(hog, timeout_s=30, mem_limit_gib=0.3)
    assert out["status"] == "killed_memory" and out["rss_seen_gib"] > 0.3 and out["wall_s"] < 20
    ok = [sys.executable, "-c", "print('{\"status\": \"ok\", \"x\": 1}')"]
    assert scaling_run.run_guarded(ok)["x"] == 1
    bad = [sys.executable, "-c", "import sys; sys.exit('boom')"]
    out = scaling_run.run_guarded(bad)
    assert out["status"] == "failed" and "boom" in out["reason"]


def test_dry_run_lists_the_star_grid():
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--dry_run",
                           "--peer_python=/nonexistent"], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=True)
    lines = proc.stdout.splitlines()
    assert lines[-1] == "59 configurations"  # 6 lengths x 3 attention x 3 modes + 6 - 1 shared
    assert "peers skipped" in lines[0]
    lengths = [int(l.split("seq_len=")[1].split()[0]) for l in lines if "seq_len=" in l]
    assert lengths == sorted(lengths)



def test_allocator_pool_cap_reaches_our_children_and_tensorflow():
    """`--tf_cpu_pool_gib`: our children (not the peers) get TF_CPU_BFC_MEM_LIMIT_IN_MB, and
    TensorFlow's CPU allocator honours it (a tensor larger than the cap fails, a smaller one
    does not), each in a fresh process."""
    from benchmarks import scaling  # pylint: disable=import-outside-toplevel
    ours = dict(impl="ours", mode="train")
    assert scaling.child_env(dict(ours, malloc_tuned=True), 0.25) == dict(
        scaling_run.MALLOC_TUNED, TF_CPU_BFC_MEM_LIMIT_IN_MB="256")
    assert scaling.child_env(dict(ours, impl="hf"), 0.25) == {}
    assert scaling.child_env(ours, 0.0) == {}
    code = ("from reformer_keras import runtime\nruntime.configure_cpu()\n"
            "import tensorflow as tf\n"
            "try:\n"
            "    print(float(tf.reduce_sum(tf.ones((%d, 2**18)))))\n"
            "except tf.errors.ResourceExhaustedError:\n"
            "    print('exhausted')\n")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               **scaling.child_env(ours, 0.25))  # 256 MiB
    small, big = (subprocess.run([sys.executable, "-c", code % rows], env=env, text=True,
                                 capture_output=True, timeout=300).stdout.strip().splitlines()[-1]
                  for rows in (64, 512))                # 64 MiB, 512 MiB of float32
    assert small == str(float(64 * 2**18)) and big == "exhausted"


def _train_child(*flags):
    """One training step of `benchmarks.scaling --child` (1 layer, 256 tokens) with `flags`;
    returns its last JSON row."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--child",
                           "--c_mode=train", "--c_seq_len=256", "--c_layers=1", "--c_single",
                           *flags], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("optimizer", ["fused_adam", "adam"])
def test_train_child_records_and_runs_its_optimizer(optimizer):
    """`--optimizer` reaches the child, which trains one step with it and records it."""
    row = _train_child(f"--optimizer={optimizer}")
    assert row["status"] == "ok" and row["optimizer"] == optimizer
    assert np.isfinite(row["last_value"])


def test_train_child_reserves_the_pool_and_records_it():
    """`--reserve_pool_gib`: the child reserves before building, records the size, and the
    pool's in-use peak it reports is the step's own (the reservation is not counted)."""
    row = _train_child("--reserve_pool_gib=0.5")
    assert row["status"] == "ok" and row["reserve_pool_gib"] == 0.5
    assert 0 < row["tf_peak_gib"] < 0.25 and np.isfinite(row["last_value"])
