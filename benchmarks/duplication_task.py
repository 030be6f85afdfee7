"""The Reformer paper's duplication task (Table 2) at CPU scale.

    python -m benchmarks.duplication_task                      # train 4 models, print the table
    python -m benchmarks.duplication_task --train=lsh2         # one row (appends to --output)
    python -m benchmarks.duplication_task --table_only         # the table from --output
    python -m benchmarks.duplication_task --quick              # tiny smoke run (~1 min)
    python -m benchmarks.duplication_task --evaluate_models=a.keras,b.keras --eval_bucket_size=8
                                                               # saved models, no training

Sequences `0 w 0 w` (TFDS `duplication`, |w| = 127 symbols out of 127, length 256; the paper
used length 1024). A one-layer causal Reformer LM (d_model 128, 4 heads, d_ff 256, shared QK,
bucket 32) is trained with full attention and with LSH attention of 1, 2 and 4 hash rounds; the
loss is taken on the second copy only. Each trained model is then evaluated with full
attention and with LSH of 8, 4, 2 and 1 rounds (same weights: LSH and full shared-QK attention
have the same variables), accuracy = exact next-token accuracy on the second copy of w over the
test split. The paper's finding to reproduce: LSH-trained models reach ~100 % with 8 rounds,
accuracy rises with evaluation rounds, and a full-attention-trained model degrades sharply when
evaluated with a single LSH round.

One layer can solve the task only through positions: the query at 128 + i (holding w_i) must
find the key at i + 1 (holding w_{i+1}); shared-QK attention with learned positions can match
the two (period-127 position vectors). LSH finds such pairs only if positions weigh in the hash
from the start: the position table starts at the token embeddings' scale (the backbone's
default `position_init_stddev`); started 4x smaller, LSH training stalled with part of the
positions unlearned (docs/RESULTS.md). Each training setting runs in its own process when
several are asked for, so rows can be produced in parallel (`--threads`). Each JSON line records
its bucket size and d_model; `--table_only` keeps rows of different sizes apart (lines written
before these keys existed are bucket 32, d_model 128). Evaluation rebuilds each model from its
saved config with the evaluation's attention and bucket size (`--eval_bucket_size`, default the
model's own), so a model trained at one bucket size can be scored at another; rows of
`--evaluate_models` (kind 'eval') form a table of their own.
"""

import json
import os
import time
import zipfile

from absl import app, flags

from reformer_keras import runtime

runtime.configure_cpu()  # oneDNN, the BFC CPU allocator: before TensorFlow loads
from benchmarks import ledger  # noqa: E402

FLAGS = flags.FLAGS
SETTINGS = ("full", "lsh1", "lsh2", "lsh4")
EVALS = ("full", "lsh8", "lsh4", "lsh2", "lsh1")


def define_flags():
    """The command-line flags (defined only when run as a program, so importing this module
    in tests or notebooks does not claim global absl flag names)."""
    flags.DEFINE_list("train", list(SETTINGS), f"Training settings, of {SETTINGS}.")
    flags.DEFINE_list("evals", list(EVALS), "Evaluation settings (full or lshN).")
    flags.DEFINE_string("config", "w127_v128", "duplication config (w127_v128, w511_v128, tiny).")
    flags.DEFINE_integer("steps", 2500, "Training steps per setting.")
    flags.DEFINE_integer("batch_size", 16, "Training batch size.")
    flags.DEFINE_float("learning_rate", 1e-3, "Adam peak learning rate (after a linear warm-up "
                       "over 5 % of the steps).")
    flags.DEFINE_enum("schedule", "constant", ["constant", "cosine"],
                      "After warm-up: constant, or cosine decay to 10 %.")
    flags.DEFINE_integer("d_model", 128, "Model width.")
    flags.DEFINE_integer("d_ff", 256, "Feed-forward width.")
    flags.DEFINE_integer("num_heads", 4, "Attention heads.")
    flags.DEFINE_integer("bucket_size", 32, "LSH bucket / chunk size.")
    flags.DEFINE_float("position_init_stddev", None, "Initial scale of the position table (default:"
                       " the backbone's, d_model ** -0.5; 0.02 is the common "
                       "Transformer default).")
    flags.DEFINE_boolean("rotations_per_example", False, "LSH training draws each example its "
                         "own hash rotations (as trax does) instead of one set per batch.")
    flags.DEFINE_integer("eval_bucket_size", 0, "LSH bucket size of the evaluations (0: the "
                         "model's own); the full-attention evaluation has no buckets.")
    flags.DEFINE_list("evaluate_models", [], "Saved models (.keras) to evaluate, no training: "
                      "one row each (kind 'eval') at --eval_bucket_size.")
    flags.DEFINE_integer("eval_examples", 1000, "Test examples scored per evaluation setting.")
    flags.DEFINE_integer("threads", 0, "Intra-op threads per process (0: TensorFlow's default).")
    flags.DEFINE_string("work_dir", "/tmp/duplication_task", "Where trained models (.keras) go.")
    flags.DEFINE_string("data_dir", "data_dir", "TFDS data directory (prepared offline).")
    flags.DEFINE_string("output", "docs/results/duplication.jsonl", "JSON lines: one per setting.")
    flags.DEFINE_boolean("table_only", False, "Only print the table from --output.")
    flags.DEFINE_boolean("quick", False, "Tiny smoke run: config tiny, 60 steps, small model.")
    flags.DEFINE_integer("seed", 0, "Seed of initialisation and data order.")


def _setting(name):
    """'full' -> ('full', None); 'lsh4' -> ('lsh', 4)."""
    if name == "full":
        return "full", None
    if name.startswith("lsh") and name[3:].isdigit() and int(name[3:]) > 0:
        return "lsh", int(name[3:])
    raise ValueError(f"unknown setting {name!r}: use 'full' or 'lshN' (N >= 1)")


def build_model(kind, length, vocab_size, num_hashes=1, d_model=128, d_ff=256, num_heads=4,
                bucket_size=32, seed=0, rotations_per_example=False, position_init_stddev=None):
    """The one-layer shared-QK LM of the task, with `kind` attention ('full' or 'lsh').

    Inputs (B, length - 1) int ids -> logits (B, length - 1, vocab_size). LSH and full models of
    the same sizes have the same variables in the same order (`set_weights` moves between them).
    """
    from reformer_keras.models import ReformerLM  # pylint: disable=import-outside-toplevel
    model = ReformerLM(vocab_size=vocab_size, d_model=d_model, num_layers=1,
                       num_heads=num_heads, d_ff=d_ff, attention_types=(kind,), shared_qk=True,
                       bucket_size=bucket_size, num_hashes=num_hashes, max_len=length, seed=seed,
                       rotations_per_example=rotations_per_example,
                       position_init_stddev=position_init_stddev)
    model.build((None, length - 1))
    return model


def _build(kind, length, vocab, num_hashes=1):
    return build_model(kind, length, vocab, num_hashes, FLAGS.d_model, FLAGS.d_ff,
                       FLAGS.num_heads, FLAGS.bucket_size, FLAGS.seed, FLAGS.rotations_per_example,
                       FLAGS.position_init_stddev)


def _info():
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    import reformer_keras.datasets.builders  # pylint: disable=import-outside-toplevel,unused-import
    cls = tfds.builder_cls("duplication")
    config = {c.name: c for c in cls.BUILDER_CONFIGS}[FLAGS.config]
    return config.length, config.vocab_size


def train_one(setting):
    """Trains one setting; returns (model path, wall seconds, last training loss)."""
    import keras  # pylint: disable=import-outside-toplevel
    from reformer_keras.datasets.pipelines import make_dataset  # pylint: disable=C0415
    kind, num_hashes = _setting(setting)
    length, vocab = _info()
    ds = make_dataset(f"duplication/{FLAGS.config}", "train", batch_size=FLAGS.batch_size,
                      data_dir=FLAGS.data_dir, seed=FLAGS.seed, training=True)
    model = _build(kind, length, vocab, num_hashes or 1)
    warmup = max(1, FLAGS.steps // 20)
    schedule = keras.optimizers.schedules.CosineDecay(  # warm-up, then constant or cosine
        0.0, FLAGS.steps - warmup, alpha=1.0 if FLAGS.schedule == "constant" else 0.1,
        warmup_target=FLAGS.learning_rate, warmup_steps=warmup)
    model.compile(optimizer=keras.optimizers.Adam(schedule, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  weighted_metrics=["sparse_categorical_accuracy"])
    epochs = max(1, FLAGS.steps // 100)
    start = time.time()
    history = model.fit(ds, epochs=epochs, steps_per_epoch=FLAGS.steps // epochs, verbose=2)
    wall = time.time() - start
    os.makedirs(FLAGS.work_dir, exist_ok=True)
    path = os.path.join(FLAGS.work_dir, f"{FLAGS.config}_{setting}.keras")
    model.save(path)
    return path, wall, float(history.history["loss"][-1])


def accuracy(model, num_hashes, batches):
    """Exact next-token accuracy on the weighted (second-copy) positions of `batches`."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    hits = total = 0.0
    for inputs, targets, weights in batches:
        logits = model(inputs, training=False, num_hashes=num_hashes)
        pred = np.argmax(np.asarray(logits), axis=-1)
        w = np.asarray(weights)
        hits += float(((pred == np.asarray(targets)) * w).sum())
        total += float(w.sum())
    return hits / total


def evaluate(path, bucket_size=None):
    """{eval setting: accuracy} of the model saved at `path`.

    Every evaluation model is built anew from the saved model's config, with the evaluation's
    attention kind and LSH bucket size (`bucket_size`, else `--eval_bucket_size`, else the saved
    model's own), and receives its weights: so LSH-trained and full-trained models are
    evaluated the same way.
    """
    import keras  # pylint: disable=import-outside-toplevel
    import reformer_keras.models  # pylint: disable=import-outside-toplevel,unused-import
    from reformer_keras.datasets.pipelines import make_dataset  # pylint: disable=C0415
    trained = keras.saving.load_model(path)
    ds = make_dataset(f"duplication/{FLAGS.config}", "test", batch_size=50,
                      data_dir=FLAGS.data_dir, training=False, repeat=False)
    batches = list(ds.take(max(1, FLAGS.eval_examples // 50)).as_numpy_iterator())
    bucket_size = bucket_size or FLAGS.eval_bucket_size or None
    models = {}
    results = {}
    for name in FLAGS.evals:
        kind, num_hashes = _setting(name)
        if kind not in models:
            models[kind] = rebuild(trained, kind, bucket_size)
        results[name] = round(accuracy(models[kind], num_hashes, batches), 4)
    return results


def rebuild(trained, kind, bucket_size=None):
    """A model of `trained`'s config and weights, with `kind` attention ('full' or 'lsh') and
    LSH bucket size `bucket_size` (None: `trained`'s own)."""
    from reformer_keras.models import ReformerLM  # pylint: disable=import-outside-toplevel
    config = trained.get_config()
    config.update(attention_types=[kind])
    if bucket_size:
        config.update(bucket_size=bucket_size)
    model = ReformerLM.from_config(config)
    model.build((None, config["max_len"] - 1))
    model.set_weights(trained.get_weights())
    return model


def saved_bucket_size(path):
    """The LSH bucket size the model saved at `path` was built (trained) with."""
    with zipfile.ZipFile(path) as z:
        return json.loads(z.read("config.json"))["config"]["bucket_size"]


def eval_row(path):
    """One evaluation-only row: the saved model at `path` at --eval_bucket_size."""
    trained_bucket = saved_bucket_size(path)
    stem = os.path.basename(path)[:-len(".keras")]
    return dict(kind="eval", config=FLAGS.config, model=path,
                train=stem.rsplit("_", 1)[-1], trained_bucket_size=trained_bucket,
                eval_bucket_size=FLAGS.eval_bucket_size or trained_bucket,
                accuracy=evaluate(path))


def print_eval_table(rows):
    """Evaluation-only rows: one table line per (model, evaluation bucket size)."""
    evals = [e for e in EVALS if any(e in r["accuracy"] for r in rows)]
    print("| model | trained with | trained bucket | eval bucket | " + " | ".join(
        f"eval {e.replace('lsh', 'LSH-') if e != 'full' else 'full'}" for e in evals) + " |")
    print("|---|---|---:|---:|" + "---:|" * len(evals))
    for r in rows:
        name = "full attention" if r["train"] == "full" else r["train"].replace("lsh", "LSH-")
        cells = [f"{100 * r['accuracy'][e]:.1f} %" if e in r["accuracy"] else "-"
                 for e in evals]
        print(f"| {r['model']} | {name} | {r['trained_bucket_size']} | "
              f"{r['eval_bucket_size']} | " + " | ".join(cells) + " |", flush=True)


def print_table(rows):
    evals = [e for e in EVALS if any(e in r["accuracy"] for r in rows)]
    evals += sorted({e for r in rows for e in r["accuracy"]} - set(evals))
    print("| trained with | steps | lr schedule | train time | " + " | ".join(
        f"eval {e.replace('lsh', 'LSH-') if e != 'full' else 'full'}" for e in evals) + " |")
    print("|---|---:|---|---:|" + "---:|" * len(evals))
    order = {s: i for i, s in enumerate(SETTINGS)}
    mixed = [n for n in ("bucket_size", "d_model") if len({_size(r, n) for r in rows}) > 1]
    for r in sorted(rows, key=lambda r: (_size(r, "bucket_size"), _size(r, "d_model"),
                                         order.get(r["train"], 99))):
        name = "full attention" if r["train"] == "full" else r["train"].replace("lsh", "LSH-")
        if r.get("seed", 0):
            name += f" (seed {r['seed']})"
        if "bucket_size" in mixed:  # a table of several bucket sizes names each row's
            name += f" (bucket {_size(r, 'bucket_size')})"
        if "d_model" in mixed:
            name += f" (d_model {_size(r, 'd_model')})"
        cells = [f"{100 * r['accuracy'][e]:.1f} %" if e in r["accuracy"] else "-"
                 for e in evals]
        schedule = r.get("schedule", "cosine")  # rows written before --schedule existed
        print(f"| {name} | {r['steps']} | {schedule} | {r['wall_s'] / 60:.1f} min | "
              + " | ".join(cells)
              + " |", flush=True)


# Rows without model sizes in the ledger were run with these.
OLD_ROW_DEFAULTS = {"bucket_size": 32, "d_model": 128}


def _size(row, name):
    return row.get(name, OLD_ROW_DEFAULTS[name])


def read_rows(path, config):
    """The rows of `config` in the JSON lines at `path`; the newest row of a setting wins, where
    a setting is (training attention, steps, schedule, seed, bucket size, d_model): rows of
    different bucket sizes or widths are kept apart."""
    if not os.path.exists(path):
        return []
    rows = {}
    with open(path) as f:
        for line in f:
            row = json.loads(line)
            if row.get("config") == config and row.get("kind") != "eval":
                key = (row["train"], row["steps"], row.get("schedule"), row.get("seed", 0),
                       _size(row, "bucket_size"), _size(row, "d_model"))
                rows[key] = row
    return list(rows.values())


def read_eval_rows(path, config):
    """The evaluation-only rows (kind 'eval') of `config` in the JSON lines at `path`, in file
    order."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r.get("kind") == "eval" and r.get("config") == config]


def _read_rows():
    return read_rows(FLAGS.output, FLAGS.config)


def main(argv):
    del argv
    if FLAGS.quick:  # tiny sizes, except where a flag was given explicitly
        quick = dict(config="tiny", steps=60, d_model=64, d_ff=128, bucket_size=8,
                     eval_examples=64, output=os.path.join(FLAGS.work_dir, "quick.jsonl"))
        for name, value in quick.items():
            if not FLAGS[name].present:
                setattr(FLAGS, name, value)
    try:
        for name in list(FLAGS.train) + list(FLAGS.evals):
            _setting(name)
    except ValueError as e:
        raise app.UsageError(str(e)) from None
    if FLAGS.table_only:
        rows, evals = _read_rows(), read_eval_rows(FLAGS.output, FLAGS.config)
        if rows or not evals:
            print_table(rows)
        if rows and evals:
            print()
        if evals:
            print_eval_table(evals)
        return
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
    if FLAGS.evaluate_models:
        rows = []
        for path in FLAGS.evaluate_models:
            rows.append(eval_row(path))
            print(json.dumps(rows[-1]), flush=True)
            _append(rows[-1])
        print_eval_table(rows)
        return
    for setting in FLAGS.train:
        path, wall, loss = train_one(setting)
        row = dict(config=FLAGS.config, train=setting, steps=FLAGS.steps,
                   schedule=FLAGS.schedule, seed=FLAGS.seed, batch_size=FLAGS.batch_size,
                   bucket_size=FLAGS.bucket_size, d_model=FLAGS.d_model,
                   eval_bucket_size=FLAGS.eval_bucket_size or FLAGS.bucket_size,
                   position_init_stddev=FLAGS.position_init_stddev or FLAGS.d_model**-0.5,
                   rotations_per_example=FLAGS.rotations_per_example,
                   wall_s=round(wall, 1), final_loss=loss,
                   accuracy=evaluate(path), model=path)
        print(json.dumps(row), flush=True)
        _append(row)
    print_table(_read_rows())


def _append(row):
    ledger.append(FLAGS.output, [row])


if __name__ == "__main__":
    define_flags()
    app.run(main)
