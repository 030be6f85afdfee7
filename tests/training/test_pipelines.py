"""tf.data pipelines: every catalog dataset under tfds.testing.mock_data, every offline builder
prepared into a temp dir, the registry's errors, determinism and multi-worker sharding."""
import io

import numpy as np
import pretty_midi
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from reformer_keras.datasets import pipelines
from reformer_keras.tokenizers import ByteTokenizer

SEQ, BATCH = 8, 2
CATALOG = {  # name -> (task, expected (inputs shape, targets shape) per batch)
    "tiny_shakespeare": ("lm", (SEQ,), (SEQ,)),
    "pg19": ("lm", (SEQ,), (SEQ,)),
    "lm1b": ("lm", (SEQ,), (SEQ,)),
    "mnist": ("image", (784,), (784,)),
    "cifar10": ("image", (3072,), (3072,)),
    "imagenet_resized/64x64": ("image", (12288,), (12288,)),
    "downsampled_imagenet/64x64": ("image", (12288,), (12288,)),
    "groove/full-midionly": ("music", (SEQ,), (SEQ,)),
    "wmt14_translate/de-en": ("seq2seq", None, (SEQ,)),
}


def _midi_bytes(seed):
    """A small valid drum MIDI (groove's are drum tracks)."""
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for i in range(40):
        start = 0.125 * i
        drums.notes.append(pretty_midi.Note(int(rng.integers(20, 100)), int(rng.choice([36, 38, 42])),
                                            start, start + 0.1))
    pm.instruments.append(drums)
    out = io.BytesIO()
    pm.write(out)
    return out.getvalue()


def _groove_as_dataset(self, *args, **kwargs):
    """mock_data replacement for groove: random bytes are not MIDI, so serve real MIDI files."""
    del self, args, kwargs
    return tf.data.Dataset.from_tensor_slices({"midi": [_midi_bytes(i) for i in range(4)],
                                               "id": [f"drummer{i}" for i in range(4)]})


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_catalog_pipeline_under_mock_data(name):
    task, in_shape, out_shape = CATALOG[name]
    mock = dict(as_dataset_fn=_groove_as_dataset) if name.startswith("groove") else {}
    with tfds.testing.mock_data(num_examples=6, **mock):
        ds = pipelines.make_dataset(name, task=task, seq_len=SEQ, batch_size=BATCH, seed=1,
                                    shuffle_buffer=4)
        batches = list(ds.take(2))
    assert len(batches) == 2
    for batch in batches:
        inputs, targets = batch[0], batch[1]
        assert targets.dtype == tf.int32 and tuple(targets.shape) == (BATCH,) + out_shape
        if task == "seq2seq":
            assert set(inputs) == {"encoder_token_ids", "decoder_token_ids"}
            for value in inputs.values():
                assert value.dtype == tf.int32 and tuple(value.shape) == (BATCH, SEQ)
            assert batch[2].dtype == tf.float32 and tuple(batch[2].shape) == (BATCH, SEQ)
            np.testing.assert_array_equal(inputs["decoder_token_ids"][:, 1:], targets[:, :-1])
            continue
        assert inputs.dtype == tf.int32 and tuple(inputs.shape) == (BATCH,) + in_shape
        if task == "image":  # raster tokens: start 256, then pixels shifted by one
            assert np.all(inputs[:, 0] == 256) and int(tf.reduce_max(targets)) <= 255
            np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
        else:
            np.testing.assert_array_equal(inputs[:, 1:], targets[:, :-1])
            vocab = 390 if task == "music" else 258
            assert int(tf.reduce_max(targets)) < vocab


def test_classifier_task_on_catalog_images():
    with tfds.testing.mock_data(num_examples=4):
        x, y = next(iter(pipelines.make_dataset("cifar10", task="classifier", batch_size=2,
                                                shuffle_buffer=2)))
    assert x.shape == (2, 3072) and y.shape == (2,) and y.dtype == tf.int32


OFFLINE = {  # name -> (task, seq_len, inputs shape)
    "shakespeare_plays": ("lm", 32, (32,)),
    "bach_chorales/tiny": ("music", 32, (32,)),
    "mnist_5k": ("image", None, (784,)),
    "digits": ("image", None, (64,)),
    "duplication/tiny": ("lm", None, (31,)),
}


@pytest.mark.parametrize("name", sorted(OFFLINE))
def test_offline_builder_pipeline(name, shared_data_dir):
    task, seq_len, shape = OFFLINE[name]
    ds = pipelines.make_dataset(name, task=task, seq_len=seq_len or 8, batch_size=BATCH,
                                data_dir=shared_data_dir, seed=0, shuffle_buffer=16)
    batch = next(iter(ds))
    assert tuple(batch[0].shape) == (BATCH,) + shape and batch[0].dtype == tf.int32
    assert tuple(batch[1].shape) == (BATCH,) + shape
    np.testing.assert_array_equal(batch[0][:, 1:], batch[1][:, :-1])
    if name == "shakespeare_plays":  # readable bytes
        text = ByteTokenizer().detokenize(batch[0][0]).numpy()
        assert len(text) >= 16 and all(32 <= b < 127 or b in (9, 10) for b in text[:16])
    if name.startswith("duplication"):  # loss only on the second copy of w
        weights = batch[2].numpy()
        assert weights.dtype == np.float32 and (weights[:, :16] == 0).all()
        assert (weights[:, 16:] == 1).all()
        np.testing.assert_array_equal(batch[1][:, 16:], batch[1][:, :15 + 1][:, :15])
    evaluation = pipelines.make_dataset(name, task=task, seq_len=seq_len or 8, batch_size=BATCH,
                                        data_dir=shared_data_dir, training=False)
    assert next(iter(evaluation))[0].shape == batch[0].shape


def test_same_seed_same_batches_and_other_seed_differs(shared_data_dir):
    def first(seed):
        ds = pipelines.make_dataset("shakespeare_plays", seq_len=32, batch_size=4, seed=seed,
                                    data_dir=shared_data_dir, shuffle_buffer=64)
        return np.concatenate([b[0].numpy() for b in ds.take(3)])
    np.testing.assert_array_equal(first(3), first(3))
    assert not np.array_equal(first(3), first(4))


def test_input_context_shards_the_global_batch(shared_data_dir):
    kwargs = dict(task="lm", batch_size=8, data_dir=shared_data_dir, seed=0, shuffle_buffer=32)
    whole = next(iter(pipelines.make_dataset("duplication/tiny", **kwargs)))[0].numpy()
    parts = []
    for i in range(2):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=i,
                                         num_replicas_in_sync=2)
        part = next(iter(pipelines.make_dataset("duplication/tiny", input_context=ctx,
                                                **kwargs)))[0].numpy()
        assert part.shape == (4, 31)
        parts.append(part)
    assert sorted(map(bytes, whole)) == sorted(map(bytes, np.concatenate(parts)))


def test_packing_and_crops_of_documents():
    docs = tf.data.Dataset.from_tensor_slices({"text": ["abcdefgh", "ijklmnopqrstu", "vw"]})
    packed = pipelines.make_dataset("lm1b", seq_len=4, batch_size=1, training=False,
                                    examples=docs)
    windows = [ByteTokenizer().detokenize(np.concatenate([x[0], y[0, -1:]])).numpy()
               for x, y in packed]
    # joined with eos (dropped by detokenize): abcdefgh|ijklmnopqrstu|vw -> 5-token windows
    assert windows[:2] == [b"abcde", b"fgh" + b"i"] and len(windows) == 5
    cropped = pipelines.make_dataset("tiny_shakespeare", seq_len=4, batch_size=1,
                                     training=False, examples=docs, seed=5)
    for x, y in cropped:  # every window lies inside one document
        text = ByteTokenizer().detokenize(np.concatenate([x[0], y[0, -1:]])).numpy()
        assert any(text in d for d in (b"abcdefgh\x00", b"ijklmnopqrstu"))


@pytest.mark.parametrize("name,task,match", [
    ("nope", "lm", "unknown dataset 'nope'"),
    ("mnist", "lm", "does not fit task 'lm'"),
    ("shakespeare_plays", "image", "does not fit task 'image'"),
    ("downsampled_imagenet/64x64", "classifier", "no labels"),
    ("mnist", "regression", "unknown task"),
])
def test_registry_errors(name, task, match):
    with pytest.raises(ValueError, match=match):
        pipelines.get_spec(name, task)


def test_registry_configs():
    assert pipelines.get_spec("duplication/tiny").name == "duplication"
    assert pipelines.get_spec("imagenet_resized/32x32").image_shape == (32, 32, 3)
    assert pipelines.describe("duplication/tiny").seq_len == 31
    assert pipelines.describe("digits", "classifier").vocab_size == 256
