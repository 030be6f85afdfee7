"""Peak memory of one training step vs depth, reversible on and off (each in a fresh process).

    python -m benchmarks.memory_depth                       # 16K tokens, depth 2 and 12
    python -m benchmarks.memory_depth --seq_len=4096 --depths=2,6,12

Prints one table row per configuration and the ratios the Reformer claims: with reversible
layers, activation memory does not grow with depth (12-layer / 2-layer peak close to 1).
"""

import json

from absl import app, flags

from benchmarks import common, ledger

FLAGS = flags.FLAGS
flags.DEFINE_integer("seq_len", 16384, "Tokens per sequence (batch 1).")
flags.DEFINE_list("depths", ["2", "12"], "Numbers of layers to measure.")
flags.DEFINE_string("attention", "lsh", "Attention type of every layer: lsh, local or full.")
flags.DEFINE_integer("steps", 1, "Timed training steps after one warm-up step.")
flags.DEFINE_boolean("child", False, "Internal: measure one configuration in this process.")
flags.DEFINE_integer("num_layers", 2, "Internal (--child): depth.")
flags.DEFINE_boolean("reversible", True, "Internal (--child): reversible layers.")
flags.DEFINE_string("output", "", "Optional JSON-lines file to append results to.")


def measure_child():
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.config.threading.set_inter_op_parallelism_threads(2)
    model = common.build_lm(FLAGS.seq_len, FLAGS.num_layers, FLAGS.attention, FLAGS.reversible)
    model.build((1, FLAGS.seq_len))
    rss_build = common.current_rss_gib()
    result = common.time_train_steps(model, FLAGS.seq_len, steps=FLAGS.steps)
    result.update(
        seq_len=FLAGS.seq_len, num_layers=FLAGS.num_layers, reversible=FLAGS.reversible,
        attention=FLAGS.attention, params=int(model.count_params()),
        rss_after_build_gib=round(rss_build, 3), peak_rss_gib=round(common.peak_rss_gib(), 3))
    print(json.dumps(result), flush=True)


def main(argv):
    del argv
    if FLAGS.child:
        measure_child()
        return
    rows = []
    print(f"{'layers':>6} {'reversible':>10} {'params':>10} {'step s':>8} {'peak RSS GiB':>12}")
    for depth in (int(d) for d in FLAGS.depths):
        for reversible in (True, False):
            res = common.run_child("benchmarks.memory_depth", [
                "--child", f"--seq_len={FLAGS.seq_len}", f"--num_layers={depth}",
                f"--reversible={reversible}", f"--attention={FLAGS.attention}",
                f"--steps={FLAGS.steps}"])
            res.setdefault("num_layers", depth)
            res.setdefault("reversible", reversible)
            rows.append(res)
            step = min(res["step_times_s"]) if res.get("step_times_s") else float("nan")
            print(f"{depth:>6} {str(reversible):>10} {res.get('params', 0):>10} {step:>8.2f} "
                  f"{res.get('peak_rss_gib', float('nan')):>12.3f} {res.get('error', '')}",
                  flush=True)
            if FLAGS.output:
                ledger.append(FLAGS.output, [res])
    peak = {(r["num_layers"], r["reversible"]): r.get("peak_rss_gib") for r in rows}
    lo, hi = min(int(d) for d in FLAGS.depths), max(int(d) for d in FLAGS.depths)
    for reversible in (True, False):
        a, b = peak.get((hi, reversible)), peak.get((lo, reversible))
        if a and b:
            print(f"reversible={reversible}: peak({hi} layers) / peak({lo} layers) = {a / b:.3f}")


if __name__ == "__main__":
    app.run(main)
