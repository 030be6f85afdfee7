"""`AxialPositionalEmbedding`: factorised position embeddings for very long sequences."""

import math

import keras
from keras import ops

from reformer_keras.layers.seeding import derive_seed
from reformer_keras import input_checks


@keras.saving.register_keras_serializable(package="reformer_keras")
class AxialPositionalEmbedding(keras.layers.Layer):
    """Position embeddings factorised over an axial grid (the Reformer's axial embeddings).

    Position p of a sequence is read as a multi-index (i_1, ..., i_k) in row-major order over
    `axial_shape` = (s_1, ..., s_k); its embedding is the concatenation of one learned vector per
    axis, of sizes `axial_dims` (summing to d_model). Parameters: sum_j s_j * d_j instead of
    prod(s) * d_model (for 1M positions, 1024 x 1024: 2 * 1024 * d/2 values instead of 1M * d).

    Args:
      axial_shape: sizes of the grid; `max_length` = prod(axial_shape).
      axial_dims: embedding size per axis; must sum to the input's d_model.
      initializer_stddev: standard deviation of the initial tables (None: d_model ** -0.5, the
        scale of `ReformerBackbone`'s token embeddings).
      seed: int or None (unseeded); each axis's table gets its own stream (`derive_seed`).
    Call: `layer(x)`, x (B, L, d_model) float with L <= prod(axial_shape): returns x plus the
    embeddings of positions 0..L-1 (B, L, d_model).
    """

    def __init__(self, axial_shape, axial_dims, initializer_stddev=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.axial_shape = tuple(input_checks.integer("axial_shape", s) for s in axial_shape)
        self.axial_dims = tuple(input_checks.integer("axial_dims", d) for d in axial_dims)
        if len(self.axial_shape) != len(self.axial_dims) or not self.axial_shape:
            raise ValueError(
                "`axial_shape` and `axial_dims` must be non-empty and of equal length, got "
                f"{axial_shape!r} and {axial_dims!r}.")
        if initializer_stddev is None:
            initializer_stddev = sum(self.axial_dims)**-0.5
        self.initializer_stddev = float(initializer_stddev)
        self.seed = input_checks.seed("seed", seed)

    @property
    def max_length(self):
        return math.prod(self.axial_shape)

    def build(self, input_shape):
        if input_shape[-1] != sum(self.axial_dims):
            raise ValueError(
                f"`axial_dims` {self.axial_dims} must sum to d_model={input_shape[-1]}.")
        self.axis_embeddings = [
            self.add_weight(name=f"axis_{i}", shape=(size, dim),
                            initializer=keras.initializers.RandomNormal(
                                stddev=self.initializer_stddev,
                                seed=derive_seed(self.seed, f"axis_{i}")))
            for i, (size, dim) in enumerate(zip(self.axial_shape, self.axial_dims))
        ]
        super().build(input_shape)

    def embeddings(self, length, offset=0):
        """(length, d_model) embeddings of positions offset .. offset + length - 1."""
        positions = ops.arange(length, dtype="int32") + offset
        parts = []
        stride = self.max_length
        for size, table in zip(self.axial_shape, self.axis_embeddings):
            stride //= size
            index = (positions // stride) % size
            parts.append(ops.take(table, index, axis=0))
        return ops.concatenate(parts, axis=-1)

    def call(self, x):
        length = x.shape[1]
        if isinstance(length, int) and length > self.max_length:
            raise ValueError(
                f"Sequence length {length} exceeds the axial positional embedding's maximum "
                f"length prod(axial_shape) = {self.max_length}.")
        emb = self.embeddings(ops.shape(x)[1])
        return x + ops.cast(emb, x.dtype)[None]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(axial_shape=list(self.axial_shape), axial_dims=list(self.axial_dims),
                      initializer_stddev=self.initializer_stddev, seed=self.seed)
        return config
