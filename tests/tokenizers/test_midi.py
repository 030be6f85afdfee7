"""MidiEventTokenizer, checked against hand-derived event ids and pretty_midi's note lists."""
import json
import random

import keras
import numpy as np
import pretty_midi
import pytest

from reformer_keras.tokenizers import MidiEventTokenizer

# Id layout from the spec: 0 pad, 1 eos, NOTE_ON 2.., NOTE_OFF 130.., TIME_SHIFT 258.., VELOCITY 358..
ON, OFF, SHIFT, VEL = 2, 130, 258 - 1, 358


def note_tuples(pm, drums=False):
    """Sorted (pitch, start_step, end_step, velocity) of the (non-drum) notes, via pretty_midi."""
    return sorted(
        (n.pitch, round(n.start * 100), round(n.end * 100), n.velocity)
        for inst in pm.instruments if drums or not inst.is_drum for n in inst.notes)


def grid_midi(seed=0, n_notes=40):
    """A PrettyMIDI with notes on the 10 ms grid, velocities at bin centres (4b + 2),
    no same-pitch overlaps, two piano-ish instruments, a drum track and long gaps."""
    rng = random.Random(seed)
    pm = pretty_midi.PrettyMIDI()
    instruments = [pretty_midi.Instrument(0), pretty_midi.Instrument(40)]
    busy_until = {}
    step = 37                                    # leading silence
    for _ in range(n_notes):
        step += rng.choice([0, 0, 1, 5, 20, 100, 250])   # chords, and gaps > 1 s
        pitch = rng.randrange(21, 109)
        if busy_until.get(pitch, -1) > step:
            continue
        length = rng.choice([1, 3, 50, 100, 101, 320])
        busy_until[pitch] = step + length
        rng.choice(instruments).notes.append(pretty_midi.Note(
            velocity=4 * rng.randrange(32) + 2, pitch=pitch, start=step / 100, end=(step + length) / 100))
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes.append(pretty_midi.Note(velocity=100, pitch=36, start=0.0, end=0.1))
    pm.instruments.extend(instruments + [drums])
    return pm


def test_vocabulary_layout():
    tok = MidiEventTokenizer()
    assert (tok.vocab_size, tok.pad_id, tok.eos_id) == (390, 0, 1)
    assert tok.event_to_string(0) == "PAD" and tok.event_to_string(1) == "EOS"
    assert tok.event_to_string(2 + 60) == "NOTE_ON(60)"
    assert tok.event_to_string(130 + 127) == "NOTE_OFF(127)"
    assert tok.event_to_string(258) == "TIME_SHIFT(1=10ms)"
    assert tok.event_to_string(357) == "TIME_SHIFT(100=1000ms)"
    assert tok.event_to_string(389) == "VELOCITY(31)"
    with pytest.raises(ValueError, match="outside"):
        tok.event_to_string(390)


def test_encode_hand_computed_sequence():
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    # Off-grid time (0.504 -> 0.50) and off-centre velocity (64 -> bin 16).
    piano.notes.append(pretty_midi.Note(velocity=64, pitch=60, start=0.504, end=1.75))
    piano.notes.append(pretty_midi.Note(velocity=66, pitch=64, start=0.5, end=0.6))
    pm.instruments.append(piano)
    expected = [SHIFT + 50, VEL + 16, ON + 60, ON + 64, SHIFT + 10, OFF + 64,
                SHIFT + 100, SHIFT + 15, OFF + 60]
    ids = MidiEventTokenizer().encode(pm)
    assert ids.dtype == np.int32 and ids.tolist() == expected
    assert MidiEventTokenizer().encode(pm, add_eos=True).tolist() == expected + [1]
    decoded = note_tuples(MidiEventTokenizer().decode(ids))
    assert decoded == [(60, 50, 175, 66), (64, 50, 60, 66)]


def test_grid_midi_round_trip_exact():
    pm = grid_midi()
    tok = MidiEventTokenizer()
    ids = tok.encode(pm)
    assert ids.min() >= 2 and ids.max() < tok.vocab_size
    decoded = tok.decode(ids)
    assert len(decoded.instruments) == 1 and not decoded.instruments[0].is_drum
    assert note_tuples(decoded) == note_tuples(pm)           # drums dropped, rest exact
    # Times are exactly step / 100 as floats, like the originals.
    originals = sorted((n.pitch, n.start, n.end) for i in pm.instruments if not i.is_drum for n in i.notes)
    assert sorted((n.pitch, n.start, n.end) for n in decoded.instruments[0].notes) == originals
    np.testing.assert_array_equal(tok.encode(decoded), ids)


def test_velocity_bins():
    tok = MidiEventTokenizer()
    for velocity in range(128):
        assert tok.velocity_to_bin(velocity) == velocity // 4
        assert tok.bin_to_velocity(velocity // 4) == 4 * (velocity // 4) + 2


def test_overlapping_same_pitch_notes():
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    piano.notes += [
        pretty_midi.Note(velocity=66, pitch=60, start=0.0, end=1.0),
        pretty_midi.Note(velocity=66, pitch=60, start=0.5, end=1.5),   # re-struck: first ends at 0.5
        pretty_midi.Note(velocity=30, pitch=62, start=2.0, end=2.1),
        pretty_midi.Note(velocity=90, pitch=62, start=2.0, end=2.4),   # same onset: merged
        pretty_midi.Note(velocity=50, pitch=64, start=3.0, end=3.0),   # zero length: one step
    ]
    pm.instruments.append(piano)
    tok = MidiEventTokenizer()
    ids = tok.encode(pm)
    assert note_tuples(tok.decode(ids)) == [
        (60, 0, 50, 66), (60, 50, 150, 66), (62, 200, 240, 90), (64, 300, 301, 50)]
    np.testing.assert_array_equal(tok.encode(tok.decode(ids)), ids)


def test_write_midi_and_reread(tmp_path):
    pm = grid_midi(seed=3)
    tok = MidiEventTokenizer()
    ids = tok.encode(pm)
    path = tmp_path / "piece.mid"
    assert tok.write_midi(ids, path) == path
    reread = pretty_midi.PrettyMIDI(str(path))
    expected = note_tuples(pm)
    got = sorted((n.pitch, n.start, n.end, n.velocity) for i in reread.instruments for n in i.notes)
    assert [(p, v) for p, _, _, v in got] == [(p, v) for p, _, _, v in expected]
    np.testing.assert_allclose([(s, e) for _, s, e, _ in got],
                               [(s / 100, e / 100) for _, s, e, _ in expected], atol=1e-6)
    np.testing.assert_array_equal(tok.encode_file(path), ids)
    np.testing.assert_array_equal(tok.encode_file(path.read_bytes()), ids)


def test_invalid_sequences_decode_without_crashing():
    tok = MidiEventTokenizer()
    # NOTE_OFF without NOTE_ON is skipped; a NOTE_ON still sounding at the end is closed;
    # a repeated NOTE_ON re-strikes; pad / eos are ignored anywhere.
    ids = [0, OFF + 70, VEL + 10, ON + 60, SHIFT + 20, ON + 60, SHIFT + 30, 1, ON + 62, 0]
    assert note_tuples(tok.decode(ids)) == [(60, 0, 20, 42), (60, 20, 50, 42), (62, 50, 51, 42)]
    assert tok.decode([]).instruments[0].notes == []
    assert tok.decode([ON + 60, OFF + 60]).instruments[0].notes == []     # zero length: dropped
    rng = np.random.default_rng(0)
    for _ in range(20):
        pm = tok.decode(rng.integers(0, tok.vocab_size, size=300))
        for note in pm.instruments[0].notes:
            assert 0 <= note.pitch < 128 and note.end > note.start and 1 <= note.velocity <= 127
        tok.encode(pm)


def test_bad_ids_raise():
    tok = MidiEventTokenizer()
    with pytest.raises(ValueError, match="outside"):
        tok.decode([2, 390])
    with pytest.raises(ValueError, match="outside"):
        tok.decode([-1])
    with pytest.raises(ValueError, match="1-D"):
        tok.decode([[2, 3]])
    with pytest.raises(ValueError, match="integer"):
        tok.decode([2.0, 3.5])
    with pytest.raises(ValueError, match="PrettyMIDI"):
        tok.encode("song.mid")


def test_drums_only_and_empty():
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes.append(pretty_midi.Note(velocity=100, pitch=36, start=0.0, end=0.1))
    pm.instruments.append(drums)
    assert MidiEventTokenizer().encode(pm).tolist() == []
    assert MidiEventTokenizer().encode(pretty_midi.PrettyMIDI()).tolist() == []


def test_config_round_trip():
    tok = MidiEventTokenizer(steps_per_second=50, max_shift_steps=25, num_velocity_bins=16)
    assert tok.vocab_size == 2 + 256 + 25 + 16
    clone = MidiEventTokenizer.from_config(json.loads(json.dumps(tok.get_config())))
    pm = grid_midi(seed=1)
    np.testing.assert_array_equal(clone.encode(pm), tok.encode(pm))
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(tok))
    assert isinstance(restored, MidiEventTokenizer) and restored.get_config() == tok.get_config()
