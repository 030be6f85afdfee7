"""Checks of own files (pure Python): every file is read once, before TensorFlow starts.

`sources.scan(source, task)` dispatches here; the rules are in the `sources` module docstring.
Text: UTF-8 (or U+FFFD under decode_errors="replace"), no NUL byte, JSON lines / CSV keys;
images: Pillow decodes every file; MIDI: pretty_midi parses every file (skipped files reported).
"""
from __future__ import annotations

import csv
import glob
import io
import json
import os
from typing import Iterator

from reformer_keras.datasets.sources import (DEFAULT_IMAGE_SIZE, IMAGE_EXTENSIONS,
                                             MIDI_EXTENSIONS, TEXT_EXTENSIONS, DataError,
                                             Document, Scan, held_out_files)


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


def scan(source, task) -> Scan:
    """The `Scan` of an own-files source (see `sources.scan`)."""
    if source.modality == "image":
        return _scan_images(source)
    if source.modality == "music":
        return _scan_music(source)
    return _scan_text(source, task)
