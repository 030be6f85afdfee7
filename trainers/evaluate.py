"""Loss and bits per char / dim / token (or accuracy) of a trained run on its validation data:
`python -m trainers.evaluate --model_dir=M` (console script `reformer-evaluate`).

--model_dir: a training run's directory; its run.json supplies the task, data (own files are
checked again), tokenizer and sequence length, and its newest checkpoint is evaluated. Explicit
flags override (--split, --checkpoint, --dataset, ...). Without --model_dir, --checkpoint (a
.keras file or model_dir) and the data flags name everything. Prints one JSON line (and writes it
to --output if given).
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from trainers import flags as trainer_flags  # noqa: E402

PROGRAM = "evaluate"
trainer_flags.define_data_flags()
trainer_flags.define_checkpoint_flag()
trainer_flags.define_model_dir_flag()
trainer_flags._define("string", "split", None, "Split to evaluate (default: the run's "
                      "validation data, or the dataset's evaluation split).")
trainer_flags._define("integer", "eval_batches", 20, "Number of batches to evaluate.")
trainer_flags._positive("eval_batches")
trainer_flags._define("string", "output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS
OVERRIDABLE = ("task", "dataset", "data_dir", "seq_len", "batch_size")


def explicit_flags():
    """{name: value} of the data flags given on the command line."""
    return {name: getattr(FLAGS, name) for name in OVERRIDABLE if trainer_flags.given(name)}


def main(argv):
    if len(argv) > 1:
        trainer_flags.fail(PROGRAM, "(positional)", f"unexpected arguments {argv[1:]}")
    run = trainer_flags.run_or_checkpoint(PROGRAM)
    from reformer_keras.datasets.sources import DataError
    from reformer_keras.training import evaluate_checkpoint
    from reformer_keras.training.data_plan import plan_from_run
    try:
        plan, batch_size = None, FLAGS.batch_size
        if run is not None:
            cfg, plan = plan_from_run(run, FLAGS.model_dir, **explicit_flags())
            batch_size = cfg.batch_size
        checkpoint = FLAGS.checkpoint or FLAGS.model_dir
        results = evaluate_checkpoint(checkpoint, FLAGS.dataset, FLAGS.task, FLAGS.split,
                                      FLAGS.seq_len, batch_size, FLAGS.eval_batches,
                                      FLAGS.data_dir, verbose=1, plan=plan)
    except DataError as err:
        trainer_flags.fail(PROGRAM, err.flag, err)
    except ValueError as err:
        trainer_flags.fail(PROGRAM, "model_dir" if run else "checkpoint", err)
    line = json.dumps(results)
    print(line)
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            f.write(line + "\n")


def run():
    """Console-script entry point (`reformer-evaluate`)."""
    app.run(main, flags_parser=trainer_flags.one_line_parser(PROGRAM))


if __name__ == "__main__":
    run()
