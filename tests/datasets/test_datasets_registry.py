"""reformer_keras.datasets: TFDS registration, DATASETS metadata, the `load` wrapper, no network,
and a registry that imports without TensorFlow."""
import os
import socket
import subprocess
import sys

import pytest
import tensorflow_datasets as tfds

import reformer_keras.datasets as rkd
from reformer_keras.datasets import builders

NAMES = {"shakespeare_plays": "text", "bach_chorales": "music", "mnist_5k": "image",
         "digits": "image", "duplication": "duplication"}


def test_network_is_off():
    with pytest.raises(OSError, match="network access is disabled"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_all_builders_are_registered_with_metadata(tmp_path):
    offline = {name: spec for name, spec in rkd.DATASETS.items() if spec.offline}
    assert {name: spec.modality for name, spec in offline.items()} == NAMES
    assert sorted(builders.BUILDERS) == sorted(NAMES)
    for name, spec in offline.items():
        cls = tfds.builder_cls(name)
        assert cls is builders.BUILDERS[name] and cls is getattr(rkd, cls.__name__) and issubclass(cls, tfds.core.GeneratorBasedBuilder)
        assert str(cls.VERSION) == "1.0.0" and "1.0.0" in cls.RELEASE_NOTES
        if spec.configs:
            assert [c.name for c in cls.BUILDER_CONFIGS] == list(spec.configs)
            assert cls.DEFAULT_BUILDER_CONFIG_NAME == spec.configs[0]
        info = tfds.builder(name, data_dir=str(tmp_path)).info  # _info() only, nothing prepared
        assert info.description and info.citation, name
        assert set(info.features.keys()) == set(spec.features), name
        assert info.supervised_keys == spec.supervised_keys, name
    assert not any(tmp_path.iterdir())


def test_load_rejects_unknown_names(tmp_path):
    with pytest.raises(ValueError, match=r"'mnist'.*mnist_5k") as err:
        rkd.load("mnist", split="train", data_dir=str(tmp_path))
    for name in NAMES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="not_a_dataset/tiny"):
        rkd.load("not_a_dataset/tiny", data_dir=str(tmp_path))
    assert rkd.base_name("bach_chorales/tiny:1.0.0") == "bach_chorales"


def test_load_wrapper_prepares_and_loads(tmp_path):
    ds = rkd.load("duplication/tiny", split="test", data_dir=str(tmp_path))
    assert sum(1 for _ in ds) == 64
    image, label = next(iter(rkd.load("digits", split="train", data_dir=str(tmp_path),
                                      as_supervised=True)))
    assert image.shape == (8, 8, 1) and 0 <= int(label) < 10


def test_registry_imports_without_tensorflow():
    """`import reformer_keras.datasets` (registry, `load`) loads neither TF nor TFDS."""
    code = ("import sys, reformer_keras.datasets as d; d.get_spec('mnist', 'image'); "
            "bad = [m for m in ('tensorflow', 'tensorflow_datasets', 'keras') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
