"""Write samples from a checkpoint: `python -m trainers.sample --checkpoint=model_dir`.

Text: .txt; image: PNG grid; music: .mid + piano-roll PNG; seq2seq: a translation .txt. Files go
to --output_dir (default <model_dir>/samples or next to the .keras file) as <tag>.*.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from trainers import flags as trainer_flags  # noqa: E402

PROGRAM = "sample"
trainer_flags.define_data_flags()
trainer_flags.define_checkpoint_flag()
trainer_flags._define("string", "output_dir", None, "Where to write the samples.")
trainer_flags._define("string", "tag", "sample", "File stem of the samples.")
trainer_flags._define("integer", "sample_tokens", 256, "Tokens / events to sample.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    trainer_flags.check_fixed_length(PROGRAM)
    from reformer_keras.training import sample_checkpoint
    out_dir = FLAGS.output_dir or (os.path.join(FLAGS.checkpoint, "samples")
                                   if os.path.isdir(FLAGS.checkpoint)
                                   else os.path.dirname(os.path.abspath(FLAGS.checkpoint)))
    paths = sample_checkpoint(FLAGS.checkpoint, FLAGS.dataset, FLAGS.task, out_dir,
                              seq_len=FLAGS.seq_len, seed=FLAGS.seed,
                              num_tokens=FLAGS.sample_tokens, tag=FLAGS.tag)
    print("wrote: " + ", ".join(paths))


def run():
    app.run(main, flags_parser=trainer_flags.one_line_parser(PROGRAM))


if __name__ == "__main__":
    run()
