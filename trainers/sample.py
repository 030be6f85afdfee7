"""Samples from a trained run: `python -m trainers.sample --model_dir=M [--prompt="To be"]`
(console script `reformer-sample`).

--model_dir: a training run's directory; its run.json supplies the task and tokenizer, and its
newest checkpoint samples (--checkpoint overrides). Text: --prompt continued by
--max_new_tokens tokens, --num_samples of them in <output_dir>/<tag>.txt; images: a PNG grid of
--num_samples images (--class_label for a class-conditional model); music: --prompt_midi
continued, <tag>-<i>.mid + piano-roll PNG. --temperature (0: greedy), --top_k, --top_p, --seed.
Files go to --output_dir (default <model_dir>/samples). Without --model_dir, --checkpoint and
the data flags name the run (byte-level text).
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from trainers import flags as trainer_flags  # noqa: E402

PROGRAM = "sample"
trainer_flags.define_data_flags()
trainer_flags.define_checkpoint_flag()
trainer_flags.define_model_dir_flag()
_define = trainer_flags._define
_define("string", "output_dir", None, "Where to write the samples (default: "
        "<model_dir>/samples, or next to the .keras file).")
_define("string", "tag", "sample", "File stem of the samples.")
_define("string", "prompt", "", "Text to continue (text models).")
_define("integer", "max_new_tokens", 256, "Tokens / events to sample after the prompt "
        "(clamped to the model's max_len).")
_define("float", "temperature", 1.0, "Sampling temperature (0: greedy).")
_define("integer", "top_k", None, "Sample among the k most likely tokens.")
_define("float", "top_p", None, "Nucleus sampling: the smallest set with probability >= p.")
_define("integer", "num_samples", 1, "Number of samples (images: of the grid).")
_define("integer", "class_label", None, "Images of a class-conditional model: the class "
        "index (default: classes in turn).")
_define("string", "prompt_midi", None, "Music: a .mid file to continue.")
trainer_flags._positive("max_new_tokens")
trainer_flags._positive("num_samples")
trainer_flags._positive("top_k", allow_none=True)
flags.register_validator("temperature", lambda v: v >= 0, message="must be >= 0")
flags.register_validator("top_p", lambda v: v is None or 0 < v <= 1, message="must be in (0, 1]")
flags.register_validator("prompt_midi", lambda p: p is None or os.path.isfile(p),
                         message="is not a file")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        trainer_flags.fail(PROGRAM, "(positional)", f"unexpected arguments {argv[1:]}")
    run = trainer_flags.run_or_checkpoint(PROGRAM)
    checkpoint = FLAGS.checkpoint or FLAGS.model_dir
    out_dir = FLAGS.output_dir or (os.path.join(checkpoint, "samples") if os.path.isdir(
        checkpoint) else os.path.dirname(os.path.abspath(checkpoint)))
    from reformer_keras.datasets import pipelines
    from reformer_keras.training import load_checkpoint
    from reformer_keras.training.samples import write_prompted_samples
    try:
        tokenizer = None
        if run is not None:
            from reformer_keras.training.run_tokenizer import load_tokenizer
            tokenizer = load_tokenizer(run.get("tokenizer"), FLAGS.model_dir)
            task = FLAGS.task if trainer_flags.given("task") else run["task"]
            data = run["data"]
            if data["kind"] == "registry":
                info = pipelines.describe(data["dataset"], task, run["training"]["seq_len"],
                                          tokenizer)
            else:
                info = _Info(task, data["source"]["modality"])
        else:
            info = pipelines.describe(FLAGS.dataset, FLAGS.task, FLAGS.seq_len)
        model, _ = load_checkpoint(checkpoint)
        paths = write_prompted_samples(
            model, info, out_dir, FLAGS.tag, tokenizer=tokenizer, prompt=FLAGS.prompt,
            max_new_tokens=FLAGS.max_new_tokens, temperature=FLAGS.temperature,
            top_k=FLAGS.top_k, top_p=FLAGS.top_p, num_samples=FLAGS.num_samples,
            seed=FLAGS.seed, class_label=FLAGS.class_label, prompt_midi=FLAGS.prompt_midi)
    except ValueError as err:
        trainer_flags.fail(PROGRAM, None, err)
    print("wrote: " + ", ".join(paths))


class _Info:  # the part of pipelines.DataInfo that sampling reads (own-data runs)
    def __init__(self, task, modality):
        self.task = task
        self.spec = type("Spec", (), {"modality": modality})


def run():
    """Console-script entry point (`reformer-sample`)."""
    app.run(main, flags_parser=trainer_flags.one_line_parser(PROGRAM))


if __name__ == "__main__":
    run()
