"""Builds the task model of a training run: a preset's config, the trainer's model options
(`ReformerConfig` field -> value) and the data's sizes.

Pure Python until `build_model` (which imports the Keras models): the trainers check presets
and options while parsing flags, before importing TensorFlow.

Rules the data imposes (documented in docs/config.md):
  - vocabulary: the data's (text, classifier, seq2seq); the image task derives it from the
    number of classes, the music task from its tokenizer;
  - positions: the model's position table is sized to the training windows
    (`ReformerConfig.sized_for`: an axial table whose product is not seq_len is replaced by a
    learned table of seq_len positions, and a warning says so); seq2seq tables are seq_len long;
  - the image task takes image_shape (hence the length) from the dataset.
"""
import logging

from reformer_keras.presets import PRESETS, TASK_DERIVED_FIELDS, get_preset

TASK_CLASSES = {"lm": "ReformerLM", "image": "ReformerImageGenerator",
                "music": "ReformerMusicGenerator", "seq2seq": "ReformerSeq2Seq",
                "classifier": "ReformerClassifier"}
DEFAULT_PRESETS = {"lm": "tiny_text", "image": "tiny_image", "music": "tiny_music",
                   "seq2seq": "tiny_seq2seq", "classifier": "tiny_classifier"}
_LOG = logging.getLogger("reformer_keras")


def check_preset(preset, task):
    """Raises ValueError for an unknown preset or one of another task."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(sorted(PRESETS))}")
    if PRESETS[preset].task != TASK_CLASSES[task]:
        same = sorted(n for n, p in PRESETS.items() if p.task == TASK_CLASSES[task])
        raise ValueError(f"preset {preset!r} is a {PRESETS[preset].task}, not for task "
                         f"{task!r} (use one of: {', '.join(same) or 'none available'})")


def configure(task, preset, options):
    """The preset's config with the model `options` applied (validated: ValueError with the
    config's message). seq2seq takes num_layers / attention_types for both stacks."""
    check_preset(preset, task)
    config = get_preset(preset).config
    options = {k: v for k, v in options.items() if v is not None}
    if task == "seq2seq":
        return config.with_options(**options)
    return config.replace(**options)


def model_config(task, preset, info, overrides):
    """The constructor arguments of the task model: preset config + options + data sizes."""
    config = configure(task, preset, overrides)
    task_args = dict(get_preset(preset).task_args)
    if task == "seq2seq":
        config = config.replace(encoder_vocab_size=info.vocab_size,
                                decoder_vocab_size=info.vocab_size,
                                encoder_max_len=info.seq_len, decoder_max_len=info.seq_len)
    elif task == "image":
        task_args.update(image_shape=list(info.image_shape), num_classes=(
            info.num_classes if getattr(info, "class_conditional", False) else None))
    else:
        if task != "music":
            config = config.replace(vocab_size=info.vocab_size)
        if task == "classifier":
            task_args["num_classes"] = info.num_classes
        config, note = config.sized_for(info.seq_len)
        if note:
            _LOG.warning("model positions: %s", note)
    kwargs = config.to_dict()
    for key in TASK_DERIVED_FIELDS[TASK_CLASSES[task]]:
        kwargs.pop(key)
    return {**kwargs, **task_args}


def build_model(task, preset, info, overrides=None, seed=None):
    """The (built) Keras model for `task`, inputs (B, info.seq_len)."""
    from reformer_keras import models  # pylint: disable=import-outside-toplevel
    config = model_config(task, preset, info, dict(overrides or {}))
    if seed is not None:
        config["seed"] = seed
    model = getattr(models, TASK_CLASSES[task])(**config)
    if task == "seq2seq":
        shape = (None, info.seq_len)
        model.build({"encoder_token_ids": shape, "decoder_token_ids": shape})
    else:
        model.build((None, info.seq_len))
    return model
