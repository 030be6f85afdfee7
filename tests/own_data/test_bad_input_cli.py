"""Bad own data given to `trainers.train`: one line naming the problem, exit status 2, nothing
written to model_dir, and no TensorFlow work (the files are checked before the model is built).
Also: the console scripts of setup.py import."""
import importlib
import pathlib
import re
import subprocess
import sys

import pytest

import make_files

REPO = pathlib.Path(__file__).resolve().parents[2]


def _train(tmp_path, *flags):
    env = {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-m", "trainers.train",
                           f"--model_dir={tmp_path / 'run'}", *map(str, flags)], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)


def _bad_text(tmp_path):
    (tmp_path / "good.txt").write_text("fine text\n", encoding="utf-8")
    (tmp_path / "latin1.txt").write_bytes("ol\u00e9 caf\u00e9".encode("latin-1"))
    return ["--train_files", tmp_path / "*.txt"]


def _binary(tmp_path):
    (tmp_path / "a.txt").write_bytes(bytes(range(256)))
    return ["--train_files", tmp_path / "*.txt"]


def _flat_images(tmp_path):
    root = make_files.image_folder(tmp_path / "src", per_class=1)
    flat = tmp_path / "flat"
    flat.mkdir()
    (flat / "0.png").write_bytes((root / "dark" / "0.png").read_bytes())
    return ["--task=image", "--train_files", flat]


def _undecodable(tmp_path):
    root = make_files.image_folder(tmp_path / "img", per_class=2)
    (root / "dark" / "9.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    return ["--task=image", "--train_files", root]


def _corrupt_midi(tmp_path):
    (tmp_path / "a.mid").write_bytes(b"MThd\x00\x00\x00\x06 broken")
    (tmp_path / "b.midi").write_bytes(b"not midi at all")
    return ["--task=music", "--train_files", f"{tmp_path / '*.mid'},{tmp_path / '*.midi'}"]


def _missing_label(tmp_path):
    path = make_files.labelled_jsonl(tmp_path / "a.jsonl")
    return ["--task=classifier", "--train_files", path, "--text_key=body", "--label_key=category"]


CASES = [  # (name, make flags, the one-line error must match)
    ("empty glob", lambda p: ["--train_files", p / "nothing" / "*.txt"],
     r"flag --train_files: the glob '.*nothing/\*\.txt' matches no file"),
    ("binary as text", _binary, r"flag --train_files: .*a\.txt is a binary file, not text "
                                r"\(NUL byte at byte offset 0\)"),
    ("non-UTF-8", _bad_text, r"flag --train_files: .*latin1\.txt is not UTF-8: invalid byte "
                             r"0xe9 at byte offset 2"),
    ("no class folders", _flat_images, r"flag --train_files: '.*flat' has no class sub-folders"),
    ("undecodable image", _undecodable, r"flag --train_files: .*dark/9\.jpg cannot be decoded"),
    ("only corrupt MIDI", _corrupt_midi, r"flag --train_files: no readable MIDI file: all 2 "
                                         r"failed \(.*a\.mid: unreadable.*b\.midi: unreadable"),
    ("missing label key", _missing_label, r"flag --label_key: .*a\.jsonl:1: no key 'category' "
                                          r"\(keys: body, topic\)"),
]


@pytest.mark.parametrize("name,make,pattern", CASES, ids=[c[0] for c in CASES])
def test_bad_own_data_is_one_line_exit_2_nothing_written(tmp_path, name, make, pattern):
    data = tmp_path / "data"
    data.mkdir()
    result = _train(tmp_path, *make(data))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr and len(lines) == 1, result.stderr[-2000:]
    assert re.fullmatch(r"train: error: " + pattern + r".*", lines[0]), lines[0]
    assert not (tmp_path / "run").exists()


def test_console_scripts_import():
    text = (REPO / "setup.py").read_text()
    scripts = dict(re.findall(r'"(reformer-[a-z]+)=([\w.:]+)"', text))
    assert sorted(scripts) == ["reformer-evaluate", "reformer-export", "reformer-sample",
                               "reformer-train"]
    for target in scripts.values():
        module, attr = target.split(":")
        assert callable(getattr(importlib.import_module(module), attr)), target
