"""tf.data pipelines of a checked `sources.Scan` (own files) or a TFDS catalog `DataSource`.

`make_source_dataset(scan, "train"|"validation", task=..., ...)` returns batched, prefetched,
seed-deterministic elements (B batch, L sequence length):

  task        element
  lm          (inputs, targets) int32 (B, L): text windows (documents packed with eos)
  music       (inputs, targets) int32 (B, L): MIDI event windows
  image       (inputs, targets) int32 (B, H*W*C): inputs = [start] + pixels[:-1], start = 256
              (unconditional) or 256 + label (class-conditional, `num_classes` set)
  classifier  images: (pixels int32 (B, H*W*C), label int32 (B,));
              text: ({"token_ids": int32 (B, L), "padding_mask": bool (B, L)}, label int32 (B,))
              (first L tokens, right-padded with the pad id)

Readers: .txt files with `tf.io.read_file` (byte ranges by `tf.strings.substr`), JSON lines /
CSV through Python's json / csv in `Dataset.from_generator`, class folders with
`keras.utils.image_dataset_from_directory` / `text_dataset_from_directory`, MIDI bytes with
`tf.io.read_file` tokenised by `pipelines.midi_to_events`, TFDS datasets with `tfds.load`.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from reformer_keras.datasets import pipelines
from reformer_keras.datasets.own_files import iter_texts
from reformer_keras.datasets.sources import DataError
from reformer_keras.datasets.registry import IMAGE_START, IMAGE_VOCAB, DatasetSpec

KERAS_SPLIT_SEED = 0  # seed of Keras' validation_split for class folders (fixed: same split)


def _utf8(strings, source):
    if source.decode_errors == "replace":
        return tf.strings.unicode_transcode(strings, "UTF-8", "UTF-8", errors="replace")
    return strings


def _class_folder_dataset(source, split):
    """keras.utils.{image,text}_dataset_from_directory, unbatched: (x, label int32)."""
    import keras
    root = source.validation[0] if split == "validation" and source.validation else \
        source.train[0]
    kwargs = dict(labels="inferred", label_mode="int", class_names=list(source.class_names),
                  batch_size=None, shuffle=True, seed=KERAS_SPLIT_SEED, verbose=False)
    if not source.validation and source.validation_fraction > 0:
        kwargs.update(validation_split=source.validation_fraction,
                      subset="validation" if split == "validation" else "training")
    elif split == "validation" and not source.validation:
        return None
    if source.modality == "image":
        ds = keras.utils.image_dataset_from_directory(
            root, color_mode=source.color_mode, image_size=tuple(source.image_size),
            interpolation="bilinear", crop_to_aspect_ratio=True, **kwargs)
        return ds.map(lambda x, y: {"image": tf.cast(tf.clip_by_value(tf.round(x), 0, 255),
                                                     tf.uint8), "label": tf.cast(y, tf.int32)})
    ds = keras.utils.text_dataset_from_directory(root, **kwargs)
    return ds.map(lambda x, y: {"text": _utf8(x, source), "label": tf.cast(y, tf.int32)})


def examples(scan, split):
    """The split's examples as dicts with the canonical keys ("text" [+ "label"], "image" +
    "label", "midi"), in file order (None if the split is empty)."""
    source = scan.source
    if source.kind == "tfds":
        return _tfds_examples(source, split, scan.data_dir)
    if source.layout == "class_folders":
        return _class_folder_dataset(source, split)
    if split not in ("train", "validation"):
        raise DataError("split", f"own files have the splits train and validation, not {split!r}")
    items = getattr(scan, split)
    if not items:
        return None
    if source.modality == "music":
        return tf.data.Dataset.from_tensor_slices(list(items)).map(
            lambda path: {"midi": tf.io.read_file(path)})
    records = [d for d in items if not d.path.lower().endswith(".txt")]
    if not records:  # only .txt: byte ranges read by TensorFlow
        paths = [d.path for d in items]
        starts = [d.start for d in items]
        ends = [-1 if d.end is None else d.end for d in items]

        def read(path, start, end):
            data = tf.io.read_file(path)
            end = tf.where(end < 0, tf.strings.length(data), end)
            return {"text": _utf8(tf.strings.substr(data, start, end - start), source)}
        return tf.data.Dataset.from_tensor_slices((paths, starts, ends)).map(read)
    classes = {name: i for i, name in enumerate(source.class_names)}

    def generate():
        for text, label in iter_texts(scan, split):
            if classes:
                yield text.encode("utf-8"), np.int32(classes[label])
            else:
                yield text.encode("utf-8")
    if classes:
        ds = tf.data.Dataset.from_generator(generate, output_signature=(
            tf.TensorSpec([], tf.string), tf.TensorSpec([], tf.int32)))
        return ds.map(lambda text, label: {"text": text, "label": label})
    ds = tf.data.Dataset.from_generator(generate,
                                        output_signature=tf.TensorSpec([], tf.string))
    return ds.map(lambda text: {"text": text})


def _tfds_examples(source, split, data_dir):
    import tensorflow_datasets as tfds
    named = {"train": source.train[0],
             "validation": source.validation[0] if source.validation else None}
    split_name = named.get(split, split)
    if split_name is None:
        return None
    ds = tfds.load(source.dataset, split=split_name, data_dir=data_dir, shuffle_files=False)
    keys = dict(source.features)

    def rename(ex):
        out = {}
        for canonical, key in keys.items():
            value = ex[key]
            out[canonical] = tf.cast(value, tf.int32) if canonical == "label" else value
        if "image" in out and source.image_size:
            image = tf.image.resize(out["image"], source.image_size, antialias=True)
            out["image"] = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return out
    return ds.map(rename)


def image_shape(source):
    """(H, W, C) of the images a source yields."""
    return (*source.image_size, 1 if source.color_mode == "grayscale" else 3)


def pipeline_spec(source):
    """A `DatasetSpec` describing the source for the shared window / image helpers."""
    keys = {"text": ("text",), "music": ("midi",), "image": ("image", "label")}[source.modality]
    shape = image_shape(source) if source.modality == "image" else None
    return DatasetSpec(name=source.dataset or "files", modality=source.modality, keys=keys,
                        splits=("train", "validation"), packing="pack", image_shape=shape)


def data_info(source, task, seq_len, tokenizer=None, num_classes=None):
    """The `pipelines.DataInfo` (vocabulary, input length, classes) of a source and task."""
    from reformer_keras.tokenizers import ByteTokenizer, MidiEventTokenizer
    spec = pipeline_spec(source)
    if source.modality == "image":
        shape = spec.image_shape
        vocab = 256 if task == "classifier" else IMAGE_VOCAB - 1 + max(num_classes or 0, 1)
        classes = len(source.class_names) or num_classes
        return pipelines.DataInfo(spec, task, vocab, int(np.prod(shape)), image_shape=shape,
                                  num_classes=num_classes if task == "image" else classes,
                                  class_conditional=task == "image" and bool(num_classes))
    if source.modality == "music":
        return pipelines.DataInfo(spec, task, MidiEventTokenizer().vocab_size, int(seq_len))
    tokenizer = tokenizer or ByteTokenizer()
    return pipelines.DataInfo(spec, task, tokenizer.vocab_size, int(seq_len),
                              byte_level=type(tokenizer).__name__ == "ByteTokenizer",
                              num_classes=len(source.class_names) or None)


class HostSentencePiece:
    """A SentencePiece tokenizer run host side (`tf.numpy_function` + the sentencepiece
    package) for input pipelines: the tensorflow_text op's resource cannot be captured by a
    dataset that tf.distribute places. Same ids as `SentencePieceTokenizer`; scalar input only:
    tf.string () -> int32 (n,)."""

    def __init__(self, tokenizer):
        import sentencepiece as spm
        self._processor = spm.SentencePieceProcessor()
        self._processor.LoadFromSerializedProto(tokenizer.model_proto)
        self.vocab_size, self.pad_id = tokenizer.vocab_size, tokenizer.pad_id
        self.eos_id = tokenizer.eos_id

    def tokenize(self, text, add_eos=False):
        def encode(data):
            ids = self._processor.EncodeAsIds(data.decode("utf-8", "replace"))
            return np.asarray(ids + ([self.eos_id] if add_eos else []), np.int32)
        ids = tf.numpy_function(encode, [text], tf.int32, stateful=False)
        return tf.ensure_shape(ids, [None])

    def detokenize(self, ids):
        """int (n,) -> tf.string (), pad / eos dropped (eager)."""
        ids = [int(i) for i in np.asarray(ids).reshape(-1) if i not in (self.pad_id, self.eos_id)]
        return tf.constant(self._processor.DecodeIds(ids))


def pipeline_tokenizer(tokenizer):
    """The tokenizer an input pipeline uses (SentencePiece: `HostSentencePiece`)."""
    if type(tokenizer).__name__ == "SentencePieceTokenizer":
        return HostSentencePiece(tokenizer)
    return tokenizer


def _image_elements(ds, shape, task, num_classes):
    size = int(np.prod(shape))

    def element(ex):
        pixels = tf.reshape(tf.cast(ex["image"], tf.int32), [size])
        if task == "classifier":
            return pixels, ex["label"]
        start = IMAGE_START + (ex["label"] if num_classes else 0)
        return tf.concat([[start], pixels[:-1]], 0), pixels
    return ds.map(element)


def _text_classes(ds, tokenizer, seq_len):
    def element(ex):
        ids = tokenizer.tokenize(ex["text"])[:seq_len]
        length = tf.shape(ids)[0]
        ids = tf.ensure_shape(tf.pad(ids, [[0, seq_len - length]],
                                     constant_values=tokenizer.pad_id), [seq_len])
        mask = tf.range(seq_len) < length
        return {"token_ids": ids, "padding_mask": mask}, ex["label"]
    return ds.map(element, num_parallel_calls=tf.data.AUTOTUNE)


def make_source_dataset(scan, split, *, task, seq_len, batch_size, seed=0, training=True,
                        repeat=None, tokenizer=None, num_classes=None, input_context=None,
                        shuffle_buffer=2048, batched=True):
    """Batched training elements of a split (module docstring), or None for an empty split.

    Args:
      scan: `sources.Scan` (own files) or a scan-like object of a TFDS source (`files.TfdsScan`).
      split: "train" or "validation". training: shuffle (seeded) and, by default, repeat.
      num_classes: image task: class-conditional start tokens when set.
      batched: False returns unbatched, unshuffled, unrepeated elements (for checks).
    """
    from reformer_keras.tokenizers import ByteTokenizer
    source = scan.source
    tokenizer = pipeline_tokenizer(tokenizer or ByteTokenizer())
    ds = examples(scan, split)
    if ds is None:
        return None
    repeat = training if repeat is None else repeat
    if not batched:
        training, repeat = False, False
    spec = pipeline_spec(source)
    if source.modality == "music":
        ds = pipelines._documents(ds, spec, tokenizer).cache()  # noqa: SLF001
    ds = pipelines._epochs(ds, seed, shuffle=training, repeat=repeat)  # noqa: SLF001
    if source.modality == "image":
        ds = _image_elements(ds, spec.image_shape, task, num_classes)
    elif task == "classifier":
        ds = _text_classes(ds, tokenizer, int(seq_len))
    else:
        ds = pipelines._token_windows(ds, spec, tokenizer, int(seq_len), seed,  # noqa: SLF001
                                      training, "pack")
        ds = ds.map(lambda w: (w[:-1], w[1:]))
    if not batched:
        return ds
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed + 1, reshuffle_each_iteration=False)
    if input_context is not None:
        ds = ds.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    ds = ds.batch(batch_size, drop_remainder=training or repeat)
    options = tf.data.Options()
    options.deterministic = True
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return ds.with_options(options).prefetch(tf.data.AUTOTUNE)


def check_nonempty(scan, split, task, seq_len, tokenizer=None, num_classes=None):
    """Raises DataError if a split yields no element (text / MIDI shorter than one window)."""
    ds = make_source_dataset(scan, split, task=task, seq_len=seq_len, batch_size=1,
                             tokenizer=tokenizer, num_classes=num_classes, batched=False)
    if ds is None:
        return
    for _ in ds.take(1):
        return
    what = "training" if split == "train" else "validation"
    flag = "seq_len" if split == "train" else "validation_fraction"
    raise DataError(flag, f"the {what} data is shorter than one window of --seq_len={seq_len} "
                          "+ 1 tokens" + ("" if split == "train" else
                                          " (use more data, or --validation_fraction=0)"))
