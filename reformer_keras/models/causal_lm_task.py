"""`CausalLMTask`: the shared body of the autoregressive tasks (text, pixels, MIDI events)."""

import keras
from keras import ops

from reformer_keras.models.presets import PresetMixin
from reformer_keras.models.train_state import TrainStateMixin

_FUSED_HEAD = [True]


def fused_head_enabled():
    """Whether causal LM tasks fuse final norm and head on TensorFlow (default True)."""
    return _FUSED_HEAD[0]


def set_fused_head(enabled):
    """Turns the fused final norm + head on or off (e.g. to compare with the two layers);
    returns the previous setting."""
    previous, _FUSED_HEAD[0] = _FUSED_HEAD[0], bool(enabled)
    return previous


class CausalLMTask(PresetMixin, TrainStateMixin, keras.Model):
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
        if self._fused_head(inputs):
            # TensorFlow: final norm and head as one op whose backward runs over pieces of
            # the sequence (`tf_norm_head`); same weights and values as the two layers.
            from reformer_keras.layers import tf_norm_head  # pylint: disable=C0415
            features = self.backbone.features(inputs, padding_mask=padding_mask,
                                              training=training, rng=rng, num_hashes=num_hashes)
            norm, head = self.backbone.final_norm, self.lm_head
            return tf_norm_head.norm_dense(features, norm.gamma, norm.beta, head.kernel,
                                           head.bias, norm.epsilon, head.compute_dtype)
        hidden = self.backbone(inputs, padding_mask=padding_mask, training=training, rng=rng,
                               num_hashes=num_hashes)
        return ops.cast(self.lm_head(hidden), "float32")

    def _fused_head(self, inputs):
        """Whether `call` may fuse final norm and head: TensorFlow, the norm's lean path, and
        a plain Dense head (bias, no activation, no LoRA or quantization)."""
        head, norm = self.lm_head, self.backbone.final_norm
        return (keras.backend.backend() == "tensorflow" and fused_head_enabled()
                and type(head) is keras.layers.Dense and head.use_bias
                and head.activation is keras.activations.linear
                and getattr(head, "lora_rank", None) is None
                and getattr(head, "quantization_mode", None) is None
                and norm.lean_for_rank(len(inputs.shape) + 1))
