"""Builds the task model of a training run from a preset plus per-layer overrides.

Uses the zoo (`reformer_keras.models.presets.from_preset`) when it is importable; otherwise the
fallback table below builds `ReformerLM` directly (lm / image / music tasks only).
"""
import importlib
import importlib.util
import os

import numpy as np

TASK_CLASSES = {"lm": "ReformerLM", "image": "ReformerImageGenerator",
                "music": "ReformerMusicGenerator", "seq2seq": "ReformerSeq2Seq",
                "classifier": "ReformerClassifier"}
DEFAULT_PRESETS = {"lm": "tiny_text", "image": "tiny_image", "music": "tiny_music",
                   "seq2seq": "tiny_seq2seq", "classifier": "tiny_classifier"}
# Used only when the zoo's presets module is absent: ReformerLM configs.
FALLBACK_PRESETS = {name: dict(task="ReformerLM", config=dict(
    d_model=64, num_layers=2, num_heads=2, d_ff=128, attention_types=["local", "lsh"],
    bucket_size=32, num_hashes=2, seed=0)) for name in ("tiny_text", "tiny_image", "tiny_music")}
OVERRIDE_KEYS = ("num_layers", "d_model", "num_heads", "d_ff", "attention_types", "num_hashes",
                 "bucket_size", "reversible", "dropout", "stored_top_blocks", "attn_chunks",
                 "query_chunk_len", "ff_chunked_backward")


def _presets_file():
    spec = importlib.util.find_spec("reformer_keras.models")  # imports only reformer_keras
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = os.path.join(folder, "presets.py")
        if os.path.exists(path):
            return path
    return None


def zoo_presets():
    """The zoo's presets module (imports the zoo, i.e. Keras), or None if it does not exist."""
    if _presets_file() is None:
        return None
    try:
        return importlib.import_module("reformer_keras.models.presets")
    except ImportError:
        return None


def preset_table():
    """{name: {"task": class name, "config": dict}} of every usable preset.

    Read from the zoo's presets.py loaded on its own when possible (no Keras import: the
    trainers validate --preset before importing TensorFlow); fallback table otherwise.
    """
    path, table = _presets_file(), None
    if path is not None:
        try:
            spec = importlib.util.spec_from_file_location("_reformer_presets_table", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            table = getattr(module, "PRESETS", None)
        except Exception:  # noqa: BLE001  (e.g. relative imports: use the real module)
            table = getattr(zoo_presets(), "PRESETS", None)
    return dict(table) if table else dict(FALLBACK_PRESETS)


def check_preset(preset, task):
    """Raises ValueError for an unknown preset or one of another task."""
    table = preset_table()
    if preset not in table:
        raise ValueError(f"unknown preset {preset!r}; known: {', '.join(sorted(table))}")
    if table[preset]["task"] != TASK_CLASSES[task]:
        same = sorted(n for n, p in table.items() if p["task"] == TASK_CLASSES[task])
        raise ValueError(f"preset {preset!r} is a {table[preset]['task']}, not for task "
                         f"{task!r} (use one of: {', '.join(same) or 'none available'})")


def _fit_positions(config, seq_len):
    """Drops axial positions whose product is not `seq_len` (learned positions instead)."""
    axial = config.get("axial_shape")
    if axial is not None and int(np.prod(axial)) != seq_len:
        config.update(axial_shape=None, axial_dims=None)
    if config.get("axial_shape") is None:
        config["max_len"] = seq_len
    return config


def model_config(task, preset, info, overrides):
    """The constructor arguments of the task model (preset config + data sizes + overrides)."""
    check_preset(preset, task)
    config = dict(preset_table()[preset]["config"])
    overrides = {k: v for k, v in overrides.items() if v is not None}
    if "d_model" in overrides:
        config.pop("axial_dims", None)
    if task == "seq2seq":
        renamed = {"num_layers": ("num_encoder_layers", "num_decoder_layers"),
                   "attention_types": ("encoder_attention_types", "decoder_attention_types")}
        for key, targets in renamed.items():
            if key in overrides:
                value = overrides.pop(key)
                config.update({t: value for t in targets})
        config.update(encoder_vocab_size=info.vocab_size, decoder_vocab_size=info.vocab_size,
                      encoder_max_len=info.seq_len, decoder_max_len=info.seq_len)
    elif task == "image":
        config.update(image_shape=list(info.image_shape), num_classes=None)
    elif task == "classifier":
        config.update(num_classes=info.num_classes, vocab_size=info.vocab_size)
        _fit_positions(config, info.seq_len)
    elif task == "music":
        config.pop("vocab_size", None)
        _fit_positions(config, info.seq_len)
    else:
        config["vocab_size"] = info.vocab_size
        _fit_positions(config, info.seq_len)
    config.update(overrides)
    return config


def build_model(task, preset, info, overrides=None, seed=None, build=True):
    """The (built) Keras model for `task`, inputs (B, info.seq_len). `build=False`: constructed
    only (no weights), which runs every option check of the model and its layers."""
    config = model_config(task, preset, info, dict(overrides or {}))
    if seed is not None:
        config["seed"] = seed
    presets = zoo_presets()
    if presets is not None and hasattr(presets, "from_preset"):
        model = presets.from_preset(preset, **{k: v for k, v in config.items()})
    else:
        if task not in ("lm", "image", "music"):
            raise ValueError(f"task {task!r} needs the model zoo (reformer_keras.models.presets)")
        from reformer_keras.models import ReformerLM
        config.pop("image_shape", None)
        config.pop("num_classes", None)
        config["vocab_size"] = info.vocab_size
        model = ReformerLM(**config)
    if not build:
        return model
    if task == "seq2seq":
        shape = (None, info.seq_len)
        model.build({"encoder_token_ids": shape, "decoder_token_ids": shape})
    else:
        model.build((None, info.seq_len))
    return model
