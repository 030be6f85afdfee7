"""TensorFlow-only: every private Keras API the library uses, and nothing else.

Each helper here wraps one Keras internal for which Keras has no public equivalent; the rest of
the library calls these helpers (public names), never a private Keras member. `check()` verifies
that the installed Keras still has every one of them and raises one line naming the Keras version
and the missing attribute (the default test suite runs it: tests/test_keras_compat.py).

  PRIVATE_APIS entry                         used for (no public API does it)
  Optimizer._get_variable_index, Adam          `adam_slots`: the m / v slot variables of one
    ._momentums / ._velocities                 model variable (FusedAdam's fused update)
  Trainer._initial_epoch                       `set_initial_epoch`: the epoch `fit` resumes at,
                                               set from a callback's `on_train_begin` (as Keras's
                                               BackupAndRestore does)
  BackupAndRestore._load_model / _save_model / `BackupAndRestoreHooks`: atomic, self-consistent
    ._training_metadata_path / ._current_epoch   backups on Keras's own restore / backup schedule
  TensorFlowTrainer._maybe_symbolic_build      `build_from_batch`: what `fit` under a strategy
                                               builds the model from
  Trainer._symbolic_build                      `SymbolicBuildInputs`: the batch of that build
  keras.src.backend.tensorflow.trainer         `wrap_reduce_per_replica`: how `fit` reduces the
    .reduce_per_replica                        step's logs across workers
"""

import keras

# (object path, attribute): what `check` verifies. Object paths are resolved from `keras`.
PRIVATE_APIS = (
    ("optimizers.Optimizer", "_get_variable_index"),
    ("optimizers.Adam", "_momentums"),            # instance attributes: checked on a built Adam
    ("optimizers.Adam", "_velocities"),
    ("Model", "_initial_epoch"),                  # instance attribute: checked on a Model
    ("callbacks.BackupAndRestore", "_load_model"),
    ("callbacks.BackupAndRestore", "_save_model"),
    ("callbacks.BackupAndRestore", "_training_metadata_path"),
    ("callbacks.BackupAndRestore", "_current_epoch"),
    ("Model", "_maybe_symbolic_build"),
    ("Model", "_symbolic_build"),
    ("src.backend.tensorflow.trainer", "reduce_per_replica"),
)


def _instances():
    """One instance of each class whose private attributes are set in `__init__` / `build`."""
    adam = keras.optimizers.Adam()
    adam.build([keras.Variable(0.0)])
    return {"optimizers.Adam": adam, "Model": keras.Model(),
            "callbacks.BackupAndRestore": keras.callbacks.BackupAndRestore("unused")}


def check():
    """Raises RuntimeError (one line: the Keras version and the missing attribute) unless every
    entry of `PRIVATE_APIS` exists in the installed Keras."""
    import importlib  # pylint: disable=import-outside-toplevel
    instances = _instances()
    for path, attribute in PRIVATE_APIS:
        if path.startswith("src."):
            try:
                owner = importlib.import_module(f"keras.{path}")
            except ImportError:
                owner = None
        else:
            owner = instances.get(path)
            if owner is None:
                owner = keras
                for part in path.split("."):
                    owner = getattr(owner, part)
        if owner is None or not hasattr(owner, attribute):
            raise RuntimeError(f"Keras {keras.__version__} has no `keras.{path}.{attribute}`, "
                               "which reformer_keras needs (reformer_keras/tf_keras_compat.py): "
                               "install a Keras version in setup.py's range.")


def adam_slots(optimizer, variable):
    """(momentum, velocity): the slot variables of `variable` in a built Keras Adam."""
    index = optimizer._get_variable_index(variable)  # pylint: disable=protected-access
    return optimizer._momentums[index], optimizer._velocities[index]  # pylint: disable=protected-access


def set_initial_epoch(model, epoch):
    """Makes a running `model.fit` start at `epoch` (call from a callback's `on_train_begin`)."""
    model._initial_epoch = epoch  # pylint: disable=protected-access


class BackupAndRestoreHooks(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` whose restore and backup steps are public methods.

    Subclasses implement `restore_backup()` (at the start of training) and `write_backup()` (at
    Keras's backup points, `current_epoch` epochs done), reading / writing `metadata_path`.
    """

    @property
    def metadata_path(self):
        return self._training_metadata_path

    @property
    def current_epoch(self):
        return self._current_epoch

    def restore_backup(self):
        raise NotImplementedError

    def write_backup(self):
        raise NotImplementedError

    def _load_model(self):
        self.restore_backup()

    def _save_model(self):
        self.write_backup()


def build_from_batch(model, batch):
    """Makes `model.fit` under a strategy build the model from `batch` (a structure of tensors)
    instead of a first batch of its dataset."""
    trainer_cls = type(model)
    object.__setattr__(model, "_maybe_symbolic_build",
                       lambda iterator=None, data_batch=None:
                       trainer_cls._maybe_symbolic_build(model, data_batch=batch))  # pylint: disable=protected-access


class SymbolicBuildInputs:
    """Model mixin: `prepare_symbolic_build_batch(data_batch)` may rewrite the batch that Keras
    builds the model from under a distribution strategy (before any step is traced)."""

    def prepare_symbolic_build_batch(self, data_batch):
        return data_batch

    def _symbolic_build(self, iterator=None, data_batch=None):
        if data_batch is not None:
            data_batch = self.prepare_symbolic_build_batch(data_batch)
        return super()._symbolic_build(iterator=iterator, data_batch=data_batch)


def wrap_reduce_per_replica(make_wrapper):
    """Replaces the function `fit` reduces each step's logs with by `make_wrapper(original)`.
    Idempotent (a second call changes nothing)."""
    from keras.src.backend.tensorflow import trainer as tf_trainer  # pylint: disable=import-outside-toplevel
    original = tf_trainer.reduce_per_replica
    if getattr(original, "_reformer_wrapped", False):
        return
    wrapped = make_wrapper(original)
    wrapped._reformer_wrapped = True  # pylint: disable=protected-access
    tf_trainer.reduce_per_replica = wrapped
