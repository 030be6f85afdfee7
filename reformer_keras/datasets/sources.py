"""Where a run's data comes from: a user's own files, or any TFDS catalog dataset by name.

Pure Python (no TensorFlow import): the trainers build and check a `DataSource` before a model
is built, so a bad file or flag fails in a second with one line naming it. `own_files.py` holds
the checks of own files, `catalog.py` the TFDS catalog source, and `files.py` turns a checked
source into tf.data pipelines.

Own files (`DataSource.kind == "files"`), by modality:

  text   `--train_files=GLOB[,GLOB...]` of .txt (one document per file), .jsonl / .json (JSON
         lines, the document under `--text_key`) or .csv (header row, column `--text_key`).
         Text must be UTF-8: a file that is not is an error naming the file and the byte offset,
         unless `decode_errors="replace"` (U+FFFD for every bad byte). A file with a NUL byte is
         binary, never text (an error in both modes). Labelled text (task classifier): a
         directory with one sub-folder of .txt files per class, or JSON lines / CSV with
         `--label_key`.
  image  a directory with one sub-folder per class (the `keras.utils.image_dataset_from_directory`
         convention; .bmp .gif .jpeg .jpg .png). Every file must decode (checked with Pillow up
         front). Size rule: each image is centre-cropped to the aspect ratio of `image_size` and
         resized (bilinear) to `image_size` (default 32x32); `color_mode` "auto" is grayscale
         when every training image is grayscale, else RGB. Labels are the sorted sub-folder names.
  music  .mid / .midi files. Every file is parsed up front (pretty_midi); unreadable files (or
         files without notes) are skipped and reported by name; no usable file is an error.

Validation data: `--validation_files` (same form as `--train_files`), else a held-out fraction
`validation_fraction`, by file: globs hold out the files whose CRC-32 of their path relative to
the glob's fixed prefix falls in the lowest fraction (deterministic, stable when files are
added); at least one file when there are two or more. A single text file holds out its last
fraction instead (cut at a line break). Class folders use Keras' own rule (`validation_split`
with a fixed seed).

TFDS (`kind == "tfds"`): `name[:version]` with the feature names of the text / image / label
and split strings with slicing (`train[:95%]`).
"""
from __future__ import annotations

import dataclasses
import os
import zlib
from typing import Optional

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # as image_dataset_from_directory
MIDI_EXTENSIONS = (".mid", ".midi")
TEXT_EXTENSIONS = (".txt", ".jsonl", ".json", ".csv")
DECODE_ERRORS = ("strict", "replace")
COLOR_MODES = ("auto", "rgb", "grayscale")
TOKENIZERS = ("bytes", "chars", "sentencepiece")  # text tokenizers a run can choose
DEFAULT_IMAGE_SIZE = (32, 32)
TASK_MODALITY = {"lm": "text", "image": "image", "music": "music", "classifier": None}


class DataError(ValueError):
    """A problem with the user's data; `flag` names the flag to blame (without dashes)."""

    def __init__(self, flag, message):
        super().__init__(message)
        self.flag = flag


@dataclasses.dataclass
class DataSource:
    """A run's data. Stored in run.json (`to_dict` / `from_dict`); see the module docstring."""

    kind: str = "files"                    # "files" | "tfds"
    modality: str = "text"                 # "text" | "image" | "music"
    train: tuple = ()                      # files: globs / a directory; tfds: (split,)
    validation: tuple = ()                 # files: globs / a directory; tfds: (split,)
    validation_fraction: float = 0.1
    text_key: str = "text"
    label_key: Optional[str] = None
    decode_errors: str = "strict"
    image_size: Optional[tuple] = None     # (H, W)
    color_mode: str = "auto"
    dataset: Optional[str] = None          # tfds name[:version]
    features: dict = dataclasses.field(default_factory=dict)  # text / image / label -> key
    class_names: tuple = ()
    layout: str = ""                       # files: "glob" | "class_folders"

    @property
    def labelled(self):
        return bool(self.class_names) or (self.kind == "tfds" and "label" in self.features)

    def to_dict(self):
        out = dataclasses.asdict(self)
        for key in ("train", "validation", "image_size", "class_names"):
            out[key] = list(out[key]) if out[key] is not None else None
        return out

    @classmethod
    def from_dict(cls, values):
        values = dict(values)
        for key in ("train", "validation", "class_names"):
            values[key] = tuple(values.get(key) or ())
        if values.get("image_size") is not None:
            values["image_size"] = tuple(values["image_size"])
        return cls(**{f.name: values[f.name] for f in dataclasses.fields(cls) if f.name in values})


@dataclasses.dataclass
class Document:
    """A piece of text: a byte range [start, end) of a .txt file, or record `record` of a
    JSON lines / CSV file (`text`, `label` filled by the scan)."""

    path: str
    start: int = 0
    end: Optional[int] = None
    label: Optional[str] = None


@dataclasses.dataclass
class Scan:
    """A checked source: what each split reads. Built by `scan`."""

    source: DataSource
    train: list                            # text: [Document]; music: [path]; image: [dir]
    validation: list
    skipped: list = dataclasses.field(default_factory=list)   # [(path, reason)]
    split_rule: str = ""
    notes: list = dataclasses.field(default_factory=list)
    data_dir: Optional[str] = None         # TFDS sources


def parse_image_size(value):
    """"32", "32x24" (height x width) or (h, w) -> (h, w) positive ints; ValueError otherwise."""
    if value is None or value == "":
        return None
    if isinstance(value, (tuple, list)):
        parts = list(value)
    else:
        parts = str(value).lower().replace("*", "x").split("x")
        if len(parts) == 1:
            parts = parts * 2
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) != 2 or min(size) < 1 or max(size) > 4096:
        raise ValueError(f"must be N or HxW with 1 <= N <= 4096, got {value!r}")
    return size


def split_patterns(value):
    """"a/*.txt, b/*.txt" -> ("a/*.txt", "b/*.txt") (comma-separated; blanks dropped)."""
    if not value:
        return ()
    if isinstance(value, (list, tuple)):
        value = ",".join(value)
    return tuple(p.strip() for p in value.split(",") if p.strip())

def _glob_root(pattern):
    """The directory part of a glob before its first wildcard."""
    head = pattern
    while any(c in head for c in "*?["):
        head = os.path.dirname(head)
    return head if os.path.isdir(head) else os.path.dirname(head)


def _relative_key(path, patterns):
    for pattern in patterns:
        root = _glob_root(os.path.expanduser(pattern))
        if root and os.path.abspath(path).startswith(os.path.abspath(root) + os.sep):
            return os.path.relpath(path, root)
    return os.path.basename(path)


def held_out_files(files, patterns, fraction):
    """(train, validation): files whose CRC-32 (of the path relative to its glob root) is in
    the lowest `fraction` of 2**32; at least one of each when len(files) >= 2."""
    if fraction <= 0 or len(files) < 2:
        return list(files), []
    keyed = sorted((zlib.crc32(_relative_key(f, patterns).encode("utf-8")), f) for f in files)
    validation = [f for h, f in keyed if h < fraction * 2**32]
    if not validation:
        validation = [keyed[0][1]]
    if len(validation) == len(files):
        validation = validation[:-1]
    held = set(validation)
    return [f for f in files if f not in held], sorted(held)


def scan(source: DataSource, task: str) -> Scan:
    """Checks every file of an own-files source (see the module docstring); returns a `Scan`.

    Raises:
      DataError: the first problem found, naming the file (and byte offset / line / key).
    """
    from reformer_keras.datasets import own_files
    return own_files.scan(source, task)


def from_flags(task, train_files, validation_files=None, validation_fraction=0.1,
               text_key="text", label_key=None, decode_errors="strict", image_size=None,
               color_mode="auto"):
    """A `DataSource` for own files; the modality follows the task and, for the classifier,
    the files (class folders of images -> image, else text)."""
    absolute = lambda ps: tuple(os.path.abspath(os.path.expanduser(p)) for p in ps)  # noqa: E731
    train, validation = absolute(split_patterns(train_files)), absolute(
        split_patterns(validation_files))
    if not 0 <= validation_fraction < 1:
        raise DataError("validation_fraction", f"must be in [0, 1), got {validation_fraction}")
    modality = TASK_MODALITY.get(task, "unsupported")
    if modality == "unsupported":
        raise DataError("task", f"task {task!r} cannot train on --train_files (use lm, image, "
                                "music or classifier)")
    one_dir = len(train) == 1 and os.path.isdir(os.path.expanduser(train[0]))
    if modality is None:  # classifier: images or text, by what the class folders hold
        modality = "text"
        if one_dir:
            root = os.path.expanduser(train[0])
            names = [n.lower() for _, _, ns in os.walk(root) for n in ns]
            if any(n.endswith(IMAGE_EXTENSIONS) for n in names):
                modality = "image"
    layout = "glob"
    if modality == "image" or (modality == "text" and task == "classifier" and one_dir):
        if len(train) != 1:
            raise DataError("train_files", f"give one folder with a sub-folder per class, got "
                                           f"{len(train)} entries")
        layout = "class_folders"
        train = (os.path.expanduser(train[0]),)
        validation = (os.path.expanduser(validation[0]),) if validation else ()
    if modality == "image":
        try:
            size = parse_image_size(image_size)
        except ValueError as err:
            raise DataError("image_size", str(err)) from None
    else:
        size = None
    return DataSource(kind="files", modality=modality, train=train, validation=validation,
                      validation_fraction=float(validation_fraction), text_key=text_key,
                      label_key=label_key, decode_errors=decode_errors, image_size=size,
                      color_mode=color_mode, layout=layout)
