"""Shared pytest set-up: quiet TF logs, a fixed number of threads, fresh Keras state per test."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import reformer_keras  # noqa: E402,F401  (TF CPU runtime settings, before TensorFlow)
import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from float32 and an empty Keras session."""
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session()
    yield
    keras.config.set_dtype_policy("float32")
