"""Training callbacks: atomic checkpoints and backups, step / wall-clock limits, loss log, samples.

Every file is written under a temporary name (".tmp-<pid>-<name>", `reformer_keras.atomic_files`)
in its final directory and moved into place with `os.replace`, so a run killed at any moment
leaves either the previous or the new file, never a half-written one; temporaries of dead
processes are removed when training (re)starts.
"""
import glob
import json
import os
import time

import keras
import numpy as np

from reformer_keras.atomic_files import (TMP_PREFIX, atomic_write_text,  # noqa: F401
                                         remove_stale_temporaries, tmp_name)
from reformer_keras import fault_injection
from reformer_keras import tf_keras_compat


def global_step(model):
    """The number of optimizer updates so far (restored with the backup)."""
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


class AtomicModelCheckpoint(keras.callbacks.Callback):
    """Saves the model at the end of every epoch to `filepath`, atomically (temp file +
    `os.replace`). `filepath` is formatted as `keras.callbacks.ModelCheckpoint` formats it:
    `{epoch}` (1-based) and the epoch's log names, e.g. "ckpt-{epoch:04d}.keras".
    `save_weights_only` writes `model.save_weights` files (".weights.h5") instead."""

    def __init__(self, filepath, write=True, save_weights_only=False, verbose=0):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.write = write
        self.save_weights_only = save_weights_only
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        remove_stale_temporaries(os.path.dirname(self.filepath))

    def on_epoch_end(self, epoch, logs=None):
        if not self.write:
            return
        filepath = self.filepath.format(epoch=epoch + 1, **(logs or {}))
        os.makedirs(os.path.dirname(filepath) or ".", exist_ok=True)
        tmp = tmp_name(filepath)
        if self.save_weights_only:
            self.model.save_weights(tmp, overwrite=True)
        else:
            self.model.save(tmp, overwrite=True)
        fault_injection.maybe_kill("checkpoint")
        os.replace(tmp, filepath)
        if self.verbose > 0:
            keras.utils.io_utils.print_msg(f"\nEpoch {epoch + 1}: saved model to {filepath}")


def rng_variables(model):
    """The model's variables that are not weights: the states of its `SeedGenerator`s (LSH
    rotations and dropout masks in training). `save_weights` does not store them."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


class AtomicBackupAndRestore(tf_keras_compat.BackupAndRestoreHooks):
    """`BackupAndRestore` (epoch granularity) with atomic, self-consistent backups.

    Each backup writes `state-<epoch>.weights.h5` (model + optimizer variables, so the step
    counter is restored) atomically, then atomically replaces `training_metadata.json`, which
    names the weights file and holds the step and the seed generators' states (so dropout masks
    and LSH rotations continue as in an uninterrupted run); a kill between the two leaves the
    previous, consistent pair.
    `write=False` (non-chief workers) restores but never writes.
    """

    def __init__(self, backup_dir, write=True, **kwargs):
        super().__init__(backup_dir, save_freq="epoch", **kwargs)
        self.write = write

    def _metadata(self):
        if not os.path.exists(self.metadata_path):
            return None
        with open(self.metadata_path) as f:
            return json.load(f)

    def restore_backup(self):
        if self.write and os.path.isdir(self.backup_dir):
            remove_stale_temporaries(self.backup_dir)
        metadata = self._metadata()
        if metadata is None:
            return
        if self.model.optimizer is not None and not self.model.optimizer.built:
            self.model.optimizer.build(self.model.trainable_variables)
        self.model.load_weights(os.path.join(self.backup_dir, metadata["weights"]))
        states = metadata.get("rng_states")
        variables = rng_variables(self.model)
        if states is not None and len(states) == len(variables):
            for variable, state in zip(variables, states):
                variable.assign(np.asarray(state, dtype=variable.dtype))
        tf_keras_compat.set_initial_epoch(self.model, metadata["epoch"])

    def write_backup(self):
        if not self.write:
            return
        os.makedirs(self.backup_dir, exist_ok=True)
        name = f"state-{self.current_epoch:06d}.weights.h5"
        path = os.path.join(self.backup_dir, name)
        tmp = tmp_name(path)
        self.model.save_weights(tmp, overwrite=True)
        os.replace(tmp, path)
        fault_injection.maybe_kill("backup")
        metadata = {"epoch": self.current_epoch, "step": global_step(self.model),
                    "weights": name,
                    "rng_states": [keras.ops.convert_to_numpy(v).tolist()
                                   for v in rng_variables(self.model)]}
        atomic_write_text(self.metadata_path, json.dumps(metadata))
        for old in glob.glob(os.path.join(self.backup_dir, "state-*.weights.h5")):
            if os.path.basename(old) != name:
                os.remove(old)


def backup_step(backup_dir):
    """The optimizer step of the backup a run in `backup_dir` would resume from (0: none)."""
    try:
        with open(os.path.join(backup_dir, "training_metadata.json")) as f:
            return int(json.load(f)["step"])
    except (OSError, ValueError, KeyError):
        return 0


class StepLimit(keras.callbacks.Callback):
    """Stops at `total_steps` optimizer updates and/or after `max_minutes` of wall time."""

    def __init__(self, total_steps=None, max_minutes=None):
        super().__init__()
        self.total_steps, self.max_minutes = total_steps, max_minutes
        self.start, self.reason = None, None

    def on_train_begin(self, logs=None):
        self.start = time.monotonic()
        if self.total_steps is not None and global_step(self.model) >= self.total_steps:
            self.model.stop_training, self.reason = True, "steps"

    def on_train_batch_end(self, batch, logs=None):
        if self.total_steps is not None and global_step(self.model) >= self.total_steps:
            self.model.stop_training, self.reason = True, "steps"
        elif self.max_minutes and time.monotonic() - self.start > 60.0 * self.max_minutes:
            self.model.stop_training, self.reason = True, "max_minutes"


class LossLog(keras.callbacks.Callback):
    """Appends "step,loss" (Keras' running epoch mean, as in the progress bar) per batch.

    `resume_step`: rows after that step (written by a run killed after its last backup) are
    dropped first, so a resumed run's log has each step once."""

    def __init__(self, path, write=True, resume_step=0):
        super().__init__()
        self.path, self.write, self.rows = path, write, []
        if write and os.path.exists(path):
            with open(path) as f:
                lines = f.read().splitlines()
            keep = [line for line in lines
                    if line.split(",")[0].isdigit() and int(line.split(",")[0]) <= resume_step]
            if keep != lines:
                atomic_write_text(path, "".join(line + "\n" for line in keep))

    def on_train_batch_end(self, batch, logs=None):
        row = (global_step(self.model), float((logs or {}).get("loss", float("nan"))))
        self.rows.append(row)
        if self.write:
            with open(self.path, "a") as f:
                f.write(f"{row[0]},{row[1]!r}\n")


class SampleEvery(keras.callbacks.Callback):
    """Calls `write_fn(model, step) -> [paths]` every `every_steps` optimizer updates."""

    def __init__(self, write_fn, every_steps, write=True):
        super().__init__()
        self.write_fn, self.every_steps, self.write = write_fn, int(every_steps), write
        self.written = []

    def on_train_batch_end(self, batch, logs=None):
        step = global_step(self.model)
        if self.write and self.every_steps > 0 and step % self.every_steps == 0:
            self.written.extend(self.write_fn(self.model, step))
