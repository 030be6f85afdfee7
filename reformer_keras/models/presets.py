"""Building the task of a preset: `from_preset(name, **overrides)` and `Task.from_preset`
(`PresetMixin`). The table itself (`PRESETS`, pure Python) is `reformer_keras.presets`."""

from reformer_keras.presets import (PRESETS, Preset, get_preset, preset_names,  # noqa: F401
                                    presets_markdown)


def _task_class(task):
    from reformer_keras import models  # pylint: disable=import-outside-toplevel
    return getattr(models, task)


def from_preset(name, **overrides):
    """Builds (unbuilt weights) the task of preset `name`, its arguments updated with
    `overrides` (config fields or task arguments)."""
    preset = get_preset(name)
    return _task_class(preset.task)(**{**preset.kwargs(), **overrides})


class PresetMixin:
    """Adds `Task.from_preset(name, **overrides)` to a task class."""

    @classmethod
    def from_preset(cls, name, **overrides):
        """Builds this task from a preset of the same task (ValueError otherwise)."""
        preset = get_preset(name)
        if preset.task != cls.__name__:
            same = [n for n in preset_names() if PRESETS[n].task == cls.__name__]
            raise ValueError(f"Preset {name!r} is a {preset.task} preset, not a "
                             f"{cls.__name__} one; {cls.__name__} presets: {same}.")
        return cls(**{**preset.kwargs(), **overrides})


__all__ = ["PRESETS", "Preset", "PresetMixin", "from_preset", "get_preset", "preset_names",
           "presets_markdown"]
