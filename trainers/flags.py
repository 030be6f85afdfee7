"""absl flags shared by the trainers, their validators, and a one-line-error flag parser.

Every bad flag is rejected while flags are parsed (before any data is prepared or model built)
with one line on stderr naming the flag, e.g.
  train: error: flag --seq_len=0: must be a positive integer
and exit status 2.
"""
import os
import re
import sys

from absl import flags

# Only pure-Python modules here: flags are validated before TensorFlow is imported.
from reformer_keras.training import model_factory
from reformer_keras.training import registry as pipelines
from reformer_keras.training.strategy import STRATEGIES

FLAGS = flags.FLAGS
TASKS = tuple(pipelines.TASK_MODALITIES)
ATTENTION_TYPES = ("lsh", "local", "full")


def _define(kind, name, *args, **kwargs):
    """Defines a flag unless it already exists (several trainers in one process, tests)."""
    if name not in FLAGS:
        getattr(flags, f"DEFINE_{kind}")(name, *args, **kwargs)


def writable_dir(path):
    """True if `path` is (or can be created as) a writable directory."""
    if not path:
        return False
    path = os.path.abspath(path)
    probe = path
    while not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            return False
        probe = parent
    if not os.path.isdir(probe):
        return False
    return os.access(probe, os.W_OK | os.X_OK)


def _positive(name, allow_none=False):
    flags.register_validator(
        name, lambda v: (allow_none and v is None) or (v is not None and v > 0),
        message="must be positive")


def _check_task_dataset(values):
    try:
        pipelines.get_spec(values["dataset"], values["task"])
    except ValueError as err:
        raise flags.ValidationError(str(err)) from None
    return True


def _check_preset(values):
    if values["preset"]:
        try:
            model_factory.check_preset(values["preset"], values["task"])
        except ValueError as err:
            raise flags.ValidationError(str(err)) from None
    return True


def define_data_flags(default_dataset="shakespeare_plays"):
    """--task, --dataset, --data_dir, --seq_len, --batch_size, --seed (+ validators)."""
    _define("enum", "task", "lm", list(TASKS), "Task: lm (text / duplication), image (pixel "
            "raster LM), music (MIDI events), seq2seq (translation), classifier (image labels).")
    _define("string", "dataset", default_dataset, "Dataset name, one of: " +
            ", ".join(sorted(pipelines.REGISTRY)) + " (configs allowed, e.g. duplication/tiny).")
    _define("string", "data_dir", "data_dir", "TFDS data directory; the offline builders "
            "(shakespeare_plays, bach_chorales, mnist_5k, digits, duplication) are prepared here.")
    _define("integer", "seq_len", 128, "Tokens per training window (text / music / seq2seq); "
            "images and duplication fix their own length.")
    _define("integer", "batch_size", 16, "Global batch size (split across replicas/workers).")
    _define("integer", "seed", 0, "Seed of the data order, model initialisation and sampling.")
    _positive("seq_len")
    _positive("batch_size")
    flags.register_multi_flags_validator(["task", "dataset"], _check_task_dataset)


def define_train_flags():
    """Every flag of trainers/train.py."""
    define_data_flags()
    _define("string", "preset", "", "Model preset (default per task: " + ", ".join(
        f"{t}={p}" for t, p in model_factory.DEFAULT_PRESETS.items()) + ").")
    _define("string", "model_dir", "model_dir", "Output directory: checkpoints/, backup/, "
            "logs/ (TensorBoard), samples/, loss_log.csv, summary.json. An existing run resumes.")
    _define("integer", "steps", 100_000, "Total optimizer steps (stops earlier at --max_minutes).")
    _define("integer", "epochs", None, "Epochs of --steps_per_epoch steps (instead of --steps).")
    _define("integer", "steps_per_epoch", 100, "Steps per epoch = checkpoint/backup interval.")
    _define("float", "learning_rate", 2e-3, "Peak learning rate (Adam, clipnorm 1).")
    _define("enum", "schedule", "rsqrt", ["constant", "cosine", "rsqrt"],
            "Learning-rate schedule after the linear warm-up.")
    _define("integer", "warmup_steps", 100, "Linear warm-up steps of the schedule.")
    _define("enum", "strategy", "auto", list(STRATEGIES), "tf.distribute strategy (auto: "
            "multi_worker if TF_CONFIG lists workers, mirrored on >1 GPU, else one device).")
    _define("bool", "mixed_precision", False, "Train with the mixed_bfloat16 dtype policy.")
    _define("bool", "jit_compile", False, "Compile the train step with XLA.")
    _define("float", "max_minutes", 3.0, "Wall-time budget of the fit in minutes (0: none).")
    _define("integer", "sample_every", 500, "Write samples every N steps (0: only at the end).")
    _define("integer", "sample_tokens", 256, "Tokens / events per text or music sample.")
    _define("integer", "eval_steps", 8, "Validation batches after every epoch (0: none).")
    _define("integer", "verbose", 1, "Keras fit verbosity: 1 progress bar, 2 one line/epoch.")
    _define("bool", "export", True, "At the end, export a TF Serving SavedModel of the LM, image "
            "or music model into model_dir/export/reformer_<task>/<version>/.")
    _define("integer", "num_layers", None, "Override the preset's number of layers.")
    _define("integer", "d_model", None, "Override the preset's model width.")
    _define("integer", "num_heads", None, "Override the preset's attention heads.")
    _define("integer", "d_ff", None, "Override the preset's feed-forward width.")
    _define("list", "attention_types", None, "Override the attention pattern, cycled over "
            "layers, e.g. lsh,local (each lsh, local or full).")
    _define("integer", "num_hashes", None, "Override the LSH hash rounds.")
    _define("integer", "bucket_size", None, "Override the LSH bucket / local chunk size.")
    _define("bool", "reversible", None, "Override reversible residual layers (True/False).")
    _define("float", "dropout", None, "Override the residual dropout rate.")
    # Speed / memory knobs of the reversible stack and LSH attention (every task).
    _define("integer", "stored_top_blocks", None, "Override: the top N reversible blocks keep "
            "their activations and skip the backward recompute (faster; one block's "
            "activations each; 0: every block recomputed).")
    _define("integer", "attn_chunks", None, "Override: LSH attention runs the heads in this "
            "many groups (lower peak memory, slower); must divide the number of heads or be a "
            "multiple of it.")
    _define("integer", "query_chunk_len", None, "Override: LSH attention takes the sorted "
            "queries in pieces of this many positions (memory of very long sequences).")
    _define("bool", "ff_chunked_backward", None, "Override: the feed-forward's backward pass "
            "runs in chunks too (lower peak memory, slower).")
    _define("float", "reserve_cpu_pool_gib", 0.0, "Reserve this many GiB of address space in "
            "TensorFlow's CPU allocator pool before the model is built "
            "(`reformer_keras.runtime.reserve_cpu_pool`): one region instead of many, so long "
            "sequences' tensors pack and the process peaks lower; a little more than the "
            "step's pool peak. 0: the pool grows as TensorFlow's default.")
    for name in ("steps_per_epoch", "learning_rate"):
        _positive(name)
    for name in ("steps", "epochs", "num_layers", "d_model", "num_heads", "d_ff", "num_hashes",
                 "bucket_size", "attn_chunks", "query_chunk_len"):
        _positive(name, allow_none=True)
    flags.register_validator("max_minutes", lambda v: v is None or v >= 0,
                             message="must be >= 0")
    flags.register_validator("sample_every", lambda v: v >= 0, message="must be >= 0")
    for name in ("warmup_steps", "eval_steps"):
        flags.register_validator(name, lambda v: v is not None and v >= 0,
                                 message="must be >= 0")
    _positive("sample_tokens")
    flags.register_validator("stored_top_blocks", lambda v: v is None or v >= 0,
                             message="must be >= 0")
    flags.register_validator("reserve_cpu_pool_gib", lambda v: 0 <= v < 2**20,
                             message="must be a number of GiB >= 0")
    flags.register_validator("model_dir", writable_dir,
                             message="is not a writable directory (or creatable under one)")
    flags.register_validator(
        "attention_types", lambda v: v is None or (v and all(t in ATTENTION_TYPES for t in v)),
        message=f"each entry must be one of {', '.join(ATTENTION_TYPES)}")
    flags.register_multi_flags_validator(["preset", "task"], _check_preset)


def overrides_from_flags():
    return {key: getattr(FLAGS, key) for key in model_factory.OVERRIDE_KEYS}


def one_line_parser(program):
    """An `app.run(flags_parser=...)` that reports flag errors on one line and exits 2."""
    def parse(argv):
        try:
            return FLAGS(argv)
        except flags.Error as err:
            message = " ".join(str(err).split())
            sys.stderr.write(f"{program}: error: {message}\n")
            sys.exit(2)
    return parse


def model_option_error(program, err):
    """Exits with the one-line format for a model option the model's own validation rejected:
    the flag is the first `name` the message quotes that is a flag of this program."""
    message = str(err)
    for name in re.findall(r"`(\w+)`", message):
        if name in FLAGS and FLAGS[name].present:
            fail(program, f"{name}={FLAGS[name].value}", message)
    fail(program, "(model options)", message)


def fail(program, flag, message):
    """Exits with the one-line error format for a check made after parsing."""
    sys.stderr.write(f"{program}: error: flag --{flag}: {' '.join(str(message).split())}\n")
    sys.exit(2)


def define_checkpoint_flag():
    """--checkpoint (required, must exist): a .keras checkpoint or a model_dir."""
    _define("string", "checkpoint", None, "A .keras checkpoint or a model_dir.")
    flags.mark_flag_as_required("checkpoint")
    flags.register_validator("checkpoint", lambda p: p is not None and os.path.exists(p),
                             message="does not exist")
