"""Music: sampled .mid files re-read with pretty_midi hold exactly the notes a reference reading
of the sampled events gives; preprocessor windows; bad prompts."""

import io

import numpy as np
import pretty_midi
import pytest
from PIL import Image

from reformer_keras.models import ReformerMusicGenerator, ReformerMusicPreprocessor
from reformer_keras.tokenizers import MidiEventTokenizer


def _model(**kw):
    config = dict(d_model=16, num_layers=1, num_heads=2, d_ff=32, attention_types=["local"],
                  bucket_size=8, max_len=64, seed=4)
    config.update(kw)
    return ReformerMusicGenerator(**config)


def reference_notes(ids):
    """Notes (start_step, end_step, pitch, velocity) of an event sequence, read by the rules of
    the event vocabulary (ids 2-129 on, 130-257 off, 258-357 shift 1..100, 358-389 velocity bin;
    velocity = bin centre; a re-struck or unterminated note ends at the current step, at least
    one step after it started; zero-length notes and stray note-offs are dropped)."""
    now, vel_bin, sounding, notes = 0, 16, {}, []
    for t in map(int, ids):
        if 2 <= t < 130 or 130 <= t < 258:
            pitch = (t - 2) % 128
            if pitch in sounding:
                start, b = sounding.pop(pitch)
                if now > start:
                    notes.append((start, now, pitch, b))
            if t < 130:
                sounding[pitch] = (now, vel_bin)
        elif 258 <= t < 358:
            now += t - 257
        elif t >= 358:
            vel_bin = t - 358
    for pitch, (start, b) in sounding.items():
        notes.append((start, max(now, start + 1), pitch, b))
    return sorted((s, e, p, int((b + 0.5) * 4)) for s, e, p, b in notes)


def _file_notes(path):
    pm = pretty_midi.PrettyMIDI(str(path))
    return sorted((round(n.start * 100), round(n.end * 100), n.pitch, n.velocity)
                  for inst in pm.instruments for n in inst.notes)


def test_sample_midi_file_matches_the_sampled_events(tmp_path):
    model = _model()
    tok = MidiEventTokenizer()
    prompt = np.array([358 + 20, 2 + 60, 258 + 24, 130 + 60], np.int32)
    result = model.sample_midi(tmp_path / "out" / "piece.mid", num_events=40, seed=3,
                               prompt=prompt, use_cache=False)
    ids = result["ids"]
    assert ids.dtype == np.int32 and ids.shape == (44,) and (ids[:4] == prompt).all()
    assert ids.min() >= 0 and ids.max() < 390
    notes = _file_notes(result["midi_path"])
    assert notes == reference_notes(ids)
    assert (0, 25, 60, 82) in notes               # the prompt's note: shift 258+24 = 25 steps
    # Re-encoding the file gives the events of the sampled ids with the invalid ones dropped.
    reread = tok.encode(pretty_midi.PrettyMIDI(str(result["midi_path"])))
    np.testing.assert_array_equal(reread, tok.encode(tok.decode(ids)))
    with Image.open(result["piano_roll_path"]) as png:
        assert png.format == "PNG" and png.size[0] > 100


def test_sampling_is_seeded_and_checks_prompts(tmp_path):
    model = _model()
    a = model.sample_events(12, seed=1, use_cache=False)
    np.testing.assert_array_equal(a, model.sample_events(12, seed=1, use_cache=False))
    assert a.shape == (12,)
    with pytest.raises(ValueError, match="prompt.*integer"):
        model.sample_events(4, prompt=np.array([2.0, 3.0]))
    with pytest.raises(ValueError, match=r"prompt.*\[0, vocab_size=390\)"):
        model.sample_events(4, prompt=np.array([2, 400]))
    with pytest.raises(ValueError, match="1-D"):
        model.sample_events(4, prompt=np.array([[2, 3]]))
    with pytest.raises(ValueError, match="max_len 64"):
        model.sample_events(64)
    with pytest.raises(ValueError, match="num_events"):
        model.sample_events(0)


def _piece():
    pm = pretty_midi.PrettyMIDI(resolution=500, initial_tempo=120.0)
    piano = pretty_midi.Instrument(program=0)
    for i, pitch in enumerate([60, 64, 67, 72, 71, 69]):
        piano.notes.append(pretty_midi.Note(velocity=66, pitch=pitch, start=0.25 * i,
                                            end=0.25 * i + 0.5))
    pm.instruments.append(piano)
    buf = io.BytesIO()
    pm.write(buf)
    return pm, buf.getvalue()


def test_music_preprocessor_windows():
    pm, raw = _piece()
    pre = ReformerMusicPreprocessor(sequence_length=8)
    events = MidiEventTokenizer().encode(pm)
    ids = pre.encode(raw)
    np.testing.assert_array_equal(ids, np.concatenate([[1], events, [1]]))
    x, y, w = pre(raw)
    n = len(ids)
    rows = -(-(n - 1) // 8)
    assert x["token_ids"].shape == y.shape == w.shape == (rows, 8)
    flat_x = x["token_ids"][x["padding_mask"]]
    np.testing.assert_array_equal(flat_x, ids)          # every token once, in order (the final
    # eos is a real input position without a target)
    np.testing.assert_array_equal(y[w > 0], ids[1:])                # targets = next tokens
    assert (x["token_ids"][~x["padding_mask"]] == 0).all()
    x2, _, _ = pre([raw, pm])
    assert x2["token_ids"].shape == (2 * rows, 8)
    clone = ReformerMusicPreprocessor.from_config(pre.get_config())
    np.testing.assert_array_equal(clone(raw)[1], y)
    with pytest.raises(ValueError, match="midi"):
        pre.encode(123)
