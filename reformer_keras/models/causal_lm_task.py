"""`CausalLMTask`: the shared body of the autoregressive tasks (text, pixels, MIDI events)."""

import keras
from keras import ops

from reformer_keras.models.presets import PresetMixin


class CausalLMTask(PresetMixin, keras.Model):
    """A causal `ReformerBackbone` followed by a dense LM head.

    Subclasses create `self.backbone` (a causal `ReformerBackbone`) and `self.lm_head` (Dense
    over 2 * d_model) in `__init__`. Cached generation (`reformer_keras.generation`) relies on
    exactly these two attributes.

    Call: `model(token_ids)` or `model({"token_ids": ..., "padding_mask": ...})`, with
    `training`, `rng` (stateless seed (2,)) and `num_hashes` (LSH rounds, e.g. more at
    evaluation); int ids (B, L) -> logits (B, L, head units) float32.
    """

    @property
    def vocab_size(self):
        return self.backbone.vocab_size

    @property
    def max_len(self):
        return self.backbone.max_len

    def build(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["token_ids"]
        self.backbone.build(input_shape)
        self.lm_head.build(tuple(input_shape) + (2 * self.backbone.d_model,))
        self.built = True

    def call(self, inputs, training=None, rng=None, num_hashes=None):
        padding_mask = None
        if isinstance(inputs, dict):
            padding_mask = inputs.get("padding_mask")
            inputs = inputs["token_ids"]
        hidden = self.backbone(inputs, padding_mask=padding_mask, training=training, rng=rng,
                               num_hashes=num_hashes)
        return ops.cast(self.lm_head(hidden), "float32")
