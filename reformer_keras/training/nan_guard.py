"""Stops training at the first non-finite loss or weight, before anything is written from it.

`NonFiniteGuard` must come FIRST in the callback list: at the end of every batch it checks the
loss Keras reports and every model weight; on a NaN / Inf it raises `NonFiniteError`, which ends
`fit` at once, so no later callback (checkpoint, backup, loss log, samples) and no end-of-run
sample or export sees the bad state. The last checkpoint and backup stay the last good state; a
rerun resumes from there (e.g. with a lower --learning_rate).
"""
import math

import keras


class NonFiniteError(RuntimeError):
    """Training produced a non-finite loss or weight. `step`: the optimizer step; `cause`."""

    def __init__(self, step, cause):
        super().__init__(f"non-finite {cause} at step {step}")
        self.step, self.cause = step, cause


def first_non_finite(variables):
    """The path of the first variable holding a NaN / Inf, or None (one fused check)."""
    if not variables:
        return None
    flags = keras.ops.convert_to_numpy(keras.ops.stack(
        [keras.ops.all(keras.ops.isfinite(v)) for v in variables]))
    for v, ok in zip(variables, flags):
        if not ok:
            return v.path
    return None


class NonFiniteGuard(keras.callbacks.Callback):
    """Raises `NonFiniteError` at the first batch whose loss or weights are not finite."""

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss):
            raise NonFiniteError(self._step(), f"loss ({loss})")
        bad = first_non_finite(self.model.weights)
        if bad is not None:
            raise NonFiniteError(self._step(), f"weight {bad}")
