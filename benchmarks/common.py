"""Shared benchmark helpers: the peer configuration, one timed training step, peak memory.

Each measured configuration runs in a fresh Python process (`run_child`), so peak RSS
(VmHWM, `peak_rss_gib`) belongs to that configuration alone.
"""

import json
import os
import resource
import subprocess
import sys
import time

from reformer_keras import runtime

runtime.configure_cpu()  # oneDNN, the BFC CPU allocator: before TensorFlow loads

# The peer configuration (built in PyTorch by benchmarks/peers.py): causal byte LM, d_model 256,
# 4 heads x 64, d_ff 1024, bucket 64, 2 hash rounds, one chunk back, feed-forward in chunks of
# 128 tokens.
PEER_CONFIG = dict(vocab_size=256, d_model=256, num_heads=4, d_ff=1024, bucket_size=64,
                   num_hashes=2, ff_chunk_size=128)


def peak_rss_gib():
    """Peak resident set size of this process's own program so far, GiB: /proc's VmHWM.

    Not `ru_maxrss`: Linux carries that over `execve` from the parent, so a child started by a
    large process (a test runner, say) would report at least its parent's peak."""
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 2**20
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def current_rss_gib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def build_lm(seq_len, num_layers, attention="lsh", reversible=True, axial=True, **overrides):
    """The peer LM at `seq_len`, with axial positions (a, b), a * b >= seq_len (the table's
    length, hence max_len)."""
    from reformer_keras.models import ReformerLM  # pylint: disable=import-outside-toplevel
    config = dict(PEER_CONFIG, num_layers=num_layers, attention_types=(attention,),
                  reversible=reversible, max_len=seq_len, seed=0)
    if axial:
        a = 2 ** (max(seq_len.bit_length() - 1, 1) // 2)
        config.update(axial_shape=(a, -(-seq_len // a)), axial_dims=(64, 192))
        del config["max_len"]
    config.update(overrides)
    return ReformerLM(**config)


def time_train_steps(model, seq_len, steps=2, warmup=1, jit_compile=False, batch=1):
    """Compiles `model` with Adam and runs `warmup + steps` training steps on random bytes.

    Returns dict(step_times_s=[...], loss=float).
    """
    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = np.random.default_rng(0).integers(0, 256, size=(batch, seq_len + 1), dtype="int32")
    x, y = data[:, :-1], data[:, 1:]
    times, loss = [], None
    for i in range(warmup + steps):
        start = time.perf_counter()
        loss = model.train_on_batch(x, y)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return dict(step_times_s=[round(t, 3) for t in times], loss=float(np.asarray(loss)))


def run_child(module, args, env=None, timeout=3600):
    """Runs `python -m module args` in a fresh process; returns its last stdout line as JSON."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {})))
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode != 0 or not lines:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return dict(status="failed", returncode=proc.returncode, error=" | ".join(tail))
    return json.loads(lines[-1])
