"""The sample gallery: trains its models, writes pictures / MIDI / text and judged figures.

    python -m benchmarks.gallery                       # everything, ~90 min on 2 cores
    python -m benchmarks.gallery --only=digits         # one part (digits, mnist, music, text)
    python -m benchmarks.gallery --quick --out_dir=/tmp/gallery_quick --doc=  # smoke run

Parts (files into --out_dir, default docs/results; models into --work_dir):
  digits  class-conditional `ReformerImageGenerator` on `digits` (8x8, 17 grey levels):
          digits_samples.png (one row per class), digits_real.png (real test images)
  mnist   the same on `mnist_5k`, downsampled 2x (14x14) with 4 grey levels:
          mnist_digits.png, mnist_real.png
          both judged by `ImageJudge` (logistic regression fitted on the transformed real
          training split; its accuracy on the real test split is reported)
  music   `ReformerMusicGenerator` on `bach_chorales`: bach_chorale.mid/.png and the bigram
          baseline's bach_bigram.mid/.png; measures against the held-out chorales
  text    byte-level `ReformerLM` on `shakespeare_plays` (preset tiny_text at d_model 128):
          shakespeare_sample.txt, validation bits per character
Each part appends one JSON line (date, commit, machine, command, figures) to --ledger, and
--doc (docs/gallery.md) is rewritten from the newest ledger line of every part.
"""

import dataclasses
import json
import os
import platform
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
PARTS = ("digits", "mnist", "music", "text")


def define_flags():
    flags.DEFINE_list("only", list(PARTS), f"Parts to run, of {PARTS}.")
    flags.DEFINE_string("out_dir", "docs/results", "Where pictures, .mid and text go.")
    flags.DEFINE_string("ledger", "docs/results/gallery.jsonl", "JSON-lines ledger to append to.")
    flags.DEFINE_string("doc", "docs/gallery.md", "Markdown page rewritten from the ledger "
                        "('' to skip).")
    flags.DEFINE_string("work_dir", "/tmp/gallery", "Where the trained models go.")
    flags.DEFINE_string("data_dir", "data_dir", "TFDS data directory (bach_chorales, "
                        "shakespeare_plays).")
    flags.DEFINE_bool("reuse", False, "Load the models of --work_dir instead of training.")
    flags.DEFINE_float("digits_minutes", 10.0, "Training time limit of the digits model.")
    flags.DEFINE_integer("digits_steps", 1500, "Training steps of the digits model.")
    flags.DEFINE_float("mnist_minutes", 30.0, "Training time limit of the mnist_5k model.")
    flags.DEFINE_integer("mnist_steps", 1500, "Training steps of the mnist_5k model.")
    flags.DEFINE_float("music_minutes", 60.0, "Training time limit of the music model.")
    flags.DEFINE_bool("music_resume", False, "Continue the music run in --work_dir/music up "
                      "to --music_steps (after a time limit stopped it).")
    flags.DEFINE_integer("music_steps", 600, "Training steps of the music model.")
    flags.DEFINE_float("text_minutes", 30.0, "Training time limit of the text model.")
    flags.DEFINE_float("image_temperature", None, "Sampling temperature of the image parts "
                       "(default: each model's, gallery_images.IMAGE_RUNS).")
    flags.DEFINE_integer("samples_per_class", 50, "Judged image samples per class.")
    flags.DEFINE_integer("music_samples", 32, "Music samples (model and bigram) measured.")
    flags.DEFINE_integer("seed", 0, "Training and sampling seed.")
    flags.DEFINE_bool("quick", False, "Smoke run: a few steps per part, few samples.")


def fail(message):
    """Usage error: one line on stderr, exit status 2."""
    sys.stderr.write(f"gallery: error: {' '.join(str(message).split())}\n")
    sys.exit(2)


def parse_flags(argv):
    try:
        return FLAGS(argv)
    except flags.Error as err:
        return fail(err)


def check_flags():
    bad = [p for p in FLAGS.only if p not in PARTS]
    if bad or not FLAGS.only:
        fail(f"--only must list parts of {PARTS}, got {FLAGS.only}")
    if FLAGS.image_temperature is not None and FLAGS.image_temperature <= 0:
        fail(f"--image_temperature must be positive, got "
                             f"{FLAGS.image_temperature}")
    for name in ("digits_minutes", "mnist_minutes", "music_minutes", "text_minutes"):
        if getattr(FLAGS, name) <= 0:
            fail(f"--{name} must be positive, got {getattr(FLAGS, name)}")
    for name in ("digits_steps", "mnist_steps", "music_steps", "samples_per_class",
                 "music_samples"):
        if getattr(FLAGS, name) < 1:
            fail(f"--{name} must be >= 1, got {getattr(FLAGS, name)}")


def context():
    """Date, commit, machine, CPU load and the command of this run (ledger columns)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
        commit += "+dirty" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f
                         if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return dict(date=time.strftime("%Y-%m-%d", time.gmtime()), commit=commit,
                machine=f"{model}, {os.cpu_count()} cores",
                command="python -m benchmarks.gallery " + " ".join(sys.argv[1:]))


def run_image(part, record):
    from benchmarks import gallery_images as gi  # pylint: disable=import-outside-toplevel
    from reformer_keras import media  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    dataset = "digits" if part == "digits" else "mnist_5k"
    run = gi.IMAGE_RUNS[dataset]
    if FLAGS.image_temperature is not None:
        run = dataclasses.replace(run, temperature=FLAGS.image_temperature)
    judge, judge_accuracy = gi.fit_judge(run, seed=FLAGS.seed)
    record.update(dataset=dataset, levels=run.levels, downsample=run.factor,
                  image_shape=list(judge.image_shape), judge="logistic regression",
                  judge_test_accuracy=round(judge_accuracy, 4),
                  model=dict(d_model=run.d_model, num_layers=run.num_layers,
                             num_heads=run.num_heads, d_ff=run.d_ff, attention=run.attention,
                             dropout=run.dropout, batch_size=run.batch_size,
                             learning_rate=run.learning_rate))
    path = os.path.join(FLAGS.work_dir, f"{dataset}.keras")
    if FLAGS.reuse:
        from reformer_keras.training.loop import load_checkpoint  # pylint: disable=import-outside-toplevel
        model, _ = load_checkpoint(path)
        training = gi.training_record(path)
        if training:
            record.update(training=dict(training, reused_model=True))
    else:
        minutes = getattr(FLAGS, f"{part}_minutes")
        steps = 20 if FLAGS.quick else getattr(FLAGS, f"{part}_steps")
        load, cpu = os.getloadavg()[0], time.process_time()
        model, training = gi.train_model(run, path, max_minutes=minutes, steps=steps,
                                         seed=FLAGS.seed)
        training.update(max_minutes=minutes, cpu_seconds=round(time.process_time() - cpu, 1),
                        load_average_start=round(load, 1),
                        load_average_end=round(os.getloadavg()[0], 1))
        gi.save_training_record(path, training)
        record.update(training=training)
    per_class = 2 if FLAGS.quick else FLAGS.samples_per_class
    images, judged = gi.judge_model(model, run, judge, per_class=per_class, seed=FLAGS.seed)
    record.update(judged)
    class_ids = np.repeat(np.arange(10), per_class)
    scale = 4 if run.factor * judge.image_shape[0] <= 8 else 3
    grid = os.path.join(FLAGS.out_dir, "digits_samples.png" if part == "digits"
                        else "mnist_digits.png")
    media.write_png_grid(gi.grid_rows(images, class_ids, 10), grid,
                         cols=min(10, per_class), scale=scale)
    real, labels = gi.load_split(dataset, "test")
    real = gi.transform_images(real, run.levels, run.factor)
    real_grid = os.path.join(FLAGS.out_dir, f"{part}_real.png")
    media.write_png_grid(gi.grid_rows(real, labels, 10), real_grid, cols=10, scale=scale)
    record.update(files=[grid, real_grid])


def run_music(record):
    from benchmarks import gallery_music as gm  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.loop import load_checkpoint  # pylint: disable=import-outside-toplevel
    model_dir = os.path.join(FLAGS.work_dir, "music")
    dataset = "bach_chorales/tiny" if FLAGS.quick else "bach_chorales"
    if not FLAGS.reuse:
        load, cpu = os.getloadavg()[0], time.process_time()
        training = gm.train_music(model_dir, FLAGS.data_dir, 20 if FLAGS.quick else
                                  FLAGS.music_steps, FLAGS.music_minutes, seed=FLAGS.seed,
                                  quick=FLAGS.quick, resume=FLAGS.music_resume)
        record.update(training=dict(training, max_minutes=FLAGS.music_minutes,
                                    cpu_seconds=round(time.process_time() - cpu, 1),
                                    load_average_start=round(load, 1),
                                    load_average_end=round(os.getloadavg()[0], 1)))
    model, _ = load_checkpoint(model_dir)
    events = 63 if FLAGS.quick else 511
    record.update(dataset="bach_chorales", **gm.compare(
        model, FLAGS.data_dir, FLAGS.out_dir, count=2 if FLAGS.quick else FLAGS.music_samples,
        events=events, seed=FLAGS.seed, dataset=dataset))


def run_text(record):
    from benchmarks import gallery_text as gt  # pylint: disable=import-outside-toplevel
    load, cpu = os.getloadavg()[0], time.process_time()
    record.update(gt.run(os.path.join(FLAGS.work_dir, "text"), FLAGS.data_dir,
                         os.path.join(FLAGS.out_dir, "shakespeare_sample.txt"),
                         FLAGS.text_minutes, seed=FLAGS.seed, quick=FLAGS.quick,
                         reuse=FLAGS.reuse))
    record.setdefault("training", {}).update(load_average_start=round(load, 1),
                                             cpu_seconds_with_eval=round(
                                                 time.process_time() - cpu, 1),
                                             load_average_end=round(os.getloadavg()[0], 1))


def main(argv):
    if len(argv) > 1:
        fail(f"unexpected arguments {argv[1:]}")
    check_flags()
    from reformer_keras import runtime  # pylint: disable=import-outside-toplevel
    runtime.configure_cpu()  # before TensorFlow loads
    from benchmarks import gallery_report  # pylint: disable=import-outside-toplevel
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    base = context()
    for part in [p for p in PARTS if p in FLAGS.only]:
        record = dict(base, part=part, quick=FLAGS.quick)
        start = time.perf_counter()
        if part in ("digits", "mnist"):
            run_image(part, record)
        elif part == "music":
            run_music(record)
        else:
            run_text(record)
        record["wall_seconds"] = round(time.perf_counter() - start, 1)
        gallery_report.append(FLAGS.ledger, record)
        print(json.dumps(record), flush=True)
    if FLAGS.doc:
        gallery_report.write_markdown(FLAGS.ledger, FLAGS.doc)
        print(f"wrote {FLAGS.doc}", flush=True)


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=parse_flags)
