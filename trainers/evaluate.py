"""Bits per char / dim / token of a checkpoint on a split:
`python -m trainers.evaluate --checkpoint=model_dir [--dataset=... --task=... --split=test]`.

--checkpoint is a .keras file or a model_dir (its newest checkpoints/ckpt-*.keras). Prints one
JSON line with the loss and the bits metric (and writes it to --output if given).
"""
import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from trainers import flags as trainer_flags  # noqa: E402

PROGRAM = "evaluate"
trainer_flags.define_data_flags()
trainer_flags.define_checkpoint_flag()
trainer_flags._define("string", "split", None, "Split to evaluate (default: the dataset's "
                      "evaluation split, validation or test).")
trainer_flags._define("integer", "eval_batches", 20, "Number of batches to evaluate.")
trainer_flags._define("string", "output", None, "Optional JSON file for the results.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    trainer_flags.check_fixed_length(PROGRAM)
    from reformer_keras.training import evaluate_checkpoint
    results = evaluate_checkpoint(FLAGS.checkpoint, FLAGS.dataset, FLAGS.task, FLAGS.split,
                                  FLAGS.seq_len, FLAGS.batch_size, FLAGS.eval_batches,
                                  FLAGS.data_dir, verbose=1)
    line = json.dumps(results)
    print(line)
    if FLAGS.output:
        with open(FLAGS.output, "w") as f:
            f.write(line + "\n")


def run():
    app.run(main, flags_parser=trainer_flags.one_line_parser(PROGRAM))


if __name__ == "__main__":
    run()
