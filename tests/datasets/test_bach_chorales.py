"""bach_chorales (tiny config): each `midi` is a MIDI file pretty_midi reads, with the notes."""
import hashlib
import io
import pathlib

import pretty_midi
import pytest
import tensorflow_datasets as tfds

import reformer_keras.datasets.builders  # noqa: F401  (registers the builders)


def _expected_split(bwv):
    bucket = int(hashlib.sha256(("bwv" + bwv).encode()).hexdigest(), 16) % 100
    return "train" if bucket < 80 else "validation" if bucket < 90 else "test"


def _load_all(data_dir, name):
    splits, info = tfds.load(name, data_dir=str(data_dir), with_info=True)
    out = []
    for split, ds in splits.items():
        for ex in tfds.as_numpy(ds):
            out.append(dict(split=split, midi=ex["midi"], bwv=ex["bwv"].decode(),
                            id=ex["id"].decode(), title=ex["title"].decode(),
                            riemenschneider=int(ex["riemenschneider"])))
    return out, info


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return _load_all(tmp_path_factory.mktemp("bach_tiny"), "bach_chorales/tiny")


def test_tiny_sizes_ids_and_splits(tiny):
    examples, info = tiny
    sizes = {s: info.splits[s].num_examples for s in info.splits}
    assert sizes == {"train": 16, "validation": 2, "test": 2}
    bwvs = [e["bwv"] for e in examples]
    assert len(set(bwvs)) == len(bwvs) == 20
    from music21.corpus import chorales

    table = chorales.ChoraleListRKBWV().byBWV
    corpus_dir = pathlib.Path(chorales.__file__).parent / "bach"
    for e in examples:
        assert e["split"] == _expected_split(e["bwv"]), e["bwv"]
        assert e["title"] == table[e["bwv"]]["title"]
        assert e["riemenschneider"] == int(table[e["bwv"]]["riemenschneider"])
        assert e["id"].startswith("bach/bwv" + e["bwv"]) and (corpus_dir / e["id"][5:]).is_file()


def test_every_midi_parses_and_has_notes(tiny):
    examples, _ = tiny
    for e in examples:
        assert e["midi"][:4] == b"MThd", e["bwv"]
        pm = pretty_midi.PrettyMIDI(io.BytesIO(e["midi"]))
        notes = [n for inst in pm.instruments for n in inst.notes]
        assert len(pm.instruments) >= 4 and len(notes) > 50, e["bwv"]
        assert pm.get_end_time() > 10.0
        assert all(36 <= n.pitch <= 84 for n in notes), e["bwv"]  # SATB range


def test_midi_notes_match_the_music21_score(tiny):
    """The MIDI holds the score's pitches (after music21 expands repeats and merges ties)."""
    from music21 import corpus

    examples, _ = tiny
    for e in sorted(examples, key=lambda e: e["riemenschneider"])[:2]:
        score = corpus.parse(e["id"], forceSource=True).expandRepeats()
        expected = sorted(p.midi for part in score.parts
                          for n in part.stripTies().flatten().notes for p in n.pitches)
        pm = pretty_midi.PrettyMIDI(io.BytesIO(e["midi"]))
        assert sorted(n.pitch for inst in pm.instruments for n in inst.notes) == expected, e["bwv"]


@pytest.mark.slow
def test_full_config(tmp_path):
    examples, info = _load_all(tmp_path, "bach_chorales")
    assert len(examples) == 353
    assert len({e["bwv"] for e in examples}) == 353
    assert sum(info.splits[s].num_examples for s in info.splits) == 353
    for e in examples:
        assert e["split"] == _expected_split(e["bwv"])
        pm = pretty_midi.PrettyMIDI(io.BytesIO(e["midi"]))
        assert sum(len(inst.notes) for inst in pm.instruments) > 0, e["bwv"]
