"""TensorFlow-only: `FusedAdam`, Keras's Adam with one fused kernel per variable.

`keras.optimizers.Adam` writes its update with `keras.ops`: on the TensorFlow backend that is
about 45 graph ops per variable (the bias-correction powers recomputed for every variable, then
the two moment updates and the variable update, each as separate element-wise ops with their
own temporaries). `FusedAdam` computes the step's scalars once per `apply` and updates each
variable with TensorFlow's `ResourceApplyAdam` kernel, in place. The math is Keras's
(epsilon added to sqrt(v), bias correction folded into the step size):

    lr_t = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    m <- m + (g - m) * (1 - beta_1);   v <- v + (g^2 - v) * (1 - beta_2)
    w <- w - lr_t * m / (sqrt(v) + epsilon)

Everything else is Keras's: the slot variables (so checkpoints and `BackupAndRestore` state are
interchangeable with `keras.optimizers.Adam`), clipping, weight decay, gradient accumulation,
loss scaling, tf.distribute updates, serialization. `amsgrad=True` falls back to Keras's update.

One difference: a sparse gradient (`tf.IndexedSlices`, an embedding lookup's) is densified, so
Adam sees the gradient it stands for, duplicate rows summed, as in PyTorch's Adam and Keras 2's.
Keras 3's Adam applies the element-wise update to each duplicate row separately, so its second
moment gets the sum of the rows' squares instead of the square of their sum.

Measured on the 12-layer peer LM (docs/benchmarks.md): the train step's graph has
1,409 instead of 6,278 ops and the process heap after two steps is 189 MB against 248 MB.
"""

import keras
import tensorflow as tf

from reformer_keras import tf_keras_compat


@keras.saving.register_keras_serializable(package="reformer_keras")
class FusedAdam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` (same arguments, same slots, the same updates for dense gradients)
    with TensorFlow's fused `ResourceApplyAdam` kernel per variable. TensorFlow backend only."""

    _step_scalars = None  # per `apply` call: {dtype: scalar tensors}

    def apply(self, grads, trainable_variables=None):
        # One set of scalars for all variables of this step. Under a MirroredStrategy each
        # replica thread sets a fresh dict before the merged update runs, so the update never
        # sees another step's scalars.
        self._step_scalars = {}
        try:
            return super().apply(grads, trainable_variables)
        finally:
            self._step_scalars = None

    def _scalars(self, dtype, learning_rate):
        """(beta_1^t, beta_2^t, lr, beta_1, beta_2, epsilon) as `dtype` scalars, t = step + 1."""
        cache = self._step_scalars
        if cache is not None and dtype in cache:
            return cache[dtype]
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        scalars = (tf.pow(beta_1, step), tf.pow(beta_2, step), tf.cast(learning_rate, dtype),
                   beta_1, beta_2, tf.cast(self.epsilon, dtype))
        if cache is not None:
            cache[dtype] = scalars
        return scalars

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        m, v = tf_keras_compat.adam_slots(self, variable)
        power_1, power_2, lr, beta_1, beta_2, epsilon = self._scalars(variable.dtype,
                                                                      learning_rate)
        if isinstance(gradient, tf.IndexedSlices):  # duplicate rows summed (module docstring)
            gradient = tf.convert_to_tensor(gradient)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable), m=_handle(m), v=_handle(v), beta1_power=power_1,
            beta2_power=power_2, lr=lr, beta1=beta_1, beta2=beta_2, epsilon=epsilon,
            grad=tf.cast(gradient, variable.dtype))
        return None


def _handle(variable):
    """The resource handle behind a Keras or tf.Variable (inside a tf.distribute update: the
    current replica's component)."""
    if isinstance(variable, keras.Variable):
        variable = variable.value
    return variable.handle
