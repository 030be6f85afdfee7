"""Memory and time of one layer's forward + backward, with and without the memory knobs.

    python -m benchmarks.layer_memory                        # 4K and 16K tokens, ~2 minutes
    python -m benchmarks.layer_memory --lengths=65536 --output=/tmp/layer_memory.jsonl

Two knobs, each against its plain setting, in the peer configuration (d_model 256, 4 heads of
64, bucket 64, 2 hash rounds, causal; d_ff 1024):
  * `LSHSelfAttention(attn_chunks=1)` (every (head, round) pair at once) vs `attn_chunks=8`
    (one pair at a time in both passes, `layers/tf_sequential_attention.py`), and that with
    `query_chunk_len=1024` (each pair's sorted queries in pieces of 1,024 tokens,
    `layers/tf_segmented_attention.py`);
  * `ChunkedFeedForward(chunk_size=None)` vs `chunk_size=128` (chunked forward, automatic
    differentiation of the loop) and `chunk_size=128, chunked_backward=True` (chunk-wise
    backward with recompute, `layers/tf_chunked_recompute.py`).
Each configuration runs in a fresh process: one traced `tf.function` computing the gradients
of sum(y * w) with respect to the input and every weight (batch 1, float32), one warm-up call,
then the median of --steps timed calls. Peak = TensorFlow's allocator peak during one call
above what was allocated before it (`tf.config.experimental.get_memory_info`, BFC allocator),
per token; the ratios in the last table are measured in this run.
"""

import json
import statistics
import subprocess
import sys
import time

from absl import app, flags

from benchmarks import ledger

FLAGS = flags.FLAGS

CONFIGS = {  # name -> (layer kind, constructor overrides)
    "lsh attn_chunks=1": ("lsh", dict(attn_chunks=1)),
    "lsh attn_chunks=8": ("lsh", dict(attn_chunks=8)),
    "lsh attn_chunks=8 query_chunk_len=1024": ("lsh", dict(attn_chunks=8, query_chunk_len=1024)),
    "ff whole": ("ff", dict(chunk_size=None)),
    "ff chunk_size=128": ("ff", dict(chunk_size=128)),
    "ff chunk_size=128 chunked_backward": ("ff", dict(chunk_size=128, chunked_backward=True)),
}
PAIRS = (("lsh attn_chunks=8", "lsh attn_chunks=1"),
         ("lsh attn_chunks=8 query_chunk_len=1024", "lsh attn_chunks=8"),
         ("ff chunk_size=128", "ff whole"),
         ("ff chunk_size=128 chunked_backward", "ff whole"))


def define_flags():
    flags.DEFINE_list("lengths", ["4096", "16384"], "Sequence lengths (tokens).")
    flags.DEFINE_list("configs", list(CONFIGS), f"Of {list(CONFIGS)}.")
    flags.DEFINE_integer("steps", 3, "Timed calls (median) after one warm-up call.")
    flags.DEFINE_string("output", "", "Optional JSON-lines file to append rows to.")
    flags.DEFINE_string("child", "", "Internal: measure this configuration here.")
    flags.DEFINE_integer("length", 1024, "Internal (--child).")


def build_layer(kind, overrides):
    from reformer_keras.layers import ChunkedFeedForward, LSHSelfAttention  # pylint: disable=import-outside-toplevel
    if kind == "lsh":
        return LSHSelfAttention(4, 64, bucket_size=64, num_hashes=2, causal=True, seed=0,
                                **overrides)
    return ChunkedFeedForward(1024, seed=0, **overrides)


def measure(name, length, steps):
    """One configuration in this process -> dict (peak KiB per token, median seconds)."""
    from reformer_keras import runtime  # pylint: disable=import-outside-toplevel
    runtime.configure_cpu()
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    kind, overrides = CONFIGS[name]
    layer = build_layer(kind, overrides)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(1, length, 256)).astype("float32"))
    w = tf.constant(rng.normal(size=(1, length, 256)).astype("float32"))
    layer(x[:, :128])

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True, rng=tf.constant([1, 2]))
            loss = tf.reduce_sum(y * w)
        return tape.gradient(loss, [x] + layer.trainable_weights)

    step(x)
    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(x)
        times.append(time.perf_counter() - start)
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"] - before
    return dict(config=name, seq_len=length, peak_kib_per_token=round(peak / length / 1024, 2),
                peak_gib=round(peak / 2**30, 3), step_s=round(statistics.median(times), 3))


def run(lengths, names, steps):
    rows = []
    for length in lengths:
        for name in names:
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.layer_memory", f"--child={name}",
                 f"--length={length}", f"--steps={steps}"],
                capture_output=True, text=True, check=False)
            lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
            if out.returncode or not lines:
                raise RuntimeError(f"{name} at {length}: child failed:\n{out.stderr[-2000:]}")
            rows.append(json.loads(lines[-1]))
            print(f"| {name} | {length:,} | {rows[-1]['peak_kib_per_token']:.2f} | "
                  f"{rows[-1]['peak_gib']:.3f} | {rows[-1]['step_s']:.3f} |", flush=True)
    return rows


def ratios(rows):
    """(knob, baseline, length, memory ratio, time ratio) for every pair measured."""
    by = {(r["config"], r["seq_len"]): r for r in rows}
    out = []
    for knob, base in PAIRS:
        for (name, length), r in sorted(by.items(), key=lambda kv: kv[0][1]):
            if name == knob and (base, length) in by:
                b = by[(base, length)]
                out.append((knob, base, length, r["peak_kib_per_token"] / b["peak_kib_per_token"],
                            r["step_s"] / b["step_s"]))
    return out


def main(argv):
    del argv
    if FLAGS.child:
        print(json.dumps(measure(FLAGS.child, FLAGS.length, FLAGS.steps)), flush=True)
        return
    bad = sorted(set(FLAGS.configs) - set(CONFIGS))
    if bad:
        raise app.UsageError(f"--configs: unknown {bad}; known: {list(CONFIGS)}")
    print("| configuration | tokens | peak KiB/token | peak GiB | step s |\n|---|---:|---:|---:|---:|",
          flush=True)
    rows = run([int(l) for l in FLAGS.lengths], FLAGS.configs, FLAGS.steps)
    print("\n| knob | against | tokens | memory ratio | time ratio |\n|---|---|---:|---:|---:|")
    for knob, base, length, mem, speed in ratios(rows):
        print(f"| {knob} | {base} | {length:,} | {mem:.3f} | {speed:.3f} |")
    if FLAGS.output:
        ledger.append(FLAGS.output, rows)


if __name__ == "__main__":
    define_flags()
    app.run(main)
