"""The reversible decoder stack: blocks whose f branch also reads an encoder output.

A decoder block is y1 = x1 + f(x2, context), y2 = x2 + g(y1) with
f(x, c) = a + CrossAttention(LN(x + a), c), a = SelfAttention(LN(x)) (causal) and
g = FeedForward(LN(y1)). `ReversibleDecoderSequence` passes the encoder output to the reversible custom gradient
(`layers/tf_reversible.reversible_stack(..., context=...)`) as an explicit input, so it receives
its gradient, summed over the blocks.
"""

import keras
from keras import ops

from reformer_keras.layers import attention_utils as au
from reformer_keras.layers.cross_attention import CrossAttention
from reformer_keras.layers.layer_norm import LayerNorm
from reformer_keras.layers.pre_norm import hashes
from reformer_keras.layers.reversible import ReversibleSequence


@keras.saving.register_keras_serializable(package="reformer_keras")
class DecoderAttentionBranch(keras.layers.Layer):
    """The f branch of a decoder block: pre-norm self-attention, then pre-norm cross-attention.

    Args:
      self_attention: a self-attention layer (LSH / local / full, causal).
      cross_attention: a `CrossAttention` layer.
    Call: `branch(x, context, context_mask=None, padding_mask=None, training=None, rng=None,
      num_hashes=None)`; x (B, L, d_model), context (B, Lk, context_dim) -> (B, L, d_model),
      the sum of both residual increments (a + c).
    """

    def __init__(self, self_attention, cross_attention, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        des = keras.saving.deserialize_keras_object
        self.self_attention = des(self_attention) if isinstance(self_attention, dict) \
            else self_attention
        self.cross_attention = des(cross_attention) if isinstance(cross_attention, dict) \
            else cross_attention
        self.epsilon = epsilon
        self.self_norm = LayerNorm(epsilon=epsilon, name="self_norm")
        self.cross_norm = LayerNorm(epsilon=epsilon, name="cross_norm")

    def build(self, x_shape, context_shape=None):
        for sub in (self.self_norm, self.self_attention, self.cross_norm):
            if not sub.built:
                sub.build(x_shape)
        if not self.cross_attention.built:
            self.cross_attention.build(x_shape, context_shape)
        self.built = True

    def call(self, x, context, context_mask=None, padding_mask=None, training=None, rng=None,
             num_hashes=None):
        seeds = (None, None) if rng is None else (au.fold_seed(rng, 1), au.fold_seed(rng, 2))
        kwargs = dict(padding_mask=padding_mask, training=training, rng=seeds[0])
        if num_hashes is not None and hashes(self.self_attention):
            kwargs["num_hashes"] = num_hashes
        a = self.self_attention(self.self_norm(x), **kwargs)
        h = ops.cast(x, a.dtype) + a
        c = self.cross_attention(self.cross_norm(h), context, context_mask=context_mask,
                                 training=training, rng=seeds[1])
        return a + ops.cast(c, a.dtype)

    def compute_output_shape(self, x_shape, context_shape=None):
        return tuple(x_shape)

    def get_config(self):
        config = super().get_config()
        ser = keras.saving.serialize_keras_object
        config.update(self_attention=ser(self.self_attention),
                      cross_attention=ser(self.cross_attention), epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReversibleDecoderSequence(ReversibleSequence):
    """`ReversibleSequence` whose f branches take the encoder output as a second input.

    Args: as `ReversibleSequence`; `blocks` are (DecoderAttentionBranch, PreNormBranch) pairs.
    Call: `seq(x, context, context_mask=None, padding_mask=None, training=None, rng=None,
      num_hashes=None)`; x (B, L, d_model), context (B, Lk, context_dim) ->
      (B, L, 2 * d_model) float32. With `reversible=True` (TensorFlow) the backward pass
      recomputes activations from the outputs and returns the gradient w.r.t. the context too.
    """

    def build(self, x_shape, context_shape=None):
        for f, g in self.blocks:
            if not f.built:
                f.build(x_shape, context_shape)
            if not g.built:
                g.build(x_shape)
        self.built = True

    def call(self, x, context, context_mask=None, padding_mask=None, training=None, rng=None,
             num_hashes=None):
        x = ops.cast(x, "float32")
        context = ops.cast(context, "float32")
        block_kwargs = self._block_kwargs(padding_mask, training, rng, num_hashes)
        for fk, _ in block_kwargs:
            fk["context_mask"] = context_mask
        if self.reversible and keras.backend.backend() == "tensorflow":
            from reformer_keras.layers import tf_reversible  # pylint: disable=import-outside-toplevel
            y1, y2 = tf_reversible.reversible_stack(x, x, self.blocks, block_kwargs,
                                                    context=context,
                                                    stored_top_blocks=self.stored_top_blocks)
        else:
            y1 = y2 = x
            for (f, g), (fk, gk) in zip(self.blocks, block_kwargs):
                y1 = y1 + ops.cast(f(y2, context, **fk), "float32")
                y2 = y2 + ops.cast(g(y1, **gk), "float32")
        return ops.concatenate([y1, y2], axis=-1)

    def compute_output_shape(self, x_shape, context_shape=None):
        return tuple(x_shape[:-1]) + (2 * x_shape[-1],)


__all__ = ["CrossAttention", "DecoderAttentionBranch", "ReversibleDecoderSequence"]
