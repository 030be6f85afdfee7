"""Checkpoint files of a model_dir: numeric order, pruning, fine-tuning starts, TensorBoard samples.

  checkpoint_paths(model_dir)  checkpoints/ckpt-<epoch>.keras sorted by epoch number (so
                               ckpt-10000 follows ckpt-9999)
  newest_checkpoint(path)      a .keras file itself, or the newest checkpoint of a model_dir
  KeepCheckpoints(dir, n)      callback: keeps the newest n checkpoints after every save
  init_weights_from(model, p)  copies every weight of a trained model (a .keras file or a
                               model_dir) into `model`; a missing or differently shaped weight
                               is a ValueError naming it
  log_samples(logdir, step, p) sample files -> TensorBoard (text, PNG image grids / piano rolls)
"""
import os
import re

import keras

_CKPT = re.compile(r"^ckpt-(\d+)\.keras$")


def checkpoint_paths(model_dir):
    """[(epoch, path)] of model_dir/checkpoints/ckpt-<epoch>.keras, oldest first."""
    directory = os.path.join(model_dir, "checkpoints")
    if not os.path.isdir(directory):
        return []
    found = ((_CKPT.match(name), name) for name in os.listdir(directory))
    return sorted((int(m.group(1)), os.path.join(directory, name)) for m, name in found if m)


def newest_checkpoint(path):
    """`path` if it is a .keras file, else the newest checkpoint of the model_dir `path`."""
    if os.path.isfile(path):
        return path
    found = checkpoint_paths(path)
    if not found:
        raise ValueError(f"no checkpoint under {os.path.join(path, 'checkpoints')}")
    return found[-1][1]


class KeepCheckpoints(keras.callbacks.Callback):
    """Deletes all but the newest `keep` checkpoints at the end of every epoch (after the
    checkpoint callback, which must come first in the callback list). keep=0: keeps all."""

    def __init__(self, model_dir, keep, write=True):
        super().__init__()
        self.model_dir, self.keep, self.write = model_dir, int(keep), write

    def on_epoch_end(self, epoch, logs=None):
        if not self.write or self.keep <= 0:
            return
        for _, path in checkpoint_paths(self.model_dir)[:-self.keep]:
            try:
                os.remove(path)
            except OSError:
                pass


def _weights_by_path(model):
    return {v.path: v for v in model.weights}


def init_weights_from(model, source):
    """Copies the weights of the trained model at `source` into the built `model`.

    Every weight of `model` must exist in the source under the same path with the same shape;
    non-trainable state (e.g. seeds) is copied too. Returns the checkpoint path read.
    Raises ValueError naming the first missing or mismatched weight.
    """
    from reformer_keras.training.loop import load_checkpoint
    try:
        trained, path = load_checkpoint(source)
    except (ValueError, OSError) as err:
        raise ValueError(f"cannot load {source!r}: {' '.join(str(err).split())[:200]}") from None
    if type(trained).__name__ != type(model).__name__:
        raise ValueError(f"{path} holds a {type(trained).__name__}, this run builds a "
                         f"{type(model).__name__}")
    theirs = _weights_by_path(trained)
    pairs = []
    for name, variable in _weights_by_path(model).items():
        if name not in theirs:
            raise ValueError(f"weight {name!r} is missing from {path}")
        if tuple(theirs[name].shape) != tuple(variable.shape):
            raise ValueError(f"weight {name!r} has shape {tuple(theirs[name].shape)} in {path}, "
                             f"this model needs {tuple(variable.shape)}")
        pairs.append((variable, theirs[name]))
    for variable, value in pairs:
        variable.assign(value)
    return path


def log_samples(logdir, step, paths):
    """Writes sample files to TensorBoard (logdir/samples): .txt as text, .png as images."""
    import tensorflow as tf
    writer = tf.summary.create_file_writer(os.path.join(logdir, "samples"))
    with writer.as_default():
        for path in paths:
            name = os.path.basename(path).split(".")[0].split("-")[0] or "sample"
            if path.endswith(".txt"):
                with open(path, encoding="utf-8", errors="replace") as f:
                    tf.summary.text(f"{name}/text", f.read(), step=step)
            elif path.endswith(".png"):
                image = tf.io.decode_png(tf.io.read_file(path), channels=3)
                kind = "piano_roll" if os.path.exists(path[:-4] + ".mid") else "images"
                tf.summary.image(f"{name}/{kind}", image[None], step=step)
    writer.flush()
    writer.close()
