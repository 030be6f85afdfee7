"""reformer_keras.datasets: TFDS registration, DATASETS metadata, the `load` wrapper, no network."""
import socket

import pytest
import tensorflow_datasets as tfds

import reformer_keras.datasets as rkd

NAMES = {"shakespeare_plays": "text", "bach_chorales": "music", "mnist_5k": "image",
         "digits": "image", "duplication": "synthetic"}


def test_network_is_off():
    with pytest.raises(OSError, match="network access is disabled"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_all_builders_are_registered_with_metadata(tmp_path):
    assert {name: spec.modality for name, spec in rkd.DATASETS.items()} == NAMES
    for name, spec in rkd.DATASETS.items():
        cls = tfds.builder_cls(name)
        assert cls is spec.builder and issubclass(cls, tfds.core.GeneratorBasedBuilder)
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
