"""`LayerNorm`: Keras' LayerNormalization with a lean TensorFlow gradient."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="reformer_keras")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` (same arguments, weights and outputs) whose gradient
    on the TensorFlow backend keeps only its input and two per-position statistics from the
    forward pass (`tf_layer_norm`): it does not hold full-size intermediates of the norm for the
    backward pass, which matters in a reversible block's recompute and in the LM's final norm.

    Normalising over the last axis with `center` and `scale` and without `rms_scaling` takes the
    lean path; every other configuration, and other backends, use the Keras op.

    Call: x (..., D) -> (..., D) in the layer's compute dtype.
    """

    def lean_for_rank(self, rank):
        """Whether inputs of this rank take the lean TensorFlow path."""
        axes = self.axis if isinstance(self.axis, (list, tuple)) else [self.axis]
        return (keras.backend.backend() == "tensorflow" and self.center and self.scale
                and not self.rms_scaling and [a % rank for a in axes] == [rank - 1])

    def _lean(self, inputs):
        return self.lean_for_rank(len(inputs.shape))

    def call(self, inputs):
        if not self._lean(inputs):
            return super().call(inputs)
        from reformer_keras.layers import tf_layer_norm  # pylint: disable=import-outside-toplevel
        out = tf_layer_norm.layer_norm(inputs, self.gamma, self.beta, self.epsilon)
        return ops.cast(out, self.compute_dtype)
