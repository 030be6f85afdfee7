"""Which tensors are alive at the peak of one training step: a per-tensor memory account.

    python -m benchmarks.step_memory                          # 1 memory-mode layer, 16K tokens
    python -m benchmarks.step_memory --length=65536 --layers=6 --timeline=20

Builds the peer LM (`benchmarks.common.build_lm`, memory mode by default: `attn_chunks=8`,
chunked feed-forward backward), runs one training step to trace it, then one more under the
TensorFlow profiler, and replays the profiler's raw `MemoryAllocation` / `MemoryDeallocation`
events of TensorFlow's (BFC) allocator: every allocation carries the op that made it, its shape
and its chunk size. Printed: the tensors alive at the moment the allocator's use was highest,
grouped by op (chunk size and requested size per token, when in the step it was allocated), the
total against `tf.config.experimental.get_memory_info`'s peak, and optionally the highest use in
each of `--timeline` equal slices of the step (where the phases peak).

Op names are those of the traced graph: a buffer an elementwise op reused in place keeps the name
of the op that allocated it (y1 may show as the attention's output einsum), and names inside the
reversible stack's functions have no layer prefix. Allocations made before the profiled step
(weights, optimizer slots) are not in the account.
"""

import collections
import glob
import json
import os
import tempfile

from absl import app, flags

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_integer("length", 16384, "Tokens (batch 1).")
    flags.DEFINE_integer("layers", 1, "Reversible LSH layers.")
    flags.DEFINE_string("overrides", '{"attn_chunks": 8, "ff_chunked_backward": true}',
                        "JSON dict of ReformerLM overrides.")
    flags.DEFINE_integer("top", 25, "Rows of the alive-at-peak table.")
    flags.DEFINE_integer("timeline", 0, "Also print the peak of each of N slices of the step.")


def _events(logdir):
    """Allocator events of the profile in logdir: [(time ps, is_alloc, stats dict)], sorted."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # pylint: disable=import-outside-toplevel
    space = xplane_pb2.XSpace()
    with open(glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)[0], "rb") as f:
        space.ParseFromString(f.read())
    plane = next(p for p in space.planes if p.name == "/host:CPU")
    names = {k: v.name for k, v in plane.event_metadata.items()}
    stat_names = {k: v.name for k, v in plane.stat_metadata.items()}
    events = []
    for line in plane.lines:
        for e in line.events:
            kind = names.get(e.metadata_id)
            if kind not in ("MemoryAllocation", "MemoryDeallocation"):
                continue
            stats = {}
            for s in e.stats:
                which = s.WhichOneof("value")
                value = getattr(s, which) if which else None
                stats[stat_names[s.metadata_id]] = (stat_names.get(value, value)
                                                    if which == "ref_value" else value)
            events.append((line.timestamp_ns * 1000 + e.offset_ps, kind == "MemoryAllocation",
                           stats))
    events.sort(key=lambda ev: ev[0])
    return events


def account(events, slices=0):
    """Replays allocator events. Returns (alive at the highest use: {addr: row}, highest use in
    bytes, [highest use per slice]); a row is (chunk bytes, requested bytes, op, shape, time as a
    fraction of the step)."""
    start, span = events[0][0], max(events[-1][0] - events[0][0], 1)
    live, use, top, at_top = {}, 0, 0, {}
    per_slice = [0] * slices
    for t, is_alloc, s in events:
        addr, size = s.get("addr"), int(s.get("allocation_bytes") or 0)
        if is_alloc:
            live[addr] = (size, int(s.get("requested_bytes") or 0), s.get("tf_op", "?"),
                          s.get("shape", ""), (t - start) / span)
            use += size
            if use > top:
                top, at_top = use, dict(live)
        elif addr in live:
            use -= live.pop(addr)[0]
        if slices:
            k = min(slices - 1, int((t - start) / span * slices))
            per_slice[k] = max(per_slice[k], use)
    return at_top, top, per_slice


def table(alive, tokens, top=25):
    """Rows grouped by (op, shape), largest first: (KiB/token chunk, KiB/token requested, count,
    first allocation time, op, shape)."""
    groups = collections.defaultdict(lambda: [0, 0, 0, 1.0])
    for size, requested, op, shape, when in alive.values():
        g = groups[(op, shape)]
        g[0] += size
        g[1] += requested
        g[2] += 1
        g[3] = min(g[3], when)
    rows = sorted(((v[0] / 1024 / tokens, v[1] / 1024 / tokens, v[2], v[3]) + k
                   for k, v in groups.items()), reverse=True)
    return rows[:top]


def profile_step(length, layers, overrides, slices=0):
    """Traces one training step, profiles the next. Returns dict(alive, top, per_slice,
    held_before, tf_peak): bytes; held_before = what the allocator held before the profiled
    step (weights, optimizer slots, anything else the process keeps)."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from reformer_keras import runtime  # pylint: disable=import-outside-toplevel
    runtime.configure_cpu()
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from benchmarks import common  # pylint: disable=import-outside-toplevel
    model = common.build_lm(length, layers, "lsh", True, **overrides)
    model.build((1, length))
    common.time_train_steps(model, length, steps=0, warmup=1)       # compiles and traces
    data = np.random.default_rng(1).integers(0, 256, size=(1, length + 1), dtype="int32")
    logdir = tempfile.mkdtemp(prefix="step_memory_")
    tf.config.experimental.reset_memory_stats("CPU:0")
    held = tf.config.experimental.get_memory_info("CPU:0")["current"]  # weights, slots, ...
    tf.profiler.experimental.start(
        logdir, options=tf.profiler.experimental.ProfilerOptions(host_tracer_level=2))
    model.train_on_batch(data[:, :-1], data[:, 1:])
    tf.profiler.experimental.stop()
    alive, top, per_slice = account(_events(logdir), slices)
    return dict(alive=alive, top=top, per_slice=per_slice, held_before=held,
                tf_peak=tf.config.experimental.get_memory_info("CPU:0")["peak"])


def main(argv):
    del argv
    overrides = json.loads(FLAGS.overrides)
    result = profile_step(FLAGS.length, FLAGS.layers, overrides, FLAGS.timeline)
    n = FLAGS.length
    print(f"{FLAGS.layers} layer(s), {n:,} tokens, {overrides}")
    print(f"alive at the highest use: {result['top'] / 2**20:,.1f} MiB = "
          f"{result['top'] / 1024 / n:.2f} KiB/token (TensorFlow's allocator peak of the step: "
          f"{result['tf_peak'] / 1024 / n:.2f} KiB/token, of which "
          f"{result['held_before'] / 1024 / n:.2f} held before it: weights, slots)\n")
    print("| KiB/token (chunk) | requested | count | allocated at | op | shape |")
    print("|---:|---:|---:|---:|---|---|")
    for chunk, requested, count, when, op, shape in table(result["alive"], n, FLAGS.top):
        print(f"| {chunk:.2f} | {requested:.2f} | {count} | {when:.2f} | {op} | {shape} |")
    if FLAGS.timeline:
        print("\n| slice of the step | highest use KiB/token |\n|---:|---:|")
        for k, use in enumerate(result["per_slice"]):
            print(f"| {k / FLAGS.timeline:.2f} | {use / 1024 / n:.2f} |")


if __name__ == "__main__":
    define_flags()
    app.run(main)
