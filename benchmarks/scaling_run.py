"""Running and guarding the scaling benchmark's child processes; predicting what to skip.

`run_guarded` starts one measurement in a fresh process, reads the JSON lines it prints, and
kills it (SIGKILL, that process only) when it passes a wall-clock timeout or a resident-memory
limit. `predict` extrapolates a configuration's peak memory and step time from the measured row
of the same series at the next shorter length (and from formulas for quadratic terms), so that
configurations bound to exceed the limits are skipped with a recorded reason instead of run.
"""

import json
import os
import subprocess
import tempfile
import threading
import time

from benchmarks import flops
from benchmarks.common import PEER_CONFIG

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MALLOC_TUNED = dict(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="68719476736")
STARTUP_S = 25.0  # interpreter + TensorFlow import + model build + tracing, roughly
GIB = 2.0**30


def _rss_gib(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / GIB
    except (OSError, ValueError, IndexError):
        return 0.0


def run_guarded(cmd, env=None, timeout_s=3600.0, mem_limit_gib=20.0, poll_s=0.25):
    """Runs `cmd` (argv list) in REPO; returns its last JSON stdout line as a dict, plus
    `status` ("ok" as the child reported it, "failed", "timeout", "killed_memory"),
    `wall_s` (seconds), `rss_seen_gib` (largest resident set seen by polling, GiB) and
    `loadavg_before` (1-minute load average at the start; it still includes the decaying load
    of the previous child, so `cpu_util` of the child is the better sign of a shared machine).
    A killed child's dict keeps the fields of its last (partial) line.
    """
    lines, load = [], os.getloadavg()[0]
    with tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=err, text=True,
                                env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                                         KERAS_BACKEND="tensorflow", **(env or {})))
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        start, seen, killed = time.perf_counter(), 0.0, None
        while proc.poll() is None:
            seen = max(seen, _rss_gib(proc.pid))
            if seen > mem_limit_gib:
                killed = "killed_memory"
            elif time.perf_counter() - start > timeout_s:
                killed = "timeout"
            if killed:
                proc.kill()
                proc.wait()
                break
            time.sleep(poll_s)
        reader.join(timeout=10)
        wall = time.perf_counter() - start
        err.seek(0)
        tail = [l for l in err.read().strip().splitlines() if l.strip()][-3:]
    records = []
    for line in lines:
        if line.startswith("{"):
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
    out = dict(records[-1]) if records else {}
    if killed:
        out["status"] = killed
        out["reason"] = (f"resident memory passed {mem_limit_gib:.1f} GiB" if
                         killed == "killed_memory" else f"still running after {timeout_s:.0f} s")
    elif proc.returncode != 0 or out.get("status") != "ok":
        out["status"] = "failed"
        out["reason"] = f"exit code {proc.returncode}: " + " | ".join(tail)[-600:]
    out.update(wall_s=round(wall, 1), rss_seen_gib=round(seen, 3), loadavg_before=load)
    return out


def available_gib():
    """MemAvailable of /proc/meminfo, GiB (None if unreadable)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return None


def series_key(row):
    """Rows that differ only in length form a series."""
    return (row["impl"], row["mode"], row["attention"], row["num_layers"], row["reversible"],
            bool(row.get("jit_compile")), bool(row.get("malloc_tuned")))


def flops_config(row):
    """`flops.model_flops` config of a row (peers: their un-factorised L / 64 buckets)."""
    config = dict(PEER_CONFIG, num_layers=row["num_layers"], attention_types=(row["attention"],),
                  reversible=row["reversible"])
    if row["impl"] == "ours":
        config["stored_top_blocks"] = row.get("stored_top_blocks") or 0
    else:
        config["num_buckets"] = max(row["seq_len"] // PEER_CONFIG["bucket_size"], 2)
    return config


def step_flops(row):
    """(model FLOPs, hardware FLOPs) of one step of `row`'s mode (generate: None)."""
    if row["mode"] == "generate":
        return None, None
    counts = flops.model_flops(flops_config(row), row["seq_len"])
    if row["mode"] == "infer":
        return counts["forward"], counts["forward"]
    return counts["train_model"], counts["train_hardware"]


def _quadratic_gib(row, seq_len):
    """Memory terms quadratic in L, GiB: full attention's (H, L, L) float32 scores (about 5
    live copies in training: logits, masked logits, probabilities and their gradients; 3 in a
    forward) and the peers' un-factorised LSH rotations (H, n, L, L / 64), about 2 copies."""
    heads, rounds = PEER_CONFIG["num_heads"], PEER_CONFIG["num_hashes"]
    if row["impl"] == "ours" and row["attention"] == "full" and row["mode"] != "generate":
        return (5 if row["mode"] == "train" else 3) * heads * seq_len**2 * 4 / GIB
    if row["impl"] != "ours":
        return 2 * heads * rounds * seq_len * (seq_len // 64) * 4 / GIB
    return 0.0


def predict(row, done, steps, long_step_s, warmup):
    """Predicted peak GiB, step seconds and child wall seconds of `row` (None when unknown),
    and the reason to skip regardless of limits (a shorter length of the series failed).

    `done`: rows measured so far. Memory, from the series' previous length L_prev (base = its
    RSS after building the model): base + (peak - base - quad(L_prev)) * L / L_prev + quad(L);
    for our full attention base + (peak - base) * (L / L_prev)^2; with no previous length only
    the quadratic formula (full attention, peers), else unknown. Time: the previous median step
    times the FLOP ratio (generation: the cache-length ratio); unknown without a previous one.
    Wall: start-up plus `warmup` untimed and `steps` timed steps.
    """
    length = row["seq_len"]
    prev = [r for r in done if series_key(r) == series_key(row) and r["seq_len"] < length]
    prev = max(prev, key=lambda r: r["seq_len"]) if prev else None
    quad = _quadratic_gib(row, length)
    mem, step = (0.8 + quad if quad else None), None
    if prev is not None and prev.get("status") != "ok":
        return mem, None, None, (f"{prev['status']} at {prev['seq_len']} tokens "
                                 f"({prev.get('reason', '')})")
    if prev is not None:
        ratio = length / prev["seq_len"]
        base = prev.get("rss_after_build_gib") or 0.8
        excess = max(prev["peak_rss_gib"] - base, 0.0)
        if row["impl"] == "ours" and quad:  # all of it scaled as L^2 (conservative)
            mem = base + excess * ratio**2
        else:
            quad_prev = _quadratic_gib(prev, prev["seq_len"])
            mem = base + max(excess - quad_prev, 0.0) * ratio + quad
        if prev.get("median_step_s"):
            if row["mode"] == "generate":
                step = prev["median_step_s"] * ratio
            else:
                step = prev["median_step_s"] * step_flops(row)[0] / step_flops(prev)[0]
    wall = None
    if step is not None:
        # A step longer than long_step_s is run once, without a warm-up (tracing: ~+20%).
        wall = STARTUP_S + (1.2 * step if step > long_step_s else (warmup + steps) * step)
    return mem, step, wall, None
