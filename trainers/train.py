"""Train a Reformer: `python -m trainers.train [flags]` (console script `reformer-train`).

With no flags it runs the README main job: a tiny byte-level text Reformer (preset tiny_text,
sequences of 128 bytes, batch 16) on `shakespeare_plays`, prepared offline into ./data_dir, for
at most 3 minutes (--max_minutes), printing Keras progress bars with bits per character, then
writes a text sample to ./model_dir/samples/final.txt. Run it again to continue training.

Outputs (see reformer_keras.training.loop): model_dir/checkpoints/ckpt-<epoch>.keras,
backup/ (resume after a kill: rerun with the same flags), logs/ (TensorBoard), samples/,
loss_log.csv, summary.json. `--helpfull` documents every flag.
"""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402

from trainers import flags as trainer_flags  # noqa: E402

PROGRAM = "train"
trainer_flags.define_train_flags()
FLAGS = trainer_flags.FLAGS


def config_from_flags():
    from reformer_keras.training import TrainConfig
    return TrainConfig(
        task=FLAGS.task, dataset=FLAGS.dataset, preset=FLAGS.preset, data_dir=FLAGS.data_dir,
        model_dir=FLAGS.model_dir, seq_len=FLAGS.seq_len, batch_size=FLAGS.batch_size,
        steps=FLAGS.steps, epochs=FLAGS.epochs, steps_per_epoch=FLAGS.steps_per_epoch,
        learning_rate=FLAGS.learning_rate, schedule=FLAGS.schedule,
        warmup_steps=FLAGS.warmup_steps, strategy=FLAGS.strategy,
        mixed_precision=FLAGS.mixed_precision, jit_compile=FLAGS.jit_compile, seed=FLAGS.seed,
        max_minutes=FLAGS.max_minutes or None, sample_every=FLAGS.sample_every,
        sample_tokens=FLAGS.sample_tokens, eval_steps=FLAGS.eval_steps, verbose=FLAGS.verbose,
        export=FLAGS.export,
        overrides=trainer_flags.overrides_from_flags())


def main(argv):
    if len(argv) > 1:
        trainer_flags.fail(PROGRAM, "(positional)", f"unexpected arguments {argv[1:]}")
    from reformer_keras.training import get_strategy, train
    cfg = config_from_flags()
    try:
        strategy = get_strategy(cfg.strategy)  # before any other TensorFlow work
    except ValueError as err:
        trainer_flags.fail(PROGRAM, f"strategy={cfg.strategy}", err)
    trainer_flags.check_fixed_length(PROGRAM)
    if FLAGS.reserve_cpu_pool_gib:
        from reformer_keras import runtime
        try:
            runtime.reserve_cpu_pool(FLAGS.reserve_cpu_pool_gib)
        except MemoryError as err:
            trainer_flags.fail(PROGRAM, f"reserve_cpu_pool_gib={FLAGS.reserve_cpu_pool_gib}", err)
    summary = train(cfg, strategy=strategy)
    logs = summary["logs"]
    metric = summary["metric"]
    print(f"done: step {summary['step']}/{summary['total_steps']} in "
          f"{summary['wall_seconds']} s (stopped by {summary['stopped_by'] or 'epochs'}); "
          f"loss {logs.get('loss', float('nan')):.4f}, {metric} "
          f"{logs.get(metric, float('nan')):.4f}, val_{metric} "
          f"{logs.get('val_' + metric, float('nan')):.4f}; samples: "
          f"{', '.join(summary['samples']) or '-'}")


def run():
    """Console-script entry point (`reformer-train`)."""
    app.run(main, flags_parser=trainer_flags.one_line_parser(PROGRAM))


if __name__ == "__main__":
    run()
