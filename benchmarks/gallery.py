"""Sample gallery of the parity models plus a small Bach chorale model, into docs/results/.

    # after benchmarks.parity has trained into /tmp/parity/runs; ~8 min on 2 cores
    flock /tmp/cpu.lock python -m benchmarks.gallery --parity_dir=/tmp/parity/runs \
        --data_dir=/tmp/parity/data_dir --out_dir=docs/results
    python -m benchmarks.gallery --quick --out_dir=/tmp/parity/gallery_quick   # smoke run

Writes (each well under 200 KB):
  mnist_digits.png        16 digits sampled (cached generation, temperature 1, no top-k) from
                          the parity image model (`--image_attention`, default lsh): 4x4 grid,
                          3x upscaled.
  shakespeare_sample.txt  4 byte-level samples of 255 bytes (the model's whole 256-token
                          context) from the parity text model (`--text_attention`), temperature
                          0.8.
  bach_chorale.mid/.png   a chorale sampled from a `ReformerMusicGenerator` trained here with
                          `reformer_keras.training.loop.train` on `bach_chorales` (preset
                          tiny_music at d_model 128: 2 layers local/LSH, 512 MIDI events,
                          batch 8, `--music_steps` steps), 511 events at temperature 1, and its
                          piano roll (`reformer_keras.media.write_piano_roll_png`).
"""

import json
import os
import shutil
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_string("parity_dir", "/tmp/parity/runs", "benchmarks.parity's --work_dir.")
    flags.DEFINE_string("image_attention", "lsh", "Which parity image model to sample: the "
                        "<parity_dir>/image_<attention>[_<tag>] model dir suffix.")
    flags.DEFINE_string("text_attention", "lsh", "Which parity text model to sample (as above).")
    flags.DEFINE_string("out_dir", "docs/results", "Where the gallery files go.")
    flags.DEFINE_string("data_dir", "data_dir", "TFDS data directory (bach_chorales).")
    flags.DEFINE_string("music_dir", "/tmp/parity/runs/music", "Model dir of the music model.")
    flags.DEFINE_integer("music_steps", 600, "Training steps of the music model.")
    flags.DEFINE_bool("train_music", True, "Train the music model (False: reuse music_dir).")
    flags.DEFINE_list("only", ["digits", "text", "music"], "Parts to write.")
    flags.DEFINE_integer("seed", 0, "Sampling (and music training) seed.")
    flags.DEFINE_bool("quick", False, "Smoke run: tiny music model on bach_chorales/tiny, 20 "
                      "steps, fewer samples.")


def write_digits(model, path, num=16, seed=0):
    start = time.perf_counter()
    model.save_image_grid(path, num=num, seed=seed, scale=3)
    return dict(file=path, images=num, seconds=round(time.perf_counter() - start, 1))


def write_text(model, path, header, num=4, seed=0, temperature=0.8):
    import numpy as np  # pylint: disable=import-outside-toplevel
    from reformer_keras.tokenizers import ByteTokenizer  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.samples import sample_ids  # pylint: disable=import-outside-toplevel
    tokenizer = ByteTokenizer()
    start = time.perf_counter()
    ids = sample_ids(model, np.full((num, 1), tokenizer.eos_id), model.max_len - 1,
                     temperature=temperature, seed=seed)
    parts = [header]
    for i, row in enumerate(ids):
        text = tokenizer.detokenize(row[1:]).numpy().decode("utf-8", "replace")
        parts.append(f"----- sample {i + 1} (seed {seed}, row {i}) -----\n{text}\n")
    with open(path, "w") as f:
        f.write("\n".join(parts))
    return dict(file=path, samples=num, bytes_each=int(ids.shape[1] - 1),
                temperature=temperature, seconds=round(time.perf_counter() - start, 1))


def train_music(music_dir, data_dir, steps, seed=0, quick=False):
    from reformer_keras.training.loop import TrainConfig, train  # pylint: disable=import-outside-toplevel
    shutil.rmtree(music_dir, ignore_errors=True)
    overrides = (dict(d_model=16, num_layers=2, d_ff=32, bucket_size=8) if quick else
                 dict(d_model=128, num_layers=2, num_heads=2, d_ff=512, bucket_size=32,
                      num_hashes=2))
    cfg = TrainConfig(task="music", dataset="bach_chorales/tiny" if quick else "bach_chorales",
                      preset="tiny_music",
                      data_dir=data_dir, model_dir=music_dir, seq_len=64 if quick else 512,
                      batch_size=8, steps=steps, steps_per_epoch=min(100, steps),
                      learning_rate=2e-3, schedule="cosine",
                      warmup_steps=min(100, max(1, steps // 4)), jit_compile=not quick,
                      seed=seed, max_minutes=10.0, sample_every=0, eval_steps=0 if quick else 8,
                      verbose=2, export=False, overrides=overrides)
    start = time.perf_counter()
    summary = train(cfg)
    logs = summary["logs"]
    return dict(steps=summary["step"], stopped_by=summary["stopped_by"],
                wall_seconds=round(time.perf_counter() - start, 1),
                train_loss=logs.get("loss"), train_bits_per_token=logs.get("bits_per_token"),
                val_bits_per_token=logs.get("val_bits_per_token"), overrides=overrides)


def main(argv):
    del argv
    from reformer_keras import runtime  # pylint: disable=import-outside-toplevel
    runtime.configure_cpu()  # before TensorFlow loads
    from reformer_keras.training.loop import load_checkpoint  # pylint: disable=import-outside-toplevel
    os.makedirs(FLAGS.out_dir, exist_ok=True)
    report = {}
    if "digits" in FLAGS.only:
        model, ckpt = load_checkpoint(os.path.join(FLAGS.parity_dir,
                                                   f"image_{FLAGS.image_attention}"))
        report["digits"] = dict(checkpoint=ckpt, **write_digits(
            model, os.path.join(FLAGS.out_dir, "mnist_digits.png"),
            num=4 if FLAGS.quick else 16, seed=FLAGS.seed))
        print(json.dumps(report["digits"]), flush=True)
    if "text" in FLAGS.only:
        model, ckpt = load_checkpoint(os.path.join(FLAGS.parity_dir,
                                                   f"text_{FLAGS.text_attention}"))
        header = (f"# Byte-level samples of the benchmarks.parity text model "
                  f"({FLAGS.text_attention} attention, {os.path.basename(ckpt)}: "
                  f"{model.backbone.num_layers} layers, d_model {model.backbone.d_model}, "
                  f"trained on shakespeare_plays), each started from the eos token,\n"
                  f"# sampled with reformer_keras.training.samples.sample_ids (cached "
                  f"generation), temperature 0.8. Written by benchmarks/gallery.py.\n")
        report["text"] = dict(checkpoint=ckpt, **write_text(
            model, os.path.join(FLAGS.out_dir, "shakespeare_sample.txt"), header,
            num=2 if FLAGS.quick else 4, seed=FLAGS.seed))
        print(json.dumps(report["text"]), flush=True)
    if "music" in FLAGS.only:
        if FLAGS.train_music:
            report["music_training"] = train_music(FLAGS.music_dir, FLAGS.data_dir,
                                                   20 if FLAGS.quick else FLAGS.music_steps,
                                                   seed=FLAGS.seed, quick=FLAGS.quick)
            print(json.dumps(report["music_training"]), flush=True)
        model, ckpt = load_checkpoint(FLAGS.music_dir)
        start = time.perf_counter()
        out = model.sample_midi(os.path.join(FLAGS.out_dir, "bach_chorale.mid"),
                                model.max_len - 1, seed=FLAGS.seed)
        import pretty_midi  # pylint: disable=import-outside-toplevel
        pm = pretty_midi.PrettyMIDI(out["midi_path"])
        report["music"] = dict(checkpoint=ckpt, midi=out["midi_path"],
                               piano_roll=out["piano_roll_path"], events=int(len(out["ids"])),
                               notes=sum(len(i.notes) for i in pm.instruments),
                               seconds_of_music=round(pm.get_end_time(), 1),
                               seconds=round(time.perf_counter() - start, 1))
        print(json.dumps(report["music"]), flush=True)
    for path in sorted(os.listdir(FLAGS.out_dir)):
        full = os.path.join(FLAGS.out_dir, path)
        print(f"{full}: {os.path.getsize(full):,} bytes")


if __name__ == "__main__":
    define_flags()
    app.run(main)
