"""`.keras` files and a SavedModel written by the model code before the configuration
dataclasses load with the current code and reproduce the logits that code computed."""
import pathlib
import tarfile

import keras
import numpy as np
import pytest

import reformer_keras.models  # noqa: F401  (registers the classes for load_model)

FIXTURES = pathlib.Path(__file__).parent / "fixtures"
EXPECTED = np.load(FIXTURES / "expected.npz")


def _inputs(task):
    keys = [k for k in EXPECTED.files if k.startswith(f"{task}/input")]
    if keys == [f"{task}/input"]:
        return EXPECTED[keys[0]]
    return {k.rsplit("/", 1)[1]: EXPECTED[k] for k in keys}


@pytest.mark.parametrize("task", ["lm", "image", "music", "classifier", "seq2seq"])
def test_old_keras_file_loads_and_reproduces_logits(task):
    model = keras.models.load_model(FIXTURES / f"{task}.keras")
    np.testing.assert_allclose(np.asarray(model(_inputs(task))), EXPECTED[f"{task}/logits"],
                               rtol=1e-5, atol=1e-6)
    again = type(model).from_config(model.get_config())   # the config round trip
    assert again.get_config() == model.get_config()


def test_old_savedmodel_reproduces_logits(tmp_path):
    """The SavedModel (a TensorFlow graph) loads beside the current package and gives the
    logits it gave when written."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    with tarfile.open(FIXTURES / "lm_savedmodel.tar.xz") as archive:
        archive.extractall(tmp_path, filter="data")
    loaded = tf.saved_model.load(str(tmp_path / "lm" / "1"))
    out = loaded.signatures["serving_default"](token_ids=tf.constant(_inputs("lm")))
    np.testing.assert_allclose(out["logits"].numpy(), EXPECTED["lm/savedmodel_logits"],
                               rtol=1e-5, atol=1e-6)
