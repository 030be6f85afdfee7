"""The first training step (tracing included) with the task's state built first, against Keras's
deferred building, each in a fresh process.

    python -m benchmarks.first_step                       # 1K tokens, depth 2 and 12
    python -m benchmarks.first_step --seq_len=16384 --depths=12 --repeats=2

`library`: the task models build their weights and optimizer slots before Keras traces the step
(`reformer_keras/models/train_state.py`). `keras_deferred`: that is switched off, so Keras creates
them inside the traced step and TensorFlow traces it twice. Prints, per configuration, the number
of traces, the first and second step times and the process's peak RSS.
"""

import json

from absl import app, flags

from benchmarks import common, ledger

FLAGS = flags.FLAGS
flags.DEFINE_integer("seq_len", 1024, "Tokens per sequence (batch 1).")
flags.DEFINE_list("depths", ["2", "12"], "Numbers of layers (reversible LSH peer model).")
flags.DEFINE_list("variants", ["library", "keras_deferred"], "What to compare (see above).")
flags.DEFINE_integer("repeats", 1, "Fresh processes per configuration.")
flags.DEFINE_string("output", "", "Optional JSON-lines file to append results to.")
flags.DEFINE_boolean("child", False, "Internal: measure one configuration in this process.")
flags.DEFINE_integer("c_layers", 2, "Internal (--child).")
flags.DEFINE_string("c_variant", "library", "Internal (--child).")


def measure_child():
    import time  # pylint: disable=import-outside-toplevel

    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    from reformer_keras.models.train_state import TrainStateMixin  # pylint: disable=C0415
    tf.config.threading.set_inter_op_parallelism_threads(2)
    if FLAGS.c_variant == "keras_deferred":
        TrainStateMixin.build_train_state = lambda self, optimizer=True: None
    model = common.build_lm(FLAGS.seq_len, FLAGS.c_layers)
    model.compile(optimizer=keras.optimizers.Adam(1e-4),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    traces, train_step = [], model.train_step
    model.train_step = lambda data: traces.append(1) or train_step(data)
    data = np.random.default_rng(0).integers(0, 256, (1, FLAGS.seq_len + 1), dtype="int32")
    times = []
    for _ in range(2):
        start = time.perf_counter()
        model.train_on_batch(data[:, :-1], data[:, 1:])
        times.append(round(time.perf_counter() - start, 2))
    print(json.dumps(dict(variant=FLAGS.c_variant, seq_len=FLAGS.seq_len,
                          num_layers=FLAGS.c_layers, traces=len(traces), first_step_s=times[0],
                          second_step_s=times[1], peak_rss_gib=round(common.peak_rss_gib(), 3))),
          flush=True)


def main(argv):
    del argv
    if FLAGS.child:
        measure_child()
        return
    print(f"{'variant':>15} {'layers':>6} {'traces':>6} {'first step s':>12} "
          f"{'second step s':>13} {'peak RSS GiB':>12}")
    for depth in (int(d) for d in FLAGS.depths):
        for _ in range(FLAGS.repeats):
            for variant in FLAGS.variants:
                res = common.run_child("benchmarks.first_step", [
                    "--child", f"--c_layers={depth}", f"--c_variant={variant}",
                    f"--seq_len={FLAGS.seq_len}"])
                if res.get("status") == "failed":
                    print(f"{variant:>15} {depth:>6} failed: {res.get('error')}")
                    continue
                print(f"{variant:>15} {depth:>6} {res['traces']:>6} {res['first_step_s']:>12} "
                      f"{res['second_step_s']:>13} {res['peak_rss_gib']:>12}", flush=True)
                if FLAGS.output:
                    ledger.append(FLAGS.output, [res])


if __name__ == "__main__":
    app.run(main)
