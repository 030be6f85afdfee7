"""Train a Reformer: `python -m trainers.train [flags]` (console script `reformer-train`).

With no flags it runs the README main job: a tiny byte-level text Reformer (preset tiny_text,
sequences of 128 bytes, batch 16) on `shakespeare_plays`, prepared offline into ./data_dir, for
at most 3 minutes (--max_minutes), printing Keras progress bars with bits per character, then
writes a text sample to ./model_dir/samples/final.txt. Run it again to continue training.

Your own data: `--train_files=GLOB` (text .txt / .jsonl / .csv, MIDI files, or a folder with a
sub-folder per class of images or text) or any TFDS catalog name (`--dataset=NAME`); see
docs/own_data.md. Data flags are checked (every file read once) before a model is built.

Outputs (see reformer_keras.training.loop): model_dir/run.json (the run's description: evaluate,
sample and export need only --model_dir), checkpoints/ckpt-<epoch>.keras (the newest
--keep_checkpoints), backup/ (resume after a kill: rerun with the same flags), logs/
(TensorBoard), samples/, loss_log.csv, summary.json. `--helpfull` documents every flag.
"""
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app  # noqa: E402

from trainers import flags as trainer_flags  # noqa: E402

PROGRAM = "train"
trainer_flags.define_train_flags()
trainer_flags.define_source_flags()
trainer_flags.define_run_flags()
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
        export=FLAGS.export, overrides=trainer_flags.overrides_from_flags(),
        train_split=FLAGS.train_split, validation_split=FLAGS.validation_split,
        init_from=FLAGS.init_from, keep_checkpoints=FLAGS.keep_checkpoints)


def scan_data():
    """Checks own files / a TFDS catalog name (pure Python); None for a registry dataset."""
    from reformer_keras.datasets import catalog, sources
    from reformer_keras.datasets import registry
    if FLAGS.train_files:
        if trainer_flags.given("dataset"):
            raise sources.DataError("dataset", "give either --dataset or --train_files")
        source = sources.from_flags(
            FLAGS.task, FLAGS.train_files, FLAGS.validation_files, FLAGS.validation_fraction,
            FLAGS.text_key, FLAGS.label_key, FLAGS.decode_errors, FLAGS.image_size,
            FLAGS.color_mode)
        return sources.scan(source, FLAGS.task)
    for name in ("validation_files", "label_key"):
        if trainer_flags.given(name):
            raise sources.DataError(name, "needs --train_files")
    try:
        registry.get_spec(FLAGS.dataset, FLAGS.task)
        if not any(trainer_flags.given(n) for n in ("text_feature", "image_feature",
                                                    "label_feature", "image_size")):
            return None
    except ValueError:
        pass
    return catalog.tfds_source(FLAGS.task, FLAGS.dataset, FLAGS.data_dir, FLAGS.text_feature,
                               FLAGS.image_feature, FLAGS.label_feature, FLAGS.train_split,
                               FLAGS.validation_split, FLAGS.image_size, FLAGS.num_classes)


def num_classes_for(scan):
    """Class conditioning of task image: --num_classes, else the class folders (>= 2)."""
    from reformer_keras.datasets.sources import DataError
    if FLAGS.task != "image":
        return None
    found = len(scan.source.class_names) if scan is not None else 0
    if FLAGS.num_classes == 0 or (FLAGS.num_classes is None and found < 2):
        return None
    wanted = FLAGS.num_classes or found
    if scan is None or not scan.source.labelled:
        raise DataError("num_classes", "class-conditional training needs labels: class "
                                       "folders (--train_files) or a TFDS --label_feature")
    if wanted != found:
        raise DataError("num_classes", f"is {wanted}, the data has {found} classes")
    return wanted


def make_plan(cfg, scan):
    """The run's data plan and tokenizer (SentencePiece / chars are trained here)."""
    from reformer_keras.training.run_tokenizer import build_tokenizer
    from reformer_keras.training import data_plan
    num_classes = num_classes_for(scan)
    text = (scan.source.modality == "text") if scan is not None else (
        data_plan.pipelines.get_spec(cfg.dataset, cfg.task).modality in ("text", "translation"))
    texts = None
    if text and FLAGS.tokenizer != "bytes":
        texts = training_texts(cfg, scan)
    vocab = FLAGS.vocab_size or (2000 if FLAGS.tokenizer == "sentencepiece" else None)
    try:
        tokenizer = build_tokenizer(FLAGS.tokenizer, texts, vocab) if text else None
    except ValueError as err:
        trainer_flags.fail(PROGRAM, "vocab_size" if FLAGS.vocab_size else "tokenizer", err)
    if scan is None:
        return data_plan.RegistryPlan(cfg, tokenizer)
    plan = data_plan.SourcePlan(scan, cfg, tokenizer, num_classes)
    plan.check()
    return plan


def training_texts(cfg, scan, limit=20_000):
    """The training text the chars / SentencePiece tokenizer is built from (<= limit docs)."""
    import itertools
    from reformer_keras.datasets import own_files
    if scan is not None and scan.source.kind == "files":
        return [t for t, _ in itertools.islice(own_files.iter_texts(scan, "train"), limit)]
    from reformer_keras.training.data_plan import RegistryPlan
    if scan is None:
        RegistryPlan(cfg).prepare()
        from reformer_keras.datasets import pipelines
        spec = pipelines.get_spec(cfg.dataset)
        ds = pipelines.load_examples(cfg.dataset, cfg.train_split or spec.splits[0],
                                     cfg.data_dir)
        key = spec.keys[0]
    else:
        from reformer_keras.datasets import files
        ds, key = files.examples(scan, "train"), "text"
    return [ex[key].numpy().decode("utf-8", "replace") for ex in ds.take(limit)]


def _cause(message):
    """The line of a TensorFlow op error that says what happened (not the op's traceback)."""
    noise = ("Graph execution error", "Detected at node", "[[", "The error could be",
             "Additional GRPC", ":UNKNOWN")
    lines = [l.strip() for l in message.splitlines()
             if l.strip() and not l[0].isspace() and not l.startswith(noise)]
    return lines[0] if lines else message.strip().splitlines()[0]


def main(argv):
    if len(argv) > 1:
        trainer_flags.fail(PROGRAM, "(positional)", f"unexpected arguments {argv[1:]}")
    from reformer_keras.datasets.sources import DataError
    from reformer_keras.memory_planner import MemoryBudgetError
    try:
        scan = scan_data()  # every file read once, before TensorFlow is imported
    except DataError as err:
        trainer_flags.fail(PROGRAM, f"dataset={FLAGS.dataset}" if err.flag == "dataset"
                           else err.flag, err)
    from reformer_keras.training.nan_guard import NonFiniteError
    from reformer_keras.training.run_lock import RunLock, RunLockedError
    cfg = config_from_flags()
    for path, reason in scan.skipped if scan is not None else ():
        print(f"skipped: {path}: {reason}", flush=True)
    if scan is not None and scan.skipped:
        print(f"skipped {len(scan.skipped)} unusable file(s) (listed above and in run.json)",
              flush=True)
    from reformer_keras import runtime
    runtime.apply_graph_settings()  # TensorFlow is imported from here on
    from reformer_keras.training import get_strategy, train
    from reformer_keras.training.loop import InitFromError
    try:
        strategy = get_strategy(cfg.strategy)  # before any other TensorFlow work
    except ValueError as err:
        trainer_flags.fail(PROGRAM, f"strategy={cfg.strategy}", err)
    if scan is None:
        trainer_flags.check_fixed_length(PROGRAM)
    from reformer_keras.training.strategy import is_chief, is_multi_worker
    from tensorflow import errors as tf_errors
    if is_chief(strategy) and os.path.exists(os.path.join(cfg.model_dir, ".lock")):
        try:  # fail before data work; train() holds the lock (the chief's) for the whole run
            RunLock(cfg.model_dir).acquire().release()
        except RunLockedError as err:
            trainer_flags.fail(PROGRAM, f"model_dir={FLAGS.model_dir}", err)
    if FLAGS.reserve_cpu_pool_gib:
        from reformer_keras import runtime
        try:
            runtime.reserve_cpu_pool(FLAGS.reserve_cpu_pool_gib)
        except MemoryError as err:
            trainer_flags.fail(PROGRAM, f"reserve_cpu_pool_gib={FLAGS.reserve_cpu_pool_gib}", err)
    try:
        plan = make_plan(cfg, scan)
    except DataError as err:
        trainer_flags.fail(PROGRAM, err.flag, err)
    try:
        summary = train(cfg, strategy=strategy, plan=plan)
    except RunLockedError as err:
        trainer_flags.fail(PROGRAM, f"model_dir={FLAGS.model_dir}", err)
    except InitFromError as err:
        trainer_flags.fail(PROGRAM, f"init_from={cfg.init_from}", err)
    except MemoryBudgetError as err:
        trainer_flags.fail(PROGRAM, f"memory_budget_gib={FLAGS.memory_budget_gib}", err)
    except tf_errors.OpError as err:
        if not is_multi_worker(strategy):
            raise
        from reformer_keras.training.callbacks import backup_step
        step = backup_step(os.path.join(cfg.model_dir, "backup"))
        sys.stderr.write(f"{PROGRAM}: error: the cluster failed ({type(err).__name__}: "
                         f"{_cause(err.message)}); restart every worker with the same "
                         f"flags to resume from the last backup (step {step})\n")
        sys.exit(1)
    except NonFiniteError as err:
        sys.stderr.write(f"{PROGRAM}: error: stopped at the first {err}; checkpoints, backup, "
                         "samples and exports keep the last good state (summary.json); rerun "
                         "to resume from it, e.g. with a lower --learning_rate\n")
        sys.exit(1)
    logs = summary["logs"]
    metric = summary["metric"]
    print(f"done: step {summary['step']}/{summary['total_steps']} in "
          f"{summary['wall_seconds']} s (stopped by {summary['stopped_by'] or 'epochs'}); "
          f"loss {logs.get('loss', float('nan')):.4f}, {metric} "
          f"{logs.get(metric, float('nan')):.4f}, val_{metric} "
          f"{logs.get('val_' + metric, float('nan')):.4f}; samples: "
          f"{', '.join(summary['samples']) or '-'}")
    closing = what_to_expect(cfg, summary)
    if closing:
        print(closing, flush=True)


# Measured by `python -m benchmarks.gallery --only=text` (docs/gallery.md), 2026-12-06.
GALLERY_TEXT = ("30 minutes of --d_model=128 --d_ff=512 --seq_len=256 on a 2-core AMD EPYC "
                "shared with other jobs (438 steps) reach 2.77 bits/char on the validation "
                "split: Shakespeare's line layout and many real words, little sense "
                "(docs/gallery.md).")


def what_to_expect(cfg, summary):
    """The closing lines of a run: the start of the text sample and what a longer run gives."""
    text_samples = [p for p in summary["samples"] if p.endswith(".txt")]
    if cfg.task != "lm" or summary["metric"] != "bits_per_char" or not text_samples:
        return None
    with open(text_samples[-1], encoding="utf-8", errors="replace") as f:
        excerpt = f.read(300)
    return (f"sample ({text_samples[-1]}, first 300 characters):\n{excerpt}\n"
            f"what to expect: bits per character fall from 8 (uniform bytes); {GALLERY_TEXT}")


def run():
    """Console-script entry point (`reformer-train`)."""
    app.run(main, flags_parser=trainer_flags.one_line_parser(PROGRAM))


if __name__ == "__main__":
    run()
