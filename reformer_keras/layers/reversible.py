"""`ReversibleSequence`: the Reformer's reversible residual stack as a Keras layer."""

import keras
from keras import ops

from reformer_keras.layers import attention_utils as au
from reformer_keras import input_checks


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReversibleSequence(keras.layers.Layer):
    """A stack of reversible blocks: y1 = x1 + f(x2), y2 = x2 + g(y1).

    The input is duplicated into the two streams and the output is their concatenation. With
    `reversible=True` (TensorFlow backend) the backward pass recomputes each block's inputs from
    its outputs (`tf_reversible.reversible_stack`), so activation memory does not grow with depth;
    `reversible=False` runs the identical math with ordinary backprop (same seeds, same masks),
    the reference the reversible gradients are tested against.

    The streams are float32 even under mixed precision (the recompute subtracts block outputs
    from the stream, which bfloat16 would not invert accurately); f and g compute in their own
    dtype policy.

    Args:
      blocks: list of (f, g) layer pairs, each called
        `f(x, padding_mask=, training=, rng=, num_hashes=)` on (B, L, d_model) and returning
        (B, L, d_model) (`PreNormBranch` layers).
      reversible: use the memory-saving gradient.
      seed: int seed for the per-forward stateless seeds of the blocks.
      stored_top_blocks: with `reversible=True`, this many top blocks keep their activations
        from the forward pass instead of recomputing them in the backward pass: faster by one
        block's forward per stored block, at one block's activation memory each (still
        independent of depth).

    Call: `seq(x, padding_mask=None, training=None, rng=None, num_hashes=None)`; x (B, L,
    d_model) -> (B, L, 2 * d_model) float32. `num_hashes` overrides the LSH layers' hash rounds.
    """

    def __init__(self, blocks, reversible=True, seed=None, stored_top_blocks=0, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.blocks = [
            tuple(keras.saving.deserialize_keras_object(l) if isinstance(l, dict) else l
                  for l in pair)
            for pair in blocks
        ]
        if not self.blocks or any(len(pair) != 2 for pair in self.blocks):
            raise ValueError("`blocks` must be a non-empty list of (f, g) layer pairs.")
        self.reversible = bool(reversible)
        self.seed = seed
        self.stored_top_blocks = input_checks.integer("stored_top_blocks", stored_top_blocks, 0)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        # Variables must exist before the custom gradient runs; deserialised blocks arrive built.
        for layer in (l for pair in self.blocks for l in pair):
            if not layer.built:
                layer.build(input_shape)
        super().build(input_shape)

    def _block_kwargs(self, padding_mask, training, rng, num_hashes=None):
        """Per-block call kwargs: one stateless seed per branch, drawn once for this forward."""
        if rng is None and training:
            rng = self.seed_generator.next()
        kwargs = []
        for i in range(len(self.blocks)):
            seeds = [None, None] if rng is None else [au.fold_seed(rng, 2 * i + j) for j in (1, 2)]
            kwargs.append(tuple(
                dict(padding_mask=padding_mask, training=training, rng=s, num_hashes=num_hashes)
                for s in seeds))
        return kwargs

    def call(self, x, padding_mask=None, training=None, rng=None, num_hashes=None):
        x = ops.cast(x, "float32")
        block_kwargs = self._block_kwargs(padding_mask, training, rng, num_hashes)
        if self.reversible and keras.backend.backend() == "tensorflow":
            from reformer_keras.layers import tf_reversible  # pylint: disable=import-outside-toplevel
            y1, y2 = tf_reversible.reversible_stack(
                x, x, self.blocks, block_kwargs, stored_top_blocks=self.stored_top_blocks)
        else:
            y1 = y2 = x
            for (f, g), (fk, gk) in zip(self.blocks, block_kwargs):
                y1 = y1 + ops.cast(f(y2, **fk), "float32")
                y2 = y2 + ops.cast(g(y1, **gk), "float32")
        return ops.concatenate([y1, y2], axis=-1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (2 * input_shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            blocks=[[keras.saving.serialize_keras_object(l) for l in pair]
                    for pair in self.blocks],
            reversible=self.reversible, seed=self.seed,
            stored_top_blocks=self.stored_top_blocks)
        return config
