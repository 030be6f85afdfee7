"""absl flags shared by the trainers, their validators, and a one-line-error flag parser.

Every bad flag is rejected while flags are parsed (before any data is prepared or model built)
with one line on stderr naming the flag, e.g.
  train: error: flag --seq_len=0: must be a positive integer
and exit status 2.

The model flags are generated from the fields of `reformer_keras.config.ReformerConfig`: one
flag per field, named as the field, its help the field's documentation, its check the field's
check (same message), default "the preset's value". A seq2seq run takes the fields it has
(num_layers and attention_types set both stacks).
"""
import dataclasses
import os
import sys

from absl import flags

# Only pure-Python modules here: flags are validated before TensorFlow is imported.
from reformer_keras.config import ReformerConfig
from reformer_keras.datasets import registry
from reformer_keras.training import model_factory
from reformer_keras.training.strategy import STRATEGIES

FLAGS = flags.FLAGS
TASKS = tuple(registry.TASK_MODALITIES)
_DEFINE = {"int": "integer", "float": "float", "bool": "bool", "strs": "list", "ints": "list",
           "buckets": "list"}


def _define(kind, name, *args, **kwargs):
    """Defines a flag unless it already exists (several trainers in one process, tests)."""
    if name not in FLAGS:
        getattr(flags, f"DEFINE_{kind}")(name, *args, **kwargs)
        return True
    return False


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
    if "train_files" in FLAGS and FLAGS["train_files"].value:  # own files: --dataset unused
        return True
    try:
        registry.get_spec(values["dataset"], values["task"])
    except ValueError as err:
        if not str(err).startswith("unknown dataset"):  # other names: the TFDS catalog
            raise flags.ValidationError(str(err)) from None
    return True


def model_fields():
    """The `ReformerConfig` fields the trainers expose as flags."""
    return [f for f in dataclasses.fields(ReformerConfig) if f.metadata["flag"]]


def _flag_value(field, value):
    """A model flag's parsed value -> the config value (lists of numbers become tuples)."""
    if value is None or field.metadata["kind"] not in ("ints", "buckets"):
        return tuple(value) if isinstance(value, list) else value
    try:
        numbers = tuple(int(v) for v in value)
    except ValueError:
        raise flags.ValidationError(f"`{field.name}` must be a list of integers, got "
                                    f"{','.join(value)!r}") from None
    return numbers[0] if field.metadata["kind"] == "buckets" and len(numbers) == 1 else numbers


def _field_validator(field):
    def check(value):
        value = _flag_value(field, value)
        if value is not None:
            try:
                field.metadata["check"](field.name, value)
            except ValueError as err:
                raise flags.ValidationError(str(err)) from None
        return True
    return check


def _check_model(values):
    """The preset fits the task and the model flags fit the preset (the config's own checks;
    run again after all flags are parsed, so the model flags' final values are checked)."""
    preset = values["preset"] or model_factory.DEFAULT_PRESETS[values["task"]]
    options = {}
    for field in model_fields():
        try:
            _field_validator(field)(FLAGS[field.name].value)
        except flags.ValidationError:
            return True  # the field's own validator reports it
        options[field.name] = _flag_value(field, FLAGS[field.name].value)
    try:
        model_factory.configure(values["task"], preset, options)
    except ValueError as err:
        raise flags.ValidationError(str(err)) from None
    return True


def define_model_flags():
    """One flag per `ReformerConfig` field (`model_fields()`), validated by the field's check;
    --preset; and a validator of the whole configuration (preset + options)."""
    _define("string", "preset", "", "Model preset (default per task: " + ", ".join(
        f"{t}={p}" for t, p in model_factory.DEFAULT_PRESETS.items()) + ").")
    for field in model_fields():
        _define(_DEFINE[field.metadata["kind"]], field.name, None,
                f"{field.metadata['help']} Default: the preset's.")
        flags.register_validator(field.name, _field_validator(field))
    flags.register_multi_flags_validator(["preset", "task"], _check_model)


def define_data_flags(default_dataset="shakespeare_plays"):
    """--task, --dataset, --data_dir, --seq_len, --batch_size, --seed (+ validators)."""
    _define("enum", "task", "lm", list(TASKS), "Task: lm (text / duplication), image (pixel "
            "raster LM), music (MIDI events), seq2seq (translation), classifier (image labels).")
    _define("string", "dataset", default_dataset, "Dataset name, one of: " +
            ", ".join(sorted(registry.DATASETS)) + " (configs allowed, e.g. duplication/tiny)"
            ", or any TFDS catalog name[:version] (see --text_feature / --image_feature / "
            "--label_feature). Ignored with --train_files.")
    _define("string", "data_dir", "data_dir", "TFDS data directory; the offline builders "
            "(shakespeare_plays, bach_chorales, mnist_5k, digits, duplication) are prepared here.")
    _define("integer", "seq_len", 128, "Tokens per training window (text / music / seq2seq); "
            "image and duplication datasets fix their own length (giving another --seq_len "
            "for them is an error). The model's position table is sized to it: an axial table "
            "whose product differs is replaced by learned positions (with a warning).")
    _define("integer", "batch_size", 16, "Global batch size (split across replicas/workers).")
    _define("integer", "seed", 0, "Seed of the data order, model initialisation and sampling.")
    _positive("seq_len")
    _positive("batch_size")
    flags.register_multi_flags_validator(["task", "dataset"], _check_task_dataset)


def define_train_flags():
    """Every flag of trainers/train.py."""
    define_data_flags()
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
    define_model_flags()
    _define("float", "reserve_cpu_pool_gib", 0.0, "Reserve this many GiB of address space in "
            "TensorFlow's CPU allocator pool before the model is built "
            "(`reformer_keras.runtime.reserve_cpu_pool`): one region instead of many, so long "
            "sequences' tensors pack and the process peaks lower; a little more than the "
            "step's pool peak. 0: the pool grows as TensorFlow's default.")
    for name in ("steps_per_epoch", "learning_rate"):
        _positive(name)
    for name in ("steps", "epochs"):
        _positive(name, allow_none=True)
    flags.register_validator("max_minutes", lambda v: v is None or v >= 0,
                             message="must be >= 0")
    flags.register_validator("sample_every", lambda v: v >= 0, message="must be >= 0")
    for name in ("warmup_steps", "eval_steps"):
        flags.register_validator(name, lambda v: v is not None and v >= 0,
                                 message="must be >= 0")
    _positive("sample_tokens")
    flags.register_validator("reserve_cpu_pool_gib", lambda v: 0 <= v < 2**20,
                             message="must be a number of GiB >= 0")
    flags.register_multi_flags_validator(
        ["memory_budget_gib", "reserve_cpu_pool_gib"],
        lambda v: v["memory_budget_gib"] is None or not v["reserve_cpu_pool_gib"],
        message="--memory_budget_gib chooses the pool reservation: drop --reserve_cpu_pool_gib")
    flags.register_validator("model_dir", writable_dir,
                             message="is not a writable directory (or creatable under one)")


def overrides_from_flags():
    """{field: value} of the model flags given on the command line."""
    return {f.name: _flag_value(f, getattr(FLAGS, f.name)) for f in model_fields()
            if getattr(FLAGS, f.name) is not None}


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


def fail(program, flag, message):
    """Exits with the one-line error format for a check made after parsing (flag None: the
    message alone)."""
    where = f"flag --{flag}: " if flag else ""
    sys.stderr.write(f"{program}: error: {where}{' '.join(str(message).split())}\n")
    sys.exit(2)


def check_fixed_length(program):
    """Exits (status 2) when --seq_len was given for a dataset that fixes its own length
    (images: H*W*C, duplication: its config's); imports the pipelines (TensorFlow)."""
    from reformer_keras.datasets import pipelines  # pylint: disable=import-outside-toplevel
    info = pipelines.describe(FLAGS.dataset, FLAGS.task, FLAGS.seq_len)
    if FLAGS["seq_len"].present and info.seq_len != FLAGS.seq_len:
        fail(program, f"seq_len={FLAGS.seq_len}", f"dataset {FLAGS.dataset} fixes the length "
             f"to {info.seq_len}; leave --seq_len out")


def define_checkpoint_flag():
    """--checkpoint (must exist): a .keras checkpoint or a model_dir."""
    _define("string", "checkpoint", None, "A .keras checkpoint or a model_dir (default: the "
            "newest checkpoint of --model_dir).")
    flags.register_validator("checkpoint", lambda p: p is None or os.path.exists(p),
                             message="does not exist")


def define_source_flags():
    """Own files (--train_files ...), TFDS catalog features and splits, the text tokenizer."""
    from reformer_keras.datasets import sources  # pure Python
    _define("string", "train_files", None, "Train on your own files instead of --dataset: "
            "comma-separated globs (text: .txt, .jsonl, .csv; music: .mid, .midi) or, for "
            "images and labelled text, one folder with a sub-folder per class. See "
            "docs/own_data.md.")
    _define("string", "validation_files", None, "Validation files (same form as "
            "--train_files); default: --validation_fraction of the training files.")
    _define("float", "validation_fraction", 0.1, "Fraction of the training files held out for "
            "validation (by file, deterministic) when --validation_files is not given.")
    _define("string", "text_key", "text", "JSON lines key / CSV column holding the text.")
    _define("string", "label_key", None, "JSON lines key / CSV column holding the class label "
            "(task classifier on text).")
    _define("enum", "decode_errors", "strict", list(sources.DECODE_ERRORS), "Text that is not "
            "UTF-8: strict = an error naming the file and byte offset; replace = U+FFFD.")
    _define("string", "image_size", None, "Images: HxW or N (square): each image is centre-"
            "cropped to this aspect ratio and resized (bilinear). Default 32x32 for folders, "
            "the dataset's size for TFDS.")
    _define("enum", "color_mode", "auto", list(sources.COLOR_MODES), "Images: auto = "
            "grayscale if every training image is, else rgb.")
    _define("integer", "num_classes", None, "Task image: class-conditional with this many "
            "classes (default: the number of class folders of --train_files when >= 2; 0: "
            "unconditional).")
    _define("string", "text_feature", None, "TFDS catalog dataset: the text feature "
            "(default text).")
    _define("string", "image_feature", None, "TFDS catalog dataset: the image feature "
            "(default image).")
    _define("string", "label_feature", None, "TFDS catalog dataset: the label feature "
            "(default label; used by the classifier and class-conditional images).")
    _define("string", "train_split", None, "TFDS split to train on, slicing allowed, e.g. "
            "train[:95%] (default: the dataset's train split).")
    _define("string", "validation_split", None, "TFDS split to validate on, e.g. train[95%:] "
            "(default: the dataset's validation or test split).")
    _define("enum", "tokenizer", "bytes", list(sources.TOKENIZERS), "Text tokenizer: bytes (UTF-8, "
            "vocab 258), chars (the training text's characters), sentencepiece (trained on the "
            "training text, saved in model_dir/tokenizer/, part of the export).")
    _define("integer", "vocab_size", None, "Vocabulary of --tokenizer=chars|sentencepiece "
            "(default: chars all characters, sentencepiece 2000).")
    _positive("vocab_size", allow_none=True)
    flags.register_validator("num_classes", lambda v: v is None or v == 0 or v >= 2,
                             message="must be 0 (unconditional) or >= 2")
    flags.register_validator("validation_fraction", lambda v: 0 <= v < 1,
                             message="must be in [0, 1)")
    flags.register_validator("image_size", _valid_image_size,
                             message="must be N or HxW with 1 <= N <= 4096")


def _valid_image_size(value):
    from reformer_keras.datasets import sources
    try:
        sources.parse_image_size(value)
    except ValueError:
        return False
    return True


def define_run_flags():
    """--init_from and --keep_checkpoints (trainers/train.py)."""
    _define("string", "init_from", None, "Start from the weights of a trained model: a .keras "
            "file or a model_dir (its newest checkpoint). Every weight must match in shape.")
    _define("integer", "keep_checkpoints", 3, "Keep the newest N checkpoints/ckpt-<epoch>.keras "
            "(0: keep all).")
    flags.register_validator("init_from", lambda p: p is None or os.path.exists(p),
                             message="does not exist")
    flags.register_validator("keep_checkpoints", lambda v: v >= 0, message="must be >= 0")


def define_model_dir_flag(required=False):
    """--model_dir of a finished (or running) training run; its run.json fills the flags."""
    if _define("string", "model_dir", None, "A training run's directory: its run.json "
               "supplies the task, data, tokenizer and model; explicit flags override."):
        flags.register_validator("model_dir", lambda p: p is None or os.path.isdir(p),
                                 message="is not a directory")


def given(name):
    """True if the flag was given on the command line."""
    return FLAGS[name].present > 0


def read_run_or_fail(program):
    """run.json of --model_dir (None if no --model_dir); a one-line error if unreadable."""
    from reformer_keras.training import run_file
    if not FLAGS.model_dir:
        return None
    try:
        run = run_file.read_run(FLAGS.model_dir)
    except ValueError as err:
        fail(program, "model_dir", err)
    if run is None:
        fail(program, "model_dir", f"{FLAGS.model_dir} has no {run_file.RUN_FILE} (not a "
                                   "training run's directory)")
    return run


def run_or_checkpoint(program):
    """The run.json record of --model_dir, or None with --checkpoint (then the data flags must
    fit the dataset); exits with a one-line usage error when neither is given."""
    run = read_run_or_fail(program)
    if run is None and not FLAGS.checkpoint:
        fail(program, "model_dir", "give --model_dir (a training run) or --checkpoint")
    if run is None:
        check_fixed_length(program)
    return run
