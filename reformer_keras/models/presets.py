"""Building the task of a preset: `from_preset(name, **overrides)` and `Task.from_preset`
(`PresetMixin`). The table itself (`PRESETS`, pure Python) is `reformer_keras.presets`.
`from_preset("hf:DIR")` loads a Hugging Face Reformer checkpoint directory with its weights
(`reformer_keras.models.from_hf`); a named preset builds a randomly initialised model (no
preset ships weights) and logs so."""

import logging

from reformer_keras.presets import (PRESETS, Preset, get_preset, preset_names,  # noqa: F401
                                    presets_markdown)


def _task_class(task):
    from reformer_keras import models  # pylint: disable=import-outside-toplevel
    return getattr(models, task)


HF_PREFIX = "hf:"


def _from_hf(name, overrides, task="ReformerLM"):
    """`hf:DIR` -> the converted ReformerLM, with the checkpoint's weights."""
    if overrides:
        raise ValueError(f"{name!r}: a Hugging Face checkpoint takes no overrides, got "
                         f"{sorted(overrides)}.")
    if task != "ReformerLM":
        raise ValueError(f"{name!r}: Hugging Face checkpoints convert to ReformerLM, not {task}.")
    from reformer_keras.models.hf_checkpoint import from_hf  # pylint: disable=C0415
    return from_hf(name[len(HF_PREFIX):])[0]


def _log_random_weights(name, preset):
    hint = f"; pretrained weights: {preset.weights}" if preset.weights else ""
    logging.info("Preset %r: randomly initialised weights (the preset has none)%s.", name, hint)


def from_preset(name, **overrides):
    """Builds (unbuilt weights) the task of preset `name`, its arguments updated with
    `overrides` (config fields or task arguments); `hf:DIR` loads a Hugging Face Reformer
    checkpoint directory (with its weights)."""
    if isinstance(name, str) and name.startswith(HF_PREFIX):
        return _from_hf(name, overrides)
    preset = get_preset(name)
    _log_random_weights(name, preset)
    return _task_class(preset.task)(**{**preset.kwargs(), **overrides})


class PresetMixin:
    """Adds `Task.from_preset(name, **overrides)` to a task class."""

    @classmethod
    def from_preset(cls, name, **overrides):
        """Builds this task from a preset of the same task (ValueError otherwise); `hf:DIR`
        loads a Hugging Face Reformer checkpoint directory (ReformerLM)."""
        if isinstance(name, str) and name.startswith(HF_PREFIX):
            return _from_hf(name, overrides, cls.__name__)
        preset = get_preset(name)
        if preset.task != cls.__name__:
            same = [n for n in preset_names() if PRESETS[n].task == cls.__name__]
            raise ValueError(f"Preset {name!r} is a {preset.task} preset, not a "
                             f"{cls.__name__} one; {cls.__name__} presets: {same}.")
        _log_random_weights(name, preset)
        return cls(**{**preset.kwargs(), **overrides})


__all__ = ["PRESETS", "Preset", "PresetMixin", "from_preset", "get_preset", "preset_names",
           "presets_markdown"]
