"""`PreNormBranch`: a residual branch `layer(LayerNorm(x))`, the f and g of a reversible block."""

import keras

from reformer_keras.layers.layer_norm import LayerNorm


def hashes(layer):
    """Whether `layer` is an LSH layer: it has `compute_buckets` and takes `num_hashes` and
    `buckets` call arguments (the other self-attention layers take neither)."""
    return hasattr(layer, "compute_buckets")


@keras.saving.register_keras_serializable(package="reformer_keras")
class PreNormBranch(keras.layers.Layer):
    """Wraps `layer` (an attention or feed-forward layer) with a pre-LayerNorm.

    Call: `branch(x, padding_mask=None, training=None, rng=None, num_hashes=None,
    buckets=None, return_buckets=False)`; x (B, L, d_model) -> (B, L, d_model) (and the hash
    buckets with `return_buckets`). Arguments are forwarded to the wrapped layer (`num_hashes`,
    `buckets` and `return_buckets` only to a layer that hashes).
    """

    def __init__(self, layer, epsilon=1e-6, **kwargs):
        super().__init__(**kwargs)
        if isinstance(layer, dict):
            layer = keras.saving.deserialize_keras_object(layer)
        self.layer = layer
        self.epsilon = epsilon
        self.norm = LayerNorm(epsilon=epsilon, name="norm")

    def build(self, input_shape):
        for sub in (self.norm, self.layer):
            if not sub.built:  # a deserialised sub-layer arrives built
                sub.build(input_shape)
        super().build(input_shape)

    @property
    def hashes(self):
        """Whether the wrapped layer hashes (has `compute_buckets` and a `buckets` call arg)."""
        return hashes(self.layer)

    def _kwargs(self, padding_mask, training, rng, num_hashes):
        kwargs = dict(padding_mask=padding_mask, training=training, rng=rng)
        if num_hashes is not None and self.hashes:
            kwargs["num_hashes"] = num_hashes  # only LSH attention has hash rounds
        return kwargs

    def call(self, x, padding_mask=None, training=None, rng=None, num_hashes=None,
             buckets=None, return_buckets=False):
        kwargs = self._kwargs(padding_mask, training, rng, num_hashes)
        if buckets is not None:
            kwargs["buckets"] = buckets
        if return_buckets:
            if not self.hashes:
                raise ValueError(f"{self.name}: `return_buckets` needs a layer that hashes, "
                                 f"got {type(self.layer).__name__}.")
            kwargs["return_buckets"] = True
        return self.layer(self.norm(x), **kwargs)

    def compute_buckets(self, x, padding_mask=None, training=None, rng=None, num_hashes=None):
        """The wrapped LSH layer's `compute_buckets` of LayerNorm(x): (B, H, n, Lp) int32."""
        return self.layer.compute_buckets(
            self.norm(x), **self._kwargs(padding_mask, training, rng, num_hashes))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(layer=keras.saving.serialize_keras_object(self.layer), epsilon=self.epsilon)
        return config
