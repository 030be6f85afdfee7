"""The repository states what holds now: no text or file name refers to the project's own
history, i.e. a numbered work period (the word for a work period followed by its number), an
issue number (`issue` + number, or `#` + digits) or a numbered target label (capital P + digit).

Every git-tracked text file is scanned, and every tracked path. Allowed: TensorFlow's `Session`
API and `tf.compat.v1.Session`, pytest's session scope, the word for a work period without a
number, hex colours (`#` + 3, 6 or 8 hex digits), HTML character references, and `#` comments
(a `#` followed by a space). `test_detector_catches_planted_lines` plants each kind of line and
checks the detector flags it (the examples are assembled at run time, so this file stays clean).
"""

import os
import re
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_PERIOD = r"(?:sess" r"ions?|sprints?|work[ -]periods?)"
TEXT_PATTERNS = [
    re.compile(r"\b" + _PERIOD + r"[ _-]?#?\d", re.IGNORECASE),        # a numbered period
    re.compile(r"\biss" r"ues?[ _-]?#?\d", re.IGNORECASE),              # an issue number
    re.compile(r"(?<![\w&#/])#(?![0-9a-fA-F]{3}(?![\w-])|[0-9a-fA-F]{6}(?![\w-])"
               r"|[0-9a-fA-F]{8}(?![\w-]))\d+\b"),                     # "#" + number, not a colour
    re.compile(r"(?<![\w.-])P[1-8](?![\w.])"),                           # a numbered target label
]
NAME_PATTERNS = [
    re.compile(r"(?i)" + _PERIOD + r"[ _-]?\d"),
    re.compile(r"(?i)iss" r"ues?[ _-]?\d"),
    re.compile(r"(?i)(?:^|[_/.-])p[1-8](?:[_/.-]|$)"),
]


def problems_in_text(text):
    """(line number, line) of every line that refers to the project's history."""
    return [(i, line.strip()) for i, line in enumerate(text.splitlines(), 1)
            if any(p.search(line) for p in TEXT_PATTERNS)]


def problems_in_name(path):
    return any(p.search(path) for p in NAME_PATTERNS)


def _tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p]


def _text(path):
    try:
        with open(os.path.join(REPO, path), "rb") as f:
            data = f.read()
    except (FileNotFoundError, IsADirectoryError):
        return None   # deleted in the working tree, or a submodule
    if b"\0" in data:
        return None   # binary (PNG, MIDI)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def test_no_history_in_tracked_files():
    found = []
    for path in _tracked_files():
        if problems_in_name(path):
            found.append(f"{path}: file name")
        text = _text(path)
        if text is not None:
            found += [f"{path}:{n}: {line[:120]}" for n, line in problems_in_text(text)]
    assert not found, "history references:\n" + "\n".join(found)


def test_detector_catches_planted_lines():
    word, issue, num, p3, p8 = "sess" + "ion", "iss" + "ue", "#" + "27", "P" + "3", "P" + "8"
    planted = [f"measured in {word} 14", f"{word}s 12-13 found", f"({issue} 7)", f"{issue} {num}",
               f"see {num}", f"{word.title()} 3: {p3} met", f"{p8} at 16K", f"{word}-11 command"]
    for line in planted:
        assert problems_in_text(line), line
    allowed = ["with tf.compat.v1.Session() as sess:", '@pytest.fixture(scope="' + word + '")',
               f"one {word} per test", "color: #ff0000; background: #333", "x = 1  # 2 layers",
               "### 3. Samples", "&#39;", "a period-127 sequence", "PRNG key", "P (prompt length)",
               "docs/results/scaling.jsonl", "url#L27"]
    for line in allowed:
        assert not problems_in_text(line), line
    assert problems_in_name(f"docs/results/scaling_{word}11_p1.jsonl")
    assert problems_in_name("docs/results/scaling_p3.jsonl")
    assert not problems_in_name("docs/results/scaling.jsonl")
