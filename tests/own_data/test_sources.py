"""reformer_keras.datasets.sources: own files checked before training (pure Python, real files)."""
import json
import os
import zlib

import pytest

import make_files
from reformer_keras.datasets import own_files, sources
from reformer_keras.datasets.sources import DataError


def _scan(task, train, **kwargs):
    return sources.scan(sources.from_flags(task, str(train), **kwargs), task)


def test_held_out_files_follow_the_crc_of_the_relative_path(tmp_path):
    names = [f"d{i:02d}.txt" for i in range(40)]
    files = [str(tmp_path / n) for n in names]
    train, val = sources.held_out_files(files, [str(tmp_path / "*.txt")], 0.25)
    expected = sorted(str(tmp_path / n) for n in names if zlib.crc32(n.encode()) < 0.25 * 2**32)
    assert val == expected and sorted(train + val) == sorted(files) and not set(train) & set(val)
    # Adding files never moves an existing file between the splits.
    more = files + [str(tmp_path / f"e{i}.txt") for i in range(10)]
    _, val2 = sources.held_out_files(more, [str(tmp_path / "*.txt")], 0.25)
    assert set(val) == set(val2) & set(files)


def test_non_utf8_error_names_file_and_byte_offset(tmp_path):
    data = "héllo wörld\n".encode("utf-8")
    bad = data[:7] + b"\xff" + data[7:]
    (tmp_path / "bad.txt").write_bytes(bad)
    with pytest.raises(DataError) as err:
        _scan("lm", tmp_path / "*.txt")
    offset = None
    try:
        bad.decode("utf-8")
    except UnicodeDecodeError as ref:
        offset = ref.start
    assert f"byte offset {offset}" in str(err.value) and "bad.txt" in str(err.value)
    scan = _scan("lm", tmp_path / "*.txt", decode_errors="replace")
    text, _ = next(own_files.iter_texts(scan, "train"))
    assert text == bad.decode("utf-8", "replace") and "\ufffd" in text


def test_binary_file_is_not_text_even_when_replacing(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    for mode in ("strict", "replace"):
        with pytest.raises(DataError, match=r"a.txt is a binary file.*offset 8"):
            _scan("lm", tmp_path / "*.txt", decode_errors=mode)


def test_empty_glob_and_wrong_extension(tmp_path):
    with pytest.raises(DataError, match="matches no file") as err:
        _scan("lm", tmp_path / "*.txt")
    assert err.value.flag == "train_files"
    (tmp_path / "x.mid").write_bytes(b"MThd")
    with pytest.raises(DataError, match=r"x.mid' is not a .txt"):
        _scan("lm", tmp_path / "*")


def test_single_text_file_holds_out_its_tail_at_a_line_break(tmp_path):
    text = "".join(f"line {i} é\n" for i in range(100))
    (tmp_path / "one.txt").write_text(text, encoding="utf-8")
    scan = _scan("lm", tmp_path / "one.txt", validation_fraction=0.2)
    train = "".join(t for t, _ in own_files.iter_texts(scan, "train"))
    val = "".join(t for t, _ in own_files.iter_texts(scan, "validation"))
    assert train + val == text and train.endswith("\n") and 0.15 < len(val) / len(text) < 0.25


def test_jsonl_label_key_and_missing_keys(tmp_path):
    path = make_files.labelled_jsonl(tmp_path / "a.jsonl", rows=20)
    scan = _scan("classifier", path, text_key="body", label_key="topic")
    assert scan.source.class_names == ("birds", "fox")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    got = list(own_files.iter_texts(scan, "train")) + list(own_files.iter_texts(scan, "validation"))
    assert got == [(r["body"], r["topic"]) for r in rows]
    with pytest.raises(DataError, match=r"a.jsonl:1: no key 'label' \(keys: body, topic\)") as err:
        _scan("classifier", path, text_key="body", label_key="label")
    assert err.value.flag == "label_key"
    with pytest.raises(DataError, match=r"no key 'text'"):
        _scan("lm", path)


def test_csv_column(tmp_path):
    (tmp_path / "a.csv").write_text('id,review\n1,"good, very ""good"""\n2,bad\n', "utf-8")
    scan = _scan("lm", tmp_path / "a.csv", text_key="review", validation_fraction=0)
    assert [t for t, _ in own_files.iter_texts(scan, "train")] == ['good, very "good"', "bad"]
    with pytest.raises(DataError, match=r"no column 'text' \(columns: id, review\)"):
        _scan("lm", tmp_path / "a.csv")


def test_image_folders(tmp_path):
    root = make_files.image_folder(tmp_path / "img", per_class=3)
    scan = _scan("image", root, image_size="8")
    assert scan.source.class_names == ("dark", "light")
    assert scan.source.color_mode == "grayscale" and scan.source.image_size == (8, 8)
    (root / "light" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"broken.png cannot be decoded"):
        _scan("image", root)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "a.png").write_bytes((root / "dark" / "0.png").read_bytes())
    with pytest.raises(DataError, match="has no class sub-folders"):
        _scan("image", flat)


def test_midi_unreadable_files_are_reported_and_all_bad_is_an_error(tmp_path):
    root = make_files.midi_files(tmp_path / "midi", count=2)
    scan = _scan("music", root / "*.mid", validation_fraction=0)
    assert sorted(os.path.basename(p) for p in scan.train) == ["piece0.mid", "piece1.mid"]
    assert [(os.path.basename(p), r.split(" ")[0]) for p, r in scan.skipped] == [
        ("broken.mid", "unreadable")]
    with pytest.raises(DataError, match=r"no readable MIDI file: all 1 failed \(.*broken.mid"):
        _scan("music", root / "broken.mid")


def test_source_round_trips_through_json(tmp_path):
    root = make_files.image_folder(tmp_path / "img", per_class=2)
    scan = _scan("image", root, image_size="6x4")
    again = sources.DataSource.from_dict(json.loads(json.dumps(scan.source.to_dict())))
    assert again == scan.source
