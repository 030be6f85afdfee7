"""`TrainStateMixin`: a task's weights and optimizer slots exist before Keras traces a step.

Without a distribution strategy, Keras defers building to the first traced step: the model's
weights and the optimizer's slots are then created inside the step's `tf.function`, which
makes TensorFlow trace the step twice (once to create the variables, once to run). Measured on
the 12-layer peer LM at 1K tokens: the process heap after the first step (trimmed) is 317 MB
that way against 212 MB with the variables built beforehand, and the first step takes 12.8 s
against 6.5-7.5 s (`python -m benchmarks.first_step`; docs/benchmarks.md, session 12).

Under a strategy Keras already builds both before tracing (`Trainer._symbolic_build`); the mixin
does the same in every case, so `fit`, `evaluate`, `predict` and the `*_on_batch` methods trace
their step once. The tasks' weights do not depend on the sequence length, so they are built
for an unknown batch and length (`build_input_shape`).
"""


class TrainStateMixin:
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
