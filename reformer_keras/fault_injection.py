"""Test hooks that make a run fail at a named, deterministic point (used by the fault tests).

Set `REFORMER_FAULT_INJECTION` to one or more comma-separated actions:

  kill:<point>:<n>   the process SIGKILLs itself the n-th time (1-based) it reaches <point>:
                       step        at the start of optimizer step n (input prefetch in flight)
                       checkpoint  after ckpt-<epoch>.keras is written under its temporary
                                   name, before it is moved into place
                       backup      after the backup's weights file is in place, before
                                   training_metadata.json names it
                       export      after the SavedModel is written into its temporary
                                   directory, before it is renamed to its version
  nan_at_step:<n>    before optimizer step n, the first trainable weight becomes NaN (so the
                     loss of step n is NaN)

Unset (the normal case) every hook is a no-op.
"""
import os
import signal

import keras

ENV = "REFORMER_FAULT_INJECTION"
POINTS = ("step", "checkpoint", "backup", "export")
_counts = {}


def _actions():
    spec = os.environ.get(ENV, "")
    return [item.split(":") for item in spec.split(",") if item]


def maybe_kill(point, n=None):
    """SIGKILLs this process if `kill:<point>:<k>` is set and this is the k-th visit of
    `point` (or, when `n` is given, if n == k)."""
    if point not in POINTS:
        raise ValueError(f"unknown fault point {point!r}")
    if n is None:
        n = _counts[point] = _counts.get(point, 0) + 1
    for action in _actions():
        if action[0] == "kill" and action[1] == point and int(action[2]) == n:
            os.kill(os.getpid(), signal.SIGKILL)


def nan_at_step():
    """The step whose loss a `nan_at_step:<n>` hook makes NaN, or None."""
    for action in _actions():
        if action[0] == "nan_at_step":
            return int(action[1])
    return None


class FaultHooks(keras.callbacks.Callback):
    """The `kill:step:<n>` and `nan_at_step:<n>` hooks as a callback (first in the list)."""

    def on_train_batch_begin(self, batch, logs=None):
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) + 1
        maybe_kill("step", step)
        if nan_at_step() == step:
            weight = self.model.trainable_weights[0]
            weight.assign(keras.ops.full(weight.shape, float("nan"), weight.dtype))
