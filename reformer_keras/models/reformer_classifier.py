"""`ReformerClassifier`: sequence classification on a non-causal Reformer backbone."""

import keras
from keras import ops

from reformer_keras import input_checks
from reformer_keras.layers.seeding import glorot_uniform
from reformer_keras.models.presets import PresetMixin
from reformer_keras.models.reformer_backbone import ReformerBackbone, stack_config
from reformer_keras.models.train_state import TrainStateMixin


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerClassifier(PresetMixin, TrainStateMixin, keras.Model):
    """token ids (B, L) -> non-causal `ReformerBackbone` (B, L, 2 * d_model) -> mean over the
    real tokens (padding_mask) -> dropout -> Dense -> logits (B, num_classes) float32.

    Args:
      num_classes: number of classes (>= 2).
      vocab_size, d_model, num_layers, num_heads, d_ff, and the backbone options
        (`ReformerBackbone`; `causal` is always False), or `config` (a `ReformerConfig` with
        causal=False).
      classifier_dropout: dropout on the pooled features.

    Call: `model(token_ids)` or `model({"token_ids": (B, L) int, "padding_mask": (B, L) bool})`.
    Padded positions do not change the logits.
    """

    def __init__(self, num_classes, *args, classifier_dropout=0.0, config=None, **kwargs):
        if len(args) == 6:  # (num_classes,) vocab_size, d_model, ..., d_ff, classifier_dropout
            *args, classifier_dropout = args
        config = stack_config(config, args, kwargs, "ReformerClassifier", max_positional=5,
                              causal=False)
        super().__init__(**kwargs)
        self.num_classes = input_checks.integer("num_classes", num_classes, 2)
        self.classifier_dropout = input_checks.rate("classifier_dropout", classifier_dropout)
        self.backbone = ReformerBackbone(config=config, name="backbone")
        self.dropout_layer = keras.layers.Dropout(self.classifier_dropout, name="dropout")
        self.classifier_head = keras.layers.Dense(
            num_classes, name="classifier_head",
            kernel_initializer=glorot_uniform(self.backbone.seed, "classifier_head"))

    def build(self, input_shape):
        if isinstance(input_shape, dict):
            input_shape = input_shape["token_ids"]
        self.backbone.build(input_shape)
        self.classifier_head.build((input_shape[0], 2 * self.backbone.d_model))
        self.built = True

    def call(self, inputs, training=None):
        padding_mask = None
        if isinstance(inputs, dict):
            padding_mask = inputs.get("padding_mask")
            inputs = inputs["token_ids"]
        hidden = self.backbone(inputs, padding_mask=padding_mask, training=training)
        if padding_mask is None:
            pooled = ops.mean(hidden, axis=1)
        else:
            weights = ops.cast(padding_mask, hidden.dtype)[..., None]        # (B, L, 1)
            pooled = ops.sum(hidden * weights, axis=1) / ops.maximum(
                ops.sum(weights, axis=1), 1.0)                                # (B, 2d)
        pooled = self.dropout_layer(pooled, training=training)
        return ops.cast(self.classifier_head(pooled), "float32")

    def get_config(self):
        config = super().get_config()
        backbone = self.backbone.config.to_dict()
        backbone.pop("causal")
        config.update(backbone)
        config.update(num_classes=self.num_classes, classifier_dropout=self.classifier_dropout)
        return config
