"""LSH vs local vs full attention at equal training steps on real data (paper section 5).

    # the six runs, ~30 min on 2 cores, one suite per command
    flock /tmp/cpu.lock python -m benchmarks.parity --suites=text \
        --data_dir=/tmp/parity/data_dir --work_dir=/tmp/parity/runs --output=/tmp/parity/text.jsonl
    flock /tmp/cpu.lock python -m benchmarks.parity --suites=image \
        --data_dir=/tmp/parity/data_dir --work_dir=/tmp/parity/runs --output=/tmp/parity/image.jsonl
    python -m benchmarks.parity --quick                 # smoke run: 30 steps per model, ~3 min
    python -m benchmarks.parity --table_only --output=/tmp/parity/text.jsonl,/tmp/parity/image.jsonl

    # a variant (other LSH settings) against the full-attention row of an earlier run
    flock /tmp/cpu.lock python -m benchmarks.parity --suites=text --attention_types=lsh \
        --num_buckets=2 --tag=buckets2 --reference=/tmp/parity/text.jsonl \
        --data_dir=/tmp/parity/data_dir --output=/tmp/parity/text_variants.jsonl

Two suites, each a small causal Reformer trained three times with the same seed, data order and
number of optimizer steps, every layer of one attention type (lsh, local or full):

  text   byte-level LM on `shakespeare_plays` (train split), 256-byte windows, batch 8,
         2 layers, d_model 128, 2 heads of 64, d_ff 512, LSH bucket / local chunk 32,
         2 hash rounds, 1200 steps; evaluated in bits per character on the validation split.
  image  pixel LM on `mnist_5k` (`ReformerImageGenerator`, 28x28x1 = 784 tokens, all 256
         intensity levels, no quantisation, axial positions over (28, 28, 1)), batch 8,
         2 layers, d_model 64, 2 heads of 32, d_ff 256, bucket / chunk 64, 2 hash rounds,
         500 steps; evaluated in bits per dim on the test split (500 digits).

Training is `reformer_keras.training.loop.train` with a `TrainConfig` (the trainer's own loop:
Adam with clipnorm 1, linear warm-up then cosine decay, XLA `jit_compile`, no validation during
training, no final sample unless `--final_sample`); every model_dir is deleted first, so a run
never resumes. `--max_minutes` (default 9) is only a safety net: a row that stopped early is
marked in the table.

Evaluation: the first `--eval_batches` batches (0: every full batch) of the evaluation split, built
exactly as `trainers/evaluate.py` builds them (`make_dataset(training=False, repeat=False)`, an
ordered pass), are read once into memory and scored with `model.evaluate` and the library's
`BitsPerToken` metric, so all models see the same batches (their checksum is printed). LSH models
are also evaluated with more hash rounds (`--eval_hashes`, the models' `num_hashes=` call
argument); LSH hashing at inference is deterministic.

Mixed layouts: an attention type joined with "+" names a per-layer layout, the list cycled over
the layers (`ReformerLM(attention_types=[...])`, as in the presets), e.g. `local+lsh` = layers
local, lsh, local, ... This is how the paper's own text models are built: trax's enwik8 Reformer
config alternates TimeBin (local) and LSH causal attention layers, and google/reformer-enwik8 /
HF's crime-and-punishment model use ["local", "lsh", ...]. Such a layout is not LSH in every
layer; any layout with LSH layers trains with the suite's `num_hashes` and is also evaluated
with `--eval_hashes`, like the `lsh` rows:

    python -m benchmarks.parity --suites=text --attention_types=full,local+lsh \
        --data_dir=/tmp/parity/data_dir --output=/tmp/parity/text_mixed.jsonl

Columns: wall time = `train()` (data already prepared; includes model build, XLA compilation
and checkpoint writing; excludes the optional final sample, timed separately); train loss =
mean cross-entropy (nats per token) over the last epoch (`--steps_per_epoch` steps); gap =
(bits - bits_full) / bits_full. Each row is also one JSON line in `--output`.
"""

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import time
from typing import Optional

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from absl import app, flags, logging  # noqa: E402

from benchmarks import ledger  # noqa: E402
from reformer_keras.config import ATTENTION_TYPES  # noqa: E402  (pure Python)

FLAGS = flags.FLAGS


def layer_types(attention):
    """The per-layer attention types of an `--attention_types` name: "lsh" -> ["lsh"];
    "local+lsh" -> ["local", "lsh"] (cycled over the layers); ValueError for unknown parts."""
    types = attention.split("+")
    if not all(t in ATTENTION_TYPES for t in types):
        raise ValueError(f"unknown attention type {attention!r}: use {ATTENTION_TYPES} or "
                         "several joined with '+' (e.g. local+lsh)")
    return types


@dataclasses.dataclass
class Suite:
    """One dataset / task and its model: the trained settings of a parity comparison."""

    name: str
    task: str
    dataset: str
    preset: str
    seq_len: int
    steps: int
    batch_size: int = 8
    num_layers: int = 2
    d_model: int = 128
    num_heads: int = 2
    d_ff: int = 512
    bucket_size: int = 32
    num_hashes: int = 2
    num_buckets: Optional[int] = None      # LSH buckets (None: about seq_len / bucket_size)
    shared_qk: bool = False                # local / full layers share Q and K as LSH does
    rotations_per_example: bool = False    # LSH training hashes each example its own way


SUITES = {
    "text": Suite("text", "lm", "shakespeare_plays", "tiny_text", seq_len=256, steps=1200,
                  d_model=128, num_heads=2, d_ff=512, bucket_size=32),
    "image": Suite("image", "image", "mnist_5k", "tiny_image", seq_len=784, steps=500,
                   d_model=64, num_heads=2, d_ff=256, bucket_size=64),
}
SIZE_KEYS = ("steps", "batch_size", "seq_len", "num_layers", "d_model", "num_heads", "d_ff",
             "bucket_size", "num_hashes", "num_buckets")


def define_flags():
    """The command-line flags (defined only when run as a program, so that importing this module
    in tests does not claim global absl flag names)."""
    flags.DEFINE_list("suites", ["text", "image"], f"Suites to run, of {sorted(SUITES)}.")
    flags.DEFINE_list("attention_types", list(ATTENTION_TYPES),
                      "Attention types to train (every layer that type, or a layout such as "
                      "local+lsh: layers alternate local, lsh); the gap needs full.")
    flags.DEFINE_string("data_dir", "data_dir", "TFDS data directory (offline builders).")
    flags.DEFINE_string("work_dir", "/tmp/parity/runs",
                        "Model dirs go to <work_dir>/<suite>_<attention> (deleted first).")
    flags.DEFINE_string("output", None, "JSON-lines file, one line per table row (appended); "
                        "with --table_only a comma-separated list of such files.")
    flags.DEFINE_string("tag", "", "Variant name: model dirs <suite>_<attention>_<tag>, rows "
                        "labelled (e.g. a run with other LSH settings).")
    flags.DEFINE_string("reference", None, "JSON-lines file whose full-attention rows give the "
                        "gap when this run trains no full model (variant runs).")
    flags.DEFINE_bool("quick", False, "Smoke run: 30 steps, 4 eval batches, eval_hashes=8.")
    flags.DEFINE_bool("table_only", False, "Only print the tables of the rows in --output.")
    flags.DEFINE_integer("seed", 0, "Seed of model init, data order and LSH hashing.")
    for key in SIZE_KEYS:
        flags.DEFINE_integer(key, None, f"Override every suite's {key}.")
    flags.DEFINE_bool("shared_qk", False, "Local and full layers share queries and keys (unit "
                      "keys, no attention to self), as LSH layers always do.")
    flags.DEFINE_bool("rotations_per_example", False, "LSH layers draw each training example "
                      "its own hash rotations (`LSHSelfAttention(rotations_per_example=True)`).")
    flags.DEFINE_integer("eval_batches", 0, "Evaluation batches (0: every full batch).")
    flags.DEFINE_list("eval_hashes", ["4", "8"], "Extra LSH hash rounds at evaluation.")
    flags.DEFINE_integer("steps_per_epoch", 100, "Keras epoch (train loss is its mean).")
    flags.DEFINE_float("learning_rate", 2e-3, "Peak learning rate.")
    flags.DEFINE_string("schedule", "cosine", "constant, cosine or rsqrt.")
    flags.DEFINE_integer("warmup_steps", 100, "Linear warm-up steps.")
    flags.DEFINE_bool("jit_compile", True, "XLA-compile the train step.")
    flags.DEFINE_float("max_minutes", 9.0, "Safety limit per run (parity needs equal steps).")
    flags.DEFINE_bool("final_sample", False, "Let train() write its final sample (slow for "
                      "images; excluded from the wall time either way).")
    flags.DEFINE_integer("verbose", 2, "Keras fit verbosity.")


@contextlib.contextmanager
def _final_sample(record, enabled):
    """`train()` writes one sample at its end (4 images take ~1 min here): skipped unless
    `enabled` (benchmarks/gallery.py samples the trained models); its time goes to `record`."""
    from reformer_keras.training import samples  # pylint: disable=import-outside-toplevel
    original = samples.write_samples

    def timed(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs) if enabled else []
        finally:
            record.append(time.perf_counter() - start)
    samples.write_samples = timed
    try:
        yield
    finally:
        samples.write_samples = original


def model_dir(work_dir, suite, attention, tag=""):
    return os.path.join(work_dir, f"{suite.name}_{attention}" + (f"_{tag}" if tag else ""))


def train_one(suite, attention, work_dir, data_dir, seed=0, steps_per_epoch=100,
              learning_rate=2e-3, schedule="cosine", warmup_steps=100, jit_compile=True,
              max_minutes=9.0, verbose=2, final_sample=False, tag=""):
    """Trains `suite` from scratch with every layer `attention` (or the layers cycling over a
    "+"-joined layout such as "local+lsh"); returns a result dict."""
    from reformer_keras.training.loop import TrainConfig, train  # pylint: disable=import-outside-toplevel
    directory = model_dir(work_dir, suite, attention, tag)
    overrides = dict(num_layers=suite.num_layers, d_model=suite.d_model, num_heads=suite.num_heads,
                     d_ff=suite.d_ff, attention_types=layer_types(attention),
                     bucket_size=suite.bucket_size, num_hashes=suite.num_hashes)
    if suite.num_buckets is not None:  # backbone arguments the factory passes through
        overrides["num_buckets"] = suite.num_buckets
    if suite.shared_qk:
        overrides["shared_qk"] = True
    if suite.rotations_per_example:
        overrides["rotations_per_example"] = True
    shutil.rmtree(directory, ignore_errors=True)
    cfg = TrainConfig(
        task=suite.task, dataset=suite.dataset, preset=suite.preset, data_dir=data_dir,
        model_dir=directory, seq_len=suite.seq_len, batch_size=suite.batch_size,
        steps=suite.steps, steps_per_epoch=min(steps_per_epoch, suite.steps),
        learning_rate=learning_rate, schedule=schedule,
        warmup_steps=min(warmup_steps, max(1, suite.steps // 4)), jit_compile=jit_compile,
        seed=seed, max_minutes=max_minutes, sample_every=0, eval_steps=0, verbose=verbose,
        export=False, overrides=overrides)
    sample_seconds = []
    start = time.perf_counter()
    with _final_sample(sample_seconds, final_sample):
        summary = train(cfg)
    total = time.perf_counter() - start
    return dict(model_dir=directory, steps=summary["step"], stopped_by=summary["stopped_by"],
                wall_seconds=round(total - sum(sample_seconds), 1),
                sample_seconds=round(sum(sample_seconds), 1),
                train_loss=summary["logs"].get("loss"),
                train_bits=summary["logs"].get(summary["metric"]), metric=summary["metric"])


def eval_batches(suite, data_dir, num_batches=0):
    """(inputs, targets) int32 arrays of the first `num_batches` evaluation batches (0: all),
    built as `trainers/evaluate.py` builds them, plus their sha256 checksum."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    from reformer_keras.datasets import pipelines  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.loop import prepare_data  # pylint: disable=import-outside-toplevel
    prepare_data(suite.dataset, data_dir)
    ds = pipelines.make_dataset(suite.dataset, None, task=suite.task, seq_len=suite.seq_len,
                                batch_size=suite.batch_size, data_dir=data_dir, training=False,
                                repeat=False)
    if num_batches:
        ds = ds.take(num_batches)
    pairs = list(ds.as_numpy_iterator())
    if not pairs:
        raise ValueError(f"no evaluation batches for {suite.dataset}")
    x = np.concatenate([p[0] for p in pairs]).astype("int32")
    y = np.concatenate([p[1] for p in pairs]).astype("int32")
    digest = hashlib.sha256(x.tobytes() + y.tobytes()).hexdigest()[:16]
    return x, y, digest


def evaluate_bits(model, info, x, y, batch_size, num_hashes=None):
    """(bits, loss): `model.evaluate` with the library's BitsPerToken metric on (x, y);
    `num_hashes` overrides the LSH hash rounds (the models' call argument)."""
    import keras  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.loop import metric_name  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.metrics import BitsPerToken  # pylint: disable=import-outside-toplevel

    class WithHashes(keras.Model):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def call(self, inputs, training=None):
            return self.inner(inputs, training=training, num_hashes=num_hashes)

    scored = model if num_hashes is None else WithHashes(model)
    name = metric_name(info)
    scored.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   metrics=[BitsPerToken(name=name, per_character=info.byte_level)])
    results = scored.evaluate(x, y, batch_size=batch_size, return_dict=True, verbose=0)
    return float(results[name]), float(results["loss"])


def run_suite(suite, attention_types, work_dir, data_dir, eval_hashes=(), num_eval_batches=0,
              output=None, tag="", reference_rows=(), **train_kwargs):
    """Trains and evaluates every attention type of `suite`; returns the rows (dicts)."""
    from reformer_keras.datasets import pipelines  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.loop import load_checkpoint, prepare_data  # pylint: disable=import-outside-toplevel
    prepare_data(suite.dataset, data_dir)
    info = pipelines.describe(suite.dataset, suite.task, suite.seq_len)
    x, y, digest = eval_batches(suite, data_dir, num_eval_batches)
    print(f"[{suite.name}] eval: {len(x) // suite.batch_size} batches x {suite.batch_size} of "
          f"{x.shape[1]} tokens ({x.size:,} tokens, sha256 {digest})", flush=True)
    rows = []
    for attention in attention_types:
        print(f"[{suite.name}] training {attention} for {suite.steps} steps", flush=True)
        result = train_one(suite, attention, work_dir, data_dir, tag=tag, **train_kwargs)
        model, checkpoint = load_checkpoint(result["model_dir"])
        has_lsh = "lsh" in layer_types(attention)
        hashes = [None] + ([int(h) for h in eval_hashes if int(h) != suite.num_hashes]
                           if has_lsh else [])
        for n in hashes:
            start = time.perf_counter()
            bits, loss = evaluate_bits(model, info, x, y, suite.batch_size, num_hashes=n)
            row = dict(suite=suite.name, dataset=suite.dataset, task=suite.task,
                       attention=attention, variant=tag or None,
                       seed=train_kwargs.get("seed", 0),
                       jit_compile=train_kwargs.get("jit_compile", True),
                       eval_hashes=(n or suite.num_hashes) if has_lsh else None,
                       **{k: v for k, v in result.items() if k != "model_dir"},
                       checkpoint=checkpoint, eval_bits=bits, eval_loss=loss,
                       eval_seconds=round(time.perf_counter() - start, 1),
                       eval_batches=len(x) // suite.batch_size, eval_tokens=int(x.size),
                       eval_sha256=digest, config=dataclasses.asdict(suite))
            print(f"[{suite.name}] {attention}"
                  f"{'' if row['eval_hashes'] is None else ' (%d hashes)' % row['eval_hashes']}: "
                  f"{row['metric']} {bits:.4f}, step {row['steps']}, "
                  f"{row['wall_seconds']} s", flush=True)
            rows.append(row)
    add_gaps(rows, reference_rows)
    if output:
        ledger.append(output, rows)
    return rows


def add_gaps(rows, reference_rows=()):
    """Sets row["gap_pct"] = 100 * (bits - bits_full) / bits_full. The reference is the
    full-attention row without a variant tag of the same suite, evaluation batches and step
    count, from `rows`, else from `reference_rows` (None if neither has one)."""
    def key(r):
        return r["suite"], r["eval_sha256"], r["steps"]
    full = {}
    for source in (rows, reference_rows):
        for r in source:
            if r["attention"] == "full" and not r.get("variant"):
                full.setdefault(key(r), r["eval_bits"])
    for row in rows:
        ref = full.get(key(row))
        row["gap_pct"] = None if ref is None else 100.0 * (row["eval_bits"] - ref) / ref
    return rows


def markdown_table(rows):
    """One markdown table per suite and evaluation set (rows in their order)."""
    out = []
    for name, digest in dict.fromkeys((r["suite"], r["eval_sha256"]) for r in rows):
        group = [r for r in rows if (r["suite"], r["eval_sha256"]) == (name, digest)]
        metric = group[0]["metric"].replace("bits_per_", "bits/")
        cfg = group[0]["config"]
        out.append(f"**{name}** ({group[0]['dataset']}, {cfg['num_layers']} layers, d_model "
                   f"{cfg['d_model']}, {cfg['seq_len']} tokens, batch {cfg['batch_size']}, "
                   f"bucket {cfg['bucket_size']}, {cfg['num_hashes']} hash rounds in training; "
                   f"eval: {group[0]['eval_batches']} batches, {group[0]['eval_tokens']:,} "
                   f"tokens, sha256 {group[0]['eval_sha256']})\n")
        out.append(f"| attention | steps | wall time | train loss | eval {metric} | "
                   "gap vs full |")
        out.append("|---|---:|---:|---:|---:|---:|")
        for r in group:
            label = r["attention"] + ("" if r["eval_hashes"] is None
                                      else f" ({r['eval_hashes']} hashes at eval)")
            if r.get("variant"):
                label += f" [{r['variant']}]"
            steps = f"{r['steps']}" + ("" if r["stopped_by"] in (None, "steps")
                                       else f" ({r['stopped_by']})")
            gap = "-" if r["gap_pct"] is None else f"{r['gap_pct']:+.2f} %"
            loss = "-" if r["train_loss"] is None else f"{r['train_loss']:.4f}"
            out.append(f"| {label} | {steps} | {r['wall_seconds']:.0f} s | {loss} | "
                       f"{r['eval_bits']:.4f} | {gap} |")
        out.append("")
    return "\n".join(out)


def read_rows(paths):
    """Rows of one or more JSON-lines files (comma-separated), gaps recomputed."""
    rows = []
    for path in paths.split(","):
        with open(path) as f:
            rows += [json.loads(line) for line in f if line.strip()]
    return add_gaps(rows)


def suites_from_flags():
    chosen = []
    for name in FLAGS.suites:
        if name not in SUITES:
            raise app.UsageError(f"--suites: unknown suite {name!r}; known: {sorted(SUITES)}")
        suite = dataclasses.replace(SUITES[name])
        if FLAGS.quick:
            suite.steps = 30
        for key in SIZE_KEYS:
            if getattr(FLAGS, key) is not None:
                if key == "seq_len" and suite.task == "image":
                    continue  # images fix their own length
                setattr(suite, key, getattr(FLAGS, key))
        suite.shared_qk = FLAGS.shared_qk
        suite.rotations_per_example = FLAGS.rotations_per_example
        chosen.append(suite)
    return chosen


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # tfds' per-dataset INFO lines
    if FLAGS.table_only:
        if not FLAGS.output:
            raise app.UsageError("--table_only needs --output")
        print(markdown_table(read_rows(FLAGS.output)))
        return
    from reformer_keras import runtime  # pylint: disable=import-outside-toplevel
    runtime.configure_cpu()  # before TensorFlow loads
    for attention in FLAGS.attention_types:
        try:
            layer_types(attention)
        except ValueError as e:
            raise app.UsageError(f"--attention_types: {e}") from None
    print("command: " + " ".join(["python -m benchmarks.parity"] + sys.argv[1:]), flush=True)
    rows = []
    for suite in suites_from_flags():
        rows += run_suite(
            suite, FLAGS.attention_types, FLAGS.work_dir, FLAGS.data_dir,
            eval_hashes=["8"] if FLAGS.quick else FLAGS.eval_hashes,
            num_eval_batches=4 if FLAGS.quick and not FLAGS.eval_batches else FLAGS.eval_batches,
            output=FLAGS.output, tag=FLAGS.tag,
            reference_rows=read_rows(FLAGS.reference) if FLAGS.reference else (),
            seed=FLAGS.seed, steps_per_epoch=FLAGS.steps_per_epoch,
            learning_rate=FLAGS.learning_rate, schedule=FLAGS.schedule,
            warmup_steps=10 if FLAGS.quick else FLAGS.warmup_steps,
            jit_compile=FLAGS.jit_compile, max_minutes=FLAGS.max_minutes,
            verbose=FLAGS.verbose, final_sample=FLAGS.final_sample)
        print("\n" + markdown_table(rows), flush=True)
    trained = [r for r in rows if r["eval_hashes"] in (None, r["config"]["num_hashes"])]
    total = sum(r["wall_seconds"] for r in trained)
    print(f"total training wall time: {total:.0f} s ({total / 60:.1f} min)")


if __name__ == "__main__":
    define_flags()
    app.run(main)
