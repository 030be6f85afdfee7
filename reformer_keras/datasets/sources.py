"""Where a run's data comes from: a user's own files, or any TFDS catalog dataset by name.

Pure Python (no TensorFlow import): the trainers build and check a `DataSource` before a model
is built, so a bad file or flag fails in a second with one line naming it. `files.py` turns a
checked source into tf.data pipelines.

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

import csv
import dataclasses
import glob
import io
import json
import os
import zlib
from typing import Iterator, Optional

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


def _expand(patterns, flag, extensions):
    """Globs -> sorted files with one of `extensions`; errors name the empty glob."""
    files = []
    for pattern in patterns:
        expanded = os.path.expanduser(pattern)
        matches = sorted(p for p in glob.glob(expanded, recursive=True) if os.path.isfile(p))
        if not matches and os.path.isdir(expanded):
            raise DataError(flag, f"{pattern!r} is a directory; give a glob of files such as "
                                  f"{os.path.join(pattern, '*' + extensions[0])!r}")
        if not matches:
            raise DataError(flag, f"the glob {pattern!r} matches no file")
        wrong = [p for p in matches if not p.lower().endswith(extensions)]
        if wrong:
            raise DataError(flag, f"{wrong[0]!r} is not a {'/'.join(extensions)} file "
                                  f"({len(wrong)} such file(s) in {pattern!r})")
        files.extend(matches)
    return sorted(set(files))


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


# ------------------------------------------------------------------------------------ text
def check_utf8(data, path, decode_errors):
    """bytes -> str; DataError naming the file and byte offset (binary files always fail)."""
    nul = data.find(b"\x00")
    if nul >= 0:
        raise DataError("train_files", f"{path} is a binary file, not text (NUL byte at byte "
                                       f"offset {nul})")
    try:
        return data.decode("utf-8", errors=decode_errors)
    except UnicodeDecodeError as err:
        raise DataError("train_files", f"{path} is not UTF-8: invalid byte 0x{data[err.start]:02x} "
                                       f"at byte offset {err.start} (--decode_errors=replace "
                                       "replaces such bytes with U+FFFD)") from None


def _records(path, text_key, label_key, decode_errors):
    """JSON lines / CSV records of one file -> [(text, label or None)]; errors name file:line."""
    text = check_utf8(_read(path), path, decode_errors)
    out = []
    if path.lower().endswith(".csv"):
        reader = csv.DictReader(io.StringIO(text, newline=""))
        columns = reader.fieldnames or []
        for key, flag in ((text_key, "text_key"), (label_key, "label_key")):
            if key is not None and key not in columns:
                raise DataError(flag, f"{path}: no column {key!r} (columns: "
                                      f"{', '.join(columns) or 'none'})")
        for row in reader:
            out.append((row[text_key] or "", row[label_key] if label_key else None))
        return out
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError("train_files", f"{path}:{number}: not a JSON line ({err.msg})") from None
        if not isinstance(record, dict):
            raise DataError("train_files", f"{path}:{number}: a JSON line must be an object")
        for key, flag in ((text_key, "text_key"), (label_key, "label_key")):
            if key is not None and key not in record:
                raise DataError(flag, f"{path}:{number}: no key {key!r} (keys: "
                                      f"{', '.join(sorted(record)) or 'none'})")
        label = record[label_key] if label_key else None
        out.append((str(record[text_key]), None if label is None else str(label)))
    return out


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as err:
        raise DataError("train_files", f"cannot read {path}: {err.strerror}") from None


def read_document(doc, source):
    """(text str, label or None) of a `Document` (the scan has checked it)."""
    data = _read(doc.path)[doc.start:doc.end]
    return check_utf8(data, doc.path, source.decode_errors), doc.label


def iter_texts(scan, split="train") -> Iterator[tuple]:
    """(text, label) of every document of a text scan's split, in order."""
    source = scan.source
    for doc in getattr(scan, split):
        if doc.path.lower().endswith((".jsonl", ".json", ".csv")):
            records = _records(doc.path, source.text_key, source.label_key, source.decode_errors)
            yield from records[doc.start:doc.end]
        else:
            yield read_document(doc, source)


def _class_folders(root, flag, extensions):
    """Sorted class sub-folders of `root` holding files with `extensions`."""
    if not os.path.isdir(root):
        raise DataError(flag, f"{root!r} is not a directory (give a folder with one sub-folder "
                              "per class)")
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d))
                     and not d.startswith("."))
    if not classes:
        raise DataError(flag, f"{root!r} has no class sub-folders (expected {root}/<class>/"
                              f"<file>{extensions[0]})")
    files = {c: sorted(os.path.join(dp, n) for dp, _, names in os.walk(os.path.join(root, c))
                       for n in names if n.lower().endswith(extensions)) for c in classes}
    empty = [c for c in classes if not files[c]]
    if empty:
        raise DataError(flag, f"class folder {os.path.join(root, empty[0])!r} has no "
                              f"{'/'.join(extensions)} file")
    return classes, files


def _scan_text(source, task):
    errors = source.decode_errors
    if source.layout == "class_folders":
        classes, files = _class_folders(source.train[0], "train_files", (".txt",))
        for name in (f for c in classes for f in files[c]):
            check_utf8(_read(name), name, errors)
        source.class_names = tuple(classes)
        val = []
        if source.validation:
            vclasses, vfiles = _class_folders(source.validation[0], "validation_files", (".txt",))
            extra = sorted(set(vclasses) - set(classes))
            if extra:
                raise DataError("validation_files", f"class {extra[0]!r} is not a training class")
            val = [Document(f, label=c) for c in vclasses for f in vfiles[c]]
            for doc in val:
                check_utf8(_read(doc.path), doc.path, errors)
        train = [Document(f, label=c) for c in classes for f in files[c]]
        return Scan(source, train, val, split_rule="class folders (Keras validation_split)")
    files = _expand(source.train, "train_files", TEXT_EXTENSIONS)
    labels = set()
    docs = {}
    for name in files:
        if name.lower().endswith(".txt"):
            if source.label_key:
                raise DataError("label_key", f"{name} is a .txt file; --label_key needs JSON "
                                             "lines or CSV files (or a folder per class)")
            docs[name] = check_utf8(_read(name), name, errors)
        else:
            records = _records(name, source.text_key, source.label_key, errors)
            labels.update(label for _, label in records)
            docs[name] = records
    if not any(docs.values()):
        raise DataError("train_files", "every training file is empty")
    if task == "classifier":
        if not source.label_key:
            raise DataError("label_key", "task classifier on text files needs --label_key "
                                         "(or a folder with one sub-folder per class)")
        source.class_names = tuple(sorted(labels))
        if len(labels) < 2:
            raise DataError("label_key", f"--label_key={source.label_key} gives "
                                         f"{len(labels)} class(es); a classifier needs >= 2")
    if source.validation:
        vfiles = _expand(source.validation, "validation_files", TEXT_EXTENSIONS)
        for name in vfiles:
            if name.lower().endswith(".txt"):
                check_utf8(_read(name), name, errors)
            else:
                vlabels = {l for _, l in _records(name, source.text_key, source.label_key,
                                                  errors)}
                extra = sorted(vlabels - labels) if task == "classifier" else []
                if extra:
                    raise DataError("validation_files", f"{name}: label {extra[0]!r} does not "
                                                        "occur in the training files")
        return Scan(source, [Document(f) for f in files], [Document(f) for f in vfiles],
                    split_rule="--validation_files")
    train, val = held_out_files(files, source.train, source.validation_fraction)
    scan = Scan(source, [Document(f) for f in train], [Document(f) for f in val],
                split_rule=f"held-out {source.validation_fraction:g} by file (CRC-32 of the path)")
    if not val and source.validation_fraction > 0 and files[0].endswith(".txt"):
        text = docs[files[0]]
        cut = int(len(text.encode("utf-8")) * (1 - source.validation_fraction))
        raw = text.encode("utf-8")
        line = raw.rfind(b"\n", 0, cut)
        cut = line + 1 if line > 0 else cut
        while cut < len(raw) and (raw[cut] & 0xC0) == 0x80:  # not inside a character
            cut += 1
        scan.train, scan.validation = [Document(files[0], 0, cut)], [Document(files[0], cut)]
        scan.split_rule = (f"one file: its last {source.validation_fraction:g} (from byte "
                           f"{cut}) held out")
    elif not val and source.validation_fraction > 0 and len(docs[files[0]]) >= 2:
        count = len(docs[files[0]])  # one JSON lines / CSV file: its last records held out
        cut = count - max(1, round(count * source.validation_fraction))
        scan.train, scan.validation = [Document(files[0], 0, cut)], [Document(files[0], cut)]
        scan.split_rule = (f"one file: its last {count - cut} of {count} records held out")
    return scan


# ----------------------------------------------------------------------------------- images
def _check_images(files, flag):
    """Decodes every image with Pillow; returns True if all are grayscale."""
    from PIL import Image, UnidentifiedImageError
    gray = True
    for path in files:
        try:
            with Image.open(path) as image:
                image.load()
                gray = gray and image.mode in ("1", "L", "I", "I;16", "F", "LA")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
            raise DataError(flag, f"{path} cannot be decoded as an image "
                                  f"({' '.join(str(err).split())[:120]})") from None
    return gray


def _scan_images(source):
    classes, files = _class_folders(source.train[0], "train_files", IMAGE_EXTENSIONS)
    all_files = [f for c in classes for f in files[c]]
    gray = _check_images(all_files, "train_files")
    val = []
    if source.validation:
        vclasses, vfiles = _class_folders(source.validation[0], "validation_files",
                                          IMAGE_EXTENSIONS)
        extra = sorted(set(vclasses) - set(classes))
        if extra:
            raise DataError("validation_files", f"class {extra[0]!r} is not a training class")
        _check_images([f for c in vclasses for f in vfiles[c]], "validation_files")
        val = [source.validation[0]]
    source.class_names = tuple(classes)
    source.image_size = tuple(source.image_size or DEFAULT_IMAGE_SIZE)
    if source.color_mode == "auto":
        source.color_mode = "grayscale" if gray else "rgb"
    rule = "--validation_files" if val else (
        f"held-out {source.validation_fraction:g} by file (Keras validation_split, seed 0)")
    return Scan(source, [source.train[0]], val, split_rule=rule,
                notes=[f"{len(all_files)} images in {len(classes)} classes "
                       f"({', '.join(classes)}), {source.color_mode}, resized to "
                       f"{source.image_size[0]}x{source.image_size[1]}"])


# ------------------------------------------------------------------------------------ music
def midi_problem(path):
    """None if `path` parses with pretty_midi and has notes, else the reason."""
    import pretty_midi
    try:
        pm = pretty_midi.PrettyMIDI(path)
    except Exception as err:  # noqa: BLE001  (mido / pretty_midi raise many types)
        return f"unreadable ({type(err).__name__}: {' '.join(str(err).split())[:80]})"
    if not any(inst.notes for inst in pm.instruments):
        return "no notes"
    return None


def _scan_music(source):
    def usable(files, flag):
        good, bad = [], []
        for path in files:
            problem = midi_problem(path)
            (bad.append((path, problem)) if problem else good.append(path))
        if not good:
            raise DataError(flag, f"no readable MIDI file: all {len(files)} failed ("
                                  + "; ".join(f"{p}: {r}" for p, r in bad[:3])
                                  + ("; ..." if len(bad) > 3 else "") + ")")
        return good, bad

    files, skipped = usable(_expand(source.train, "train_files", MIDI_EXTENSIONS), "train_files")
    if source.validation:
        val, vskipped = usable(_expand(source.validation, "validation_files", MIDI_EXTENSIONS),
                               "validation_files")
        return Scan(source, files, val, skipped + vskipped, "--validation_files")
    train, val = held_out_files(files, source.train, source.validation_fraction)
    scan = Scan(source, train, val, skipped,
                f"held-out {source.validation_fraction:g} by file (CRC-32 of the path)")
    if not val:
        scan.notes.append("one usable MIDI file: no validation data")
    return scan


def scan(source: DataSource, task: str) -> Scan:
    """Checks every file of an own-files source (see the module docstring); returns a `Scan`.

    Raises:
      DataError: the first problem found, naming the file (and byte offset / line / key).
    """
    if source.modality == "image":
        return _scan_images(source)
    if source.modality == "music":
        return _scan_music(source)
    return _scan_text(source, task)


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


# ------------------------------------------------------------------------------------- TFDS
def tfds_source(task, dataset, data_dir=None, text_feature=None, image_feature=None,
                label_feature=None, train_split=None, validation_split=None, image_size=None,
                num_classes=None):
    """A checked `Scan` of any TFDS catalog dataset `name[:version]` (features from its info).

    Raises DataError: not in the catalog, a feature that does not exist (the message lists the
    dataset's features), or a feature of the wrong kind.
    """
    import tensorflow_datasets as tfds
    modality = TASK_MODALITY.get(task) or "image"
    if task not in TASK_MODALITY:
        raise DataError("task", f"task {task!r} cannot use a TFDS catalog dataset by name")
    try:
        builder = tfds.builder(dataset, data_dir=data_dir)
    except Exception as err:  # noqa: BLE001  (DatasetNotFoundError, config / version errors)
        raise DataError("dataset", f"{dataset!r} is neither a reformer_keras dataset nor in the "
                                   f"TFDS catalog ({' '.join(str(err).split())[:160]})") from None
    features = builder.info.features
    names = sorted(features.keys()) if hasattr(features, "keys") else []
    if task == "classifier" and text_feature and not image_feature:
        modality = "text"
    wanted = {"text": ("text_feature", text_feature or "text")} if modality == "text" else {}
    if modality == "image":
        wanted = {"image": ("image_feature", image_feature or "image")}
    if modality == "music":
        raise DataError("dataset", "music from the TFDS catalog needs a MIDI bytes feature; "
                                   "use --train_files with .mid files instead")
    if task == "classifier" or (task == "image" and (label_feature or num_classes)):
        wanted["label"] = ("label_feature", label_feature or "label")
    keys = {}
    for canonical, (flag, key) in wanted.items():
        if key not in names:
            raise DataError(flag, f"{dataset!r} has no feature {key!r} (features: "
                                  f"{', '.join(names)})")
        keys[canonical] = key
    size = None
    class_names = ()
    if modality == "image":
        shape = tuple(features[keys["image"]].shape)
        try:
            size = parse_image_size(image_size) if image_size else None
        except ValueError as err:
            raise DataError("image_size", str(err)) from None
        if size is None and (len(shape) != 3 or None in shape):
            raise DataError("image_size", f"{dataset!r} images have shape {shape}; give "
                                          "--image_size")
        size = size or shape[:2]
        color = "grayscale" if shape[-1] == 1 else "rgb"
    else:
        color = "auto"
    if "label" in keys:
        label = features[keys["label"]]
        class_names = tuple(getattr(label, "names", None) or
                            map(str, range(getattr(label, "num_classes", 0) or 0)))
        if not class_names:
            raise DataError("label_feature", f"feature {keys['label']!r} of {dataset!r} is not "
                                             "a ClassLabel")
    splits = sorted(builder.info.splits.keys()) if builder.info.splits else []
    train_split = train_split or "train"
    if validation_split is None:
        validation_split = next((s for s in ("validation", "test") if s in splits), "")
    source = DataSource(kind="tfds", modality=modality, train=(train_split,),
                        validation=(validation_split,) if validation_split else (),
                        validation_fraction=0.0, image_size=size, color_mode=color,
                        dataset=dataset, features=keys, class_names=class_names,
                        layout="tfds")
    return Scan(source, [train_split], list(source.validation), data_dir=data_dir,
                split_rule=f"TFDS splits {train_split} / {validation_split or '-'}")
