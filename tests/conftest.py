"""Shared pytest set-up: quiet TF logs, a fixed number of threads, fresh Keras state per test."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from reformer_keras import runtime  # noqa: E402

runtime.configure_cpu()  # the settings the library is tuned with, before TensorFlow loads
import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from float32 and an empty Keras session."""
    keras.config.set_dtype_policy("float32")
    keras.utils.clear_session()
    yield
    keras.config.set_dtype_policy("float32")


_TWO_CPUS = """import sys
from reformer_keras import runtime
runtime.configure_cpu()
import tensorflow as tf
_cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(_cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, sys.argv[1])  # the calling test's directory: its module is importable
"""


@pytest.fixture
def run_on_two_cpus(request):
    """`run(script, *args) -> dict`: runs `script` in a fresh Python whose CPU is split into two
    logical devices (they must exist before TensorFlow starts: hence a subprocess), with
    sys.argv = [.., test directory, *args]; returns the JSON of its last stdout line."""
    import json
    import subprocess
    import sys

    here = os.path.dirname(str(request.fspath))

    def run(script, *args):
        proc = subprocess.run([sys.executable, "-c", _TWO_CPUS + script, here, *args],
                              capture_output=True, text=True, timeout=600,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                              env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run
