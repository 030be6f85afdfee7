"""`TrainStateMixin`: a task's weights and optimizer slots exist before Keras traces a step.

Without a distribution strategy, Keras defers building to the first traced step: the model's
weights and the optimizer's slots are then created inside the step's `tf.function`, which
makes TensorFlow trace the step twice (once to create the variables, once to run). Measured on
the 12-layer peer LM at 1K tokens: the process heap after the first step (trimmed) is 317 MB
that way against 212 MB with the variables built beforehand, and the first step takes 12.8 s
against 6.5-7.5 s (`python -m benchmarks.first_step`; docs/benchmarks.md).

Under a strategy Keras already builds both before tracing (its symbolic build); the mixin
does the same in every case, so `fit`, `evaluate`, `predict` and the `*_on_batch` methods trace
their step once. The tasks' weights do not depend on the sequence length, so they are built
for an unknown batch and length (`build_input_shape`).

With several replicas, Keras averages the first distributed batch before its symbolic build,
which turns integer ids into floats; the mixin gives inputs and targets back their integer
dtype (`prepare_symbolic_build_batch`), so every task fits under a multi-device
MirroredStrategy.
"""

import keras

from reformer_keras.tf_keras_compat import SymbolicBuildInputs


class TrainStateMixin(SymbolicBuildInputs):
    """Builds the model (and, for training, the optimizer) before Keras makes a step function.

    Subclasses may override `build_input_shape()`: the `input_shape` handed to `build`
    (default `(None, None)`: token ids of any batch and length).
    """

    def build_input_shape(self):
        return (None, None)

    def build_train_state(self, optimizer=True):
        """Creates the model's variables and, with `optimizer`, the compiled optimizer's."""
        if not self.built:
            self.build(self.build_input_shape())
        opt = getattr(self, "optimizer", None) if optimizer else None
        if opt is not None and not opt.built:
            opt.build(self.trainable_variables)

    def make_train_function(self, force=False):
        self.build_train_state()
        return super().make_train_function(force=force)

    def make_test_function(self, force=False):
        self.build_train_state(optimizer=False)
        return super().make_test_function(force=force)

    def make_predict_function(self, force=False):
        self.build_train_state(optimizer=False)
        return super().make_predict_function(force=force)

    def prepare_symbolic_build_batch(self, data_batch):
        # Under a strategy with several replicas, Keras's TF trainer reduces the first
        # distributed batch with MEAN before its symbolic build, which makes integer token ids
        # and labels float (and the model's input check then rejects them). Inputs and targets
        # are integer ids for every task here: hand them back as int32. Sample weights stay.
        x, y, weights = keras.utils.unpack_x_y_sample_weight(data_batch)
        return keras.utils.pack_x_y_sample_weight(_as_ids(x), _as_ids(y), weights)


def _as_ids(structure):
    """Float id tensors in `structure` cast to int32: a tensor, or the `*token_ids` entries of a
    dict (a padding mask keeps its dtype)."""
    def cast(t):
        is_float = t is not None and keras.backend.is_float_dtype(
            keras.backend.standardize_dtype(t.dtype))
        return keras.ops.cast(t, "int32") if is_float else t
    if isinstance(structure, dict):
        return {k: cast(v) if k.endswith("token_ids") else v for k, v in structure.items()}
    return keras.tree.map_structure(cast, structure)
