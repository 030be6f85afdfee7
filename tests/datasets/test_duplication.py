"""duplication: every example is 0 w 0 w, and the seed makes the data reproducible."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

import reformer_keras.datasets.builders  # noqa: F401  (registers the builders)

WORD, VOCAB, SIZES = 15, 16, {"train": 256, "test": 64}  # the "tiny" config


def _load(data_dir):
    splits = tfds.load("duplication/tiny", data_dir=str(data_dir))
    out = {}
    for split, ds in splits.items():
        exs = list(tfds.as_numpy(ds))
        out[split] = (np.stack([e["tokens"] for e in exs]), np.stack([e["loss_mask"] for e in exs]))
    return out


def _sorted_rows(a):
    return a[np.lexsort(a.T[::-1])]


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    return _load(tmp_path_factory.mktemp("duplication_a"))


def test_structure_of_every_example(loaded):
    length = 2 * (WORD + 1)
    for split, (tokens, mask) in loaded.items():
        assert tokens.shape == (SIZES[split], length) and tokens.dtype == np.int32
        assert mask.shape == tokens.shape and mask.dtype == np.int32
        assert (tokens[:, 0] == 0).all() and (tokens[:, WORD + 1] == 0).all()
        first, second = tokens[:, 1:WORD + 1], tokens[:, WORD + 2:]
        np.testing.assert_array_equal(first, second)
        assert first.min() >= 1 and first.max() <= VOCAB - 1
        expected_mask = np.zeros(length, np.int32)
        expected_mask[WORD + 2:] = 1
        assert (mask == expected_mask).all()
        # Only the second copy is scored: the masked targets are exactly w.
        np.testing.assert_array_equal(tokens[mask == 1].reshape(-1, WORD), first)


def test_seeded_generation_is_reproducible(loaded, tmp_path_factory):
    again = _load(tmp_path_factory.mktemp("duplication_b"))
    for split, stream in (("train", 0), ("test", 1)):
        np.testing.assert_array_equal(_sorted_rows(loaded[split][0]), _sorted_rows(again[split][0]))
        # The documented recipe: np.random.default_rng([seed, stream]).integers(1, vocab, (n, |w|)).
        words = np.random.default_rng([0, stream]).integers(1, VOCAB, size=(SIZES[split], WORD))
        np.testing.assert_array_equal(_sorted_rows(loaded[split][0][:, 1:WORD + 1]),
                                      _sorted_rows(words))
    # Train and test come from different streams: no sequence is shared.
    train_rows = {row.tobytes() for row in loaded["train"][0]}
    assert not train_rows & {row.tobytes() for row in loaded["test"][0]}


def test_configs(tmp_path):
    builder_cls = tfds.builder_cls("duplication")
    configs = {c.name: c for c in builder_cls.BUILDER_CONFIGS}
    default = configs[builder_cls.DEFAULT_BUILDER_CONFIG_NAME]
    assert (default.name, default.word_length, default.vocab_size, default.length) == (
        "w127_v128", 127, 128, 256)
    assert (default.num_train, default.num_test) == (50_000, 1_000)
    assert configs["w511_v128"].length == 1024
    info = tfds.builder("duplication", data_dir=str(tmp_path)).info
    assert info.features["tokens"].shape == (256,)


@pytest.mark.slow
def test_full_default_config(tmp_path):
    builder = tfds.builder("duplication", data_dir=str(tmp_path))
    builder.download_and_prepare()
    assert builder.info.splits["train"].num_examples == 50_000
    ds = builder.as_dataset(split="test")
    for ex in tfds.as_numpy(ds.take(100)):
        t = ex["tokens"]
        assert t[0] == 0 and t[128] == 0 and (t[1:128] == t[129:]).all() and t[1:128].min() >= 1
