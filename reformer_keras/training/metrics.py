"""Bits-per-token / bits-per-dim / bits-per-character metrics and the learning-rate schedule."""
import math

import keras
from keras import ops

LN2 = math.log(2.0)


@keras.saving.register_keras_serializable(package="reformer_keras")
class BitsPerToken(keras.metrics.Metric):
    """Cross-entropy in bits, averaged over (weighted) target tokens.

    `update_state(y_true, y_pred, sample_weight=None)`: y_true int (B, L), y_pred logits
    float (B, L, V), sample_weight (B, L) or None. Result: sum(w * CE / ln 2) / sum(w).

    With `per_character=True` (UTF-8 byte tokens of `ByteTokenizer`, id = byte + 2) the summed
    bits are divided by the number of characters instead: target bytes that start a UTF-8
    character (not 0x80..0xBF continuation bytes, not pad/eos). For ASCII text bits/char equals
    bits/byte; for images the result is bits per dim (one token per sub-pixel).
    """

    def __init__(self, name="bits_per_token", per_character=False, byte_offset=2, **kwargs):
        super().__init__(name=name, **kwargs)
        self.per_character = bool(per_character)
        self.byte_offset = int(byte_offset)
        self.bits = self.add_variable((), initializer="zeros", name="bits", dtype="float32")
        self.count = self.add_variable((), initializer="zeros", name="count", dtype="float32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        ce = ops.sparse_categorical_crossentropy(y_true, ops.cast(y_pred, "float32"),
                                                 from_logits=True) / LN2
        weight = ops.ones_like(ce) if sample_weight is None else ops.cast(
            ops.reshape(sample_weight, ops.shape(ce)), "float32")
        count = weight
        if self.per_character:
            byte = y_true - self.byte_offset
            starts = ops.logical_and(byte >= 0, ops.logical_or(byte < 0x80, byte >= 0xC0))
            count = weight * ops.cast(starts, "float32")
        self.bits.assign_add(ops.sum(ce * weight))
        self.count.assign_add(ops.sum(count))

    def result(self):
        return ops.divide_no_nan(self.bits, self.count)

    def reset_state(self):
        self.bits.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "per_character": self.per_character,
                "byte_offset": self.byte_offset}


@keras.saving.register_keras_serializable(package="reformer_keras")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then constant, cosine decay (to 0 at `total_steps`) or rsqrt.

    lr(step) = peak * min(1, (step + 1) / warmup) * decay(step), decay:
      constant: 1;  cosine: 0.5 * (1 + cos(pi * clip((step - warmup) / (total - warmup), 0, 1)));
      rsqrt: sqrt(warmup / max(step, warmup)).
    """

    KINDS = ("constant", "cosine", "rsqrt")

    def __init__(self, peak, kind="constant", warmup_steps=0, total_steps=1):
        if kind not in self.KINDS:
            raise ValueError(f"unknown schedule {kind!r}; expected one of {self.KINDS}")
        self.peak, self.kind = float(peak), kind
        self.warmup_steps, self.total_steps = int(warmup_steps), max(int(total_steps), 1)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = float(max(self.warmup_steps, 1))
        lr = self.peak * ops.minimum(1.0, (step + 1.0) / warmup)
        if self.kind == "cosine":
            span = float(max(self.total_steps - self.warmup_steps, 1))
            frac = ops.clip((step - self.warmup_steps) / span, 0.0, 1.0)
            lr = lr * 0.5 * (1.0 + ops.cos(math.pi * frac))
        elif self.kind == "rsqrt":
            lr = lr * ops.sqrt(warmup / ops.maximum(step, warmup))
        return lr

    def get_config(self):
        return {"peak": self.peak, "kind": self.kind, "warmup_steps": self.warmup_steps,
                "total_steps": self.total_steps}
