"""tf.data input pipelines for the offline builders and the TFDS catalog, by dataset name.

`make_dataset(name, split, task=...)` loads a dataset with `tfds.load` and returns batched,
prefetched, seed-deterministic training elements (B = batch size, L = sequence length):

  modality     datasets                                  element (per batch)
  text         tiny_shakespeare, pg19, lm1b,             (inputs, targets) int32 (B, L), L = seq_len;
               shakespeare_plays                         next-token: targets = inputs shifted by one
  image        mnist, cifar10, imagenet_resized/64x64,   task image: (inputs, targets) int32 (B, H*W*C);
               downsampled_imagenet/64x64, mnist_5k,     targets = raster pixels 0..255, inputs =
               digits                                    [START=256] + pixels[:-1] (vocab 257).
                                                         task classifier: (pixels (B, H*W*C), label (B,))
  music        groove/full-midionly, bach_chorales       (inputs, targets) int32 (B, L), MIDI events
  translation  wmt14_translate/de-en                     ({"encoder_token_ids": source (B, L),
                                                         "decoder_token_ids": [pad] + target[:-1]},
                                                         target (B, L), weights float32 (B, L))
  duplication  duplication                               (inputs, targets, weights): (B, 2|w|+1), loss
                                                         only on the second copy of w.

Text is tokenised inside the pipeline by a graph-compatible tokenizer (`ByteTokenizer` by default,
tensorflow / tensorflow-text ops); MIDI is tokenised host side (`tf.numpy_function` +
`MidiEventTokenizer`; groove's drum tracks are read as pitched notes). Documents become fixed
(L + 1)-token windows either by packing (documents joined with eos, cut into windows) or by
random-offset crops (every window of a document from a random offset; fresh offset each visit).
All randomness is seeded (doc shuffle, window shuffle, offsets), so a seed fixes the batches.
"""
from __future__ import annotations

import dataclasses
import io
from typing import Optional

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

import reformer_keras.datasets.builders  # noqa: F401  (registers this package's TFDS builders)
from reformer_keras.datasets.registry import (IMAGE_START, IMAGE_VOCAB,  # noqa: F401
                                              TASK_MODALITIES, DatasetSpec, get_spec)

PACK_GROUP = 16  # documents concatenated per packing group


def _duplication_length(name: str) -> int:
    """2 * (word_length + 1) of a duplication config, read without preparing the data."""
    builder_cls = tfds.builder_cls("duplication")
    config = name.split(":")[0].split("/")[1] if "/" in name else \
        builder_cls.DEFAULT_BUILDER_CONFIG_NAME
    configs = {c.name: c for c in builder_cls.BUILDER_CONFIGS}
    if config not in configs:
        raise ValueError(f"unknown duplication config {config!r}; known: {sorted(configs)}")
    return configs[config].length


@dataclasses.dataclass(frozen=True)
class DataInfo:
    """What a model needs: vocabulary, input length, whether tokens are UTF-8 bytes."""

    spec: DatasetSpec
    task: str
    vocab_size: int
    seq_len: int
    byte_level: bool = False
    image_shape: Optional[tuple] = None
    num_classes: Optional[int] = None
    class_conditional: bool = False   # image task: start token 256 + label (num_classes)


def describe(name, task=None, seq_len=256, tokenizer=None) -> DataInfo:
    """`DataInfo` for `make_dataset(name, task=task, seq_len=seq_len)` (nothing is loaded)."""
    from reformer_keras.tokenizers import ByteTokenizer, MidiEventTokenizer
    task = task or _default_task(name)
    spec = get_spec(name, task)
    tokenizer = tokenizer or ByteTokenizer()
    if spec.modality == "image":
        length = int(np.prod(spec.image_shape))
        return DataInfo(spec, task, IMAGE_VOCAB if task == "image" else 256, length,
                        image_shape=spec.image_shape,
                        num_classes=1000 if "imagenet" in spec.name else 10)
    if spec.modality == "duplication":
        vocab = {c.name: c.vocab_size for c in tfds.builder_cls("duplication").BUILDER_CONFIGS}
        length = _duplication_length(name)
        config = name.split("/")[1] if "/" in name else "w127_v128"
        return DataInfo(spec, task, vocab[config.split(":")[0]], length - 1)
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be positive, got {seq_len}")
    if spec.modality == "music":
        return DataInfo(spec, task, MidiEventTokenizer().vocab_size, int(seq_len))
    return DataInfo(spec, task, tokenizer.vocab_size, int(seq_len),
                    byte_level=type(tokenizer).__name__ == "ByteTokenizer")


def _default_task(name):
    modality = get_spec(name).modality
    return next(t for t, ms in TASK_MODALITIES.items() if modality in ms)


def _windows(tokens, length):
    """int32 (n,) -> (n // length, length), dropping the remainder."""
    count = tf.shape(tokens)[0] // length
    return tf.reshape(tokens[:count * length], [count, length])


def _crop_windows(tokens, index, length, seed):
    """Every window of one document from a random offset in [0, length) (seeded per visit)."""
    offset = tf.random.stateless_uniform([], seed=tf.stack([tf.cast(seed, tf.int64), index]),
                                         maxval=length, dtype=tf.int32)
    offset = tf.minimum(offset, tf.maximum(tf.shape(tokens)[0] - length, 0))
    return _windows(tokens[offset:], length)


_MIDI_TOKENIZER = None


def midi_to_events(midi: bytes, drums_as_notes: bool = False) -> np.ndarray:
    """Standard MIDI file bytes -> `MidiEventTokenizer` ids int32 (n,) ending in eos.

    Unreadable files give an empty array (they are then dropped by the windowing).
    """
    import pretty_midi
    from reformer_keras.tokenizers import MidiEventTokenizer
    global _MIDI_TOKENIZER
    _MIDI_TOKENIZER = _MIDI_TOKENIZER or MidiEventTokenizer()
    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(bytes(midi)))
    except Exception:  # noqa: BLE001  (corrupt files occur in large corpora)
        return np.zeros([0], np.int32)
    if drums_as_notes:
        for instrument in pm.instruments:
            instrument.is_drum = False
    return _MIDI_TOKENIZER.encode(pm, add_eos=True)


def _documents(ds, spec, tokenizer):
    """Examples -> 1-D int32 token documents (text with eos; MIDI events with eos)."""
    key = spec.keys[0]
    if spec.modality == "music":
        drums = spec.name.startswith("groove")

        def encode(midi):
            out = tf.numpy_function(lambda m: midi_to_events(m, drums), [midi], tf.int32,
                                    stateful=False)
            return tf.ensure_shape(out, [None])
        return ds.map(lambda ex: encode(ex[key]))
    return ds.map(lambda ex: tokenizer.tokenize(ex[key], add_eos=True),
                  num_parallel_calls=tf.data.AUTOTUNE)


def _token_windows(ds, spec, tokenizer, seq_len, seed, training, packing):
    """Examples (text) or event documents (music) -> (seq_len + 1)-token windows, int32."""
    length = seq_len + 1
    if spec.modality == "text":
        ds = _documents(ds, spec, tokenizer)
    if (packing or spec.packing) == "pack":
        ds = ds.ragged_batch(PACK_GROUP).map(lambda docs: _windows(docs.flat_values, length))
        return ds.unbatch()
    ds = ds.enumerate().map(lambda i, doc: _crop_windows(doc, i, length, seed))
    if training:  # mix windows of several documents before the shuffle buffer
        return ds.interleave(tf.data.Dataset.from_tensor_slices, cycle_length=8)
    return ds.unbatch()


def _image_elements(ds, spec, task):
    height, width, channels = spec.image_shape

    def pixels(ex):
        image = ex["image"]
        if not image.shape.is_fully_defined() or tuple(image.shape) != spec.image_shape:
            image = tf.image.resize_with_crop_or_pad(image, height, width)
            image = tf.ensure_shape(image, spec.image_shape)
        return tf.reshape(tf.cast(image, tf.int32), [height * width * channels])

    if task == "classifier":
        return ds.map(lambda ex: (pixels(ex), tf.cast(ex["label"], tf.int32)))
    return ds.map(lambda ex: (lambda p: (tf.concat([[IMAGE_START], p[:-1]], 0), p))(pixels(ex)))


def _translation_elements(ds, spec, tokenizer, seq_len):
    source_key, target_key = spec.keys

    def fit(ids, length):  # truncate / right-pad with pad (0) to `length`
        ids = ids[:length]
        return tf.pad(ids, [[0, length - tf.shape(ids)[0]]])

    def element(ex):
        source = fit(tokenizer.tokenize(ex[source_key], add_eos=True), seq_len)
        target = fit(tokenizer.tokenize(ex[target_key], add_eos=True), seq_len)
        decoder_in = tf.concat([[tokenizer.pad_id], target[:-1]], 0)  # pad id starts decoding
        weights = tf.cast(tf.not_equal(target, tokenizer.pad_id), tf.float32)
        return {"encoder_token_ids": source, "decoder_token_ids": decoder_in}, target, weights
    return ds.map(element, num_parallel_calls=tf.data.AUTOTUNE)


def _epochs(ds, seed, shuffle, repeat, buffer=256):
    """Examples shuffled (seeded; a new order every epoch) and repeated if `repeat`.

    The sequence is fixed by `seed` for the FIRST iterator of the dataset; a second iterator
    continues the seeded reshuffling (the trainers create exactly one, see `loop.train`).
    """
    if shuffle:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.repeat() if repeat else ds


def load_examples(name, split, data_dir=None, download=True):
    """`tfds.load(name, split=split)` (files in order; offline builders prepared on demand)."""
    spec = get_spec(name)
    if spec.offline:
        return tfds.load(name, split=split, data_dir=data_dir, shuffle_files=False,
                     download=download)


def make_dataset(name, split=None, *, task=None, seq_len=256, batch_size=8, data_dir=None,
                 seed=0, training=True, repeat=None, tokenizer=None, packing=None,
                 input_context=None, shuffle_buffer=2048, take_examples=None, examples=None):
    """A batched `tf.data.Dataset` of training elements (see the module docstring for shapes).

    Args:
      name: a `DATASETS` name (optionally with a config, e.g. "duplication/tiny").
      split: TFDS split (default: the spec's train split if `training` else its eval split).
      task: "lm" | "image" | "music" | "seq2seq" | "classifier" (default: from the modality).
      seq_len: L for text / music / translation (images and duplication fix their own L).
      batch_size: the GLOBAL batch; with `input_context` each pipeline batches its share.
      data_dir: TFDS data directory.
      seed: seeds the document / window shuffles and the crop offsets.
      training: shuffle + (by default) repeat forever; False: one ordered pass.
      tokenizer: a text tokenizer (default `ByteTokenizer()`).
      packing: "pack" | "crop" (default: the spec's).
      input_context: a `tf.distribute.InputContext`: shard windows across input pipelines.
      take_examples: read only this many examples (quick tests / evaluation).
      examples: an already loaded example dataset (skips `tfds.load`).
    """
    from reformer_keras.tokenizers import ByteTokenizer
    info = describe(name, task, seq_len, tokenizer)
    spec, task = info.spec, info.task
    tokenizer = tokenizer or ByteTokenizer()
    split = split or (spec.splits[0] if training else spec.splits[1])
    repeat = training if repeat is None else repeat
    ds = examples if examples is not None else load_examples(name, split, data_dir)
    if take_examples:
        ds = ds.take(take_examples)
    if spec.modality == "music":  # parse MIDI once per pass-through, then reuse
        ds = _documents(ds, spec, tokenizer).cache()
    ds = _epochs(ds, seed, shuffle=training, repeat=repeat)
    if spec.modality in ("text", "music"):
        ds = _token_windows(ds, spec, tokenizer, info.seq_len, seed, training, packing)
        ds = ds.map(lambda w: (w[:-1], w[1:]))
    elif spec.modality == "image":
        ds = _image_elements(ds, spec, task)
    elif spec.modality == "translation":
        ds = _translation_elements(ds, spec, tokenizer, info.seq_len)
    else:  # duplication: loss on the second copy only
        ds = ds.map(lambda ex: (ex["tokens"][:-1], ex["tokens"][1:],
                                tf.cast(ex["loss_mask"][1:], tf.float32)))
    if training:  # same order for every new iterator (Keras re-creates them; resumes)
        ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=False)
    if input_context is not None:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    ds = ds.batch(batch_size, drop_remainder=True)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)
