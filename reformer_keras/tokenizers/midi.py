"""MIDI performance-event tokenizer (Oore et al. 2018; Music Transformer, Huang et al. 2019).

Vocabulary (defaults: 100 steps per second, shifts up to 100 steps, 32 velocity bins):

    id 0                pad
    id 1                end of sequence (eos)
    ids   2 ..129       NOTE_ON(pitch)        pitch 0..127
    ids 130 ..257       NOTE_OFF(pitch)       pitch 0..127
    ids 258 ..357       TIME_SHIFT(k steps)   k = 1..100, i.e. 10 ms .. 1 s
    ids 358 ..389       VELOCITY(bin)         bin 0..31; applies to the following NOTE_ONs
    vocab_size = 390

Encoding (`encode`): all non-drum instruments are merged into one stream; note
start/end times are rounded to the 10 ms grid (a note that would last 0 steps is
given 1 step); velocities (0..127) are binned as `bin = velocity * 32 // 128`
(width 4). Gaps longer than 1 s become several TIME_SHIFTs; the stream starts at
time 0, so leading silence is kept. Events at the same step are ordered note-offs
first, then note-ons, each by pitch; a VELOCITY event is emitted only when the bin
changes. Pitch bends, control changes and the SUSTAIN PEDAL (CC 64) are ignored:
note lengths are the key-down lengths written in the file. Drum tracks are dropped.

Overlapping notes of the same pitch (a re-struck key): the sounding note ends where
the new one starts (as on a piano); two notes of one pitch starting on the same
step are merged into one (the longer end, the louder velocity).

Decoding (`decode`) builds one piano instrument (program 0) with velocities at
the bin centres (`4 * bin + 2`), starting at bin 16 until a VELOCITY event.
It tolerates invalid sequences (model samples): pad/eos are skipped, NOTE_OFF
without a sounding note is skipped, NOTE_ON of a pitch already sounding ends the
sounding note first, zero-length notes are dropped, and notes still sounding at
the end stop at the final time (at least one step after their start). Ids outside
[0, vocab_size) raise ValueError (they come from a different vocabulary, not from
a bad sample). The PrettyMIDI uses 120 bpm and 5 * steps_per_second ticks per
beat, so every grid time is an exact tick and `.mid` files keep the grid.

For a MIDI whose times are on the grid, velocities at bin centres and without
same-pitch overlaps, `decode(encode(pm))` has exactly the original notes and
`encode(decode(ids)) == ids` for `ids = encode(pm)`.
"""
import collections
import io
import math
import os

import keras
import numpy as np
import pretty_midi

__all__ = ["MidiEventTokenizer"]

_NUM_PITCHES = 128


@keras.saving.register_keras_serializable(package="reformer_keras")
class MidiEventTokenizer:
    """NOTE_ON / NOTE_OFF / TIME_SHIFT / VELOCITY event tokenizer over `pretty_midi`.

    Args:
      steps_per_second: time grid resolution (100 -> 10 ms steps).
      max_shift_steps: the longest single TIME_SHIFT, in steps (100 -> 1 s).
      num_velocity_bins: number of VELOCITY events (bins over MIDI velocity 0..127).

    Encoded sequences are NumPy int32 arrays of shape (n,).
    """

    pad_id = 0
    eos_id = 1

    def __init__(self, steps_per_second=100, max_shift_steps=100, num_velocity_bins=32):
        if int(steps_per_second) < 1 or int(max_shift_steps) < 1:
            raise ValueError("MidiEventTokenizer: steps_per_second and max_shift_steps must be >= 1.")
        if not 1 <= int(num_velocity_bins) <= 64:
            raise ValueError("MidiEventTokenizer: num_velocity_bins must be in [1, 64].")
        self.steps_per_second = int(steps_per_second)
        self.max_shift_steps = int(max_shift_steps)
        self.num_velocity_bins = int(num_velocity_bins)
        self.note_on_offset = 2
        self.note_off_offset = self.note_on_offset + _NUM_PITCHES
        self.time_shift_offset = self.note_off_offset + _NUM_PITCHES
        self.velocity_offset = self.time_shift_offset + self.max_shift_steps
        self.vocab_size = self.velocity_offset + self.num_velocity_bins

    # ----------------------------------------------------------------- binning
    def velocity_to_bin(self, velocity):
        """MIDI velocity (0..127, clipped) -> bin in [0, num_velocity_bins)."""
        velocity = min(max(int(velocity), 0), 127)
        return velocity * self.num_velocity_bins // 128

    def bin_to_velocity(self, velocity_bin):
        """Bin -> the MIDI velocity at its centre (at least 1)."""
        return max(1, int((velocity_bin + 0.5) * 128 / self.num_velocity_bins))

    def _to_step(self, seconds):
        return max(0, int(math.floor(seconds * self.steps_per_second + 0.5)))

    # ---------------------------------------------------------------- encoding
    def _grid_notes(self, pm):
        """PrettyMIDI -> sorted list of (start_step, end_step, pitch, velocity_bin)."""
        by_pitch = collections.defaultdict(list)
        for instrument in pm.instruments:
            if instrument.is_drum:
                continue
            for note in instrument.notes:
                start = self._to_step(note.start)
                end = max(self._to_step(note.end), start + 1)
                by_pitch[int(note.pitch)].append([start, end, self.velocity_to_bin(note.velocity)])
        notes = []
        for pitch, items in by_pitch.items():
            items.sort()
            resolved = []
            for start, end, vbin in items:
                if resolved and resolved[-1][0] == start:      # same onset: merge
                    resolved[-1][1] = max(resolved[-1][1], end)
                    resolved[-1][2] = max(resolved[-1][2], vbin)
                elif resolved and resolved[-1][1] > start:     # re-struck: end previous
                    resolved[-1][1] = start
                    resolved.append([start, end, vbin])
                else:
                    resolved.append([start, end, vbin])
            notes.extend((s, e, pitch, v) for s, e, v in resolved)
        return sorted(notes)

    def encode(self, pm, add_eos=False):
        """`pretty_midi.PrettyMIDI` -> event ids, NumPy int32 (n,) (see module docstring)."""
        if not isinstance(pm, pretty_midi.PrettyMIDI):
            raise ValueError(f"MidiEventTokenizer.encode expects a pretty_midi.PrettyMIDI, got "
                             f"{type(pm).__name__}; use encode_file for paths or bytes.")
        events = []  # (step, 0 = off / 1 = on, pitch, velocity_bin)
        for start, end, pitch, vbin in self._grid_notes(pm):
            events.append((end, 0, pitch, 0))
            events.append((start, 1, pitch, vbin))
        events.sort()
        ids, now, current_bin = [], 0, None
        for step, kind, pitch, vbin in events:
            gap = step - now
            while gap > 0:
                shift = min(gap, self.max_shift_steps)
                ids.append(self.time_shift_offset + shift - 1)
                gap -= shift
            now = step
            if kind == 0:
                ids.append(self.note_off_offset + pitch)
            else:
                if vbin != current_bin:
                    ids.append(self.velocity_offset + vbin)
                    current_bin = vbin
                ids.append(self.note_on_offset + pitch)
        if add_eos:
            ids.append(self.eos_id)
        return np.asarray(ids, dtype=np.int32)

    def encode_file(self, path_or_bytes, add_eos=False):
        """Encodes a `.mid` file given as a path (str / PathLike) or its raw bytes."""
        if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
            pm = pretty_midi.PrettyMIDI(io.BytesIO(bytes(path_or_bytes)))
        else:
            pm = pretty_midi.PrettyMIDI(os.fspath(path_or_bytes))
        return self.encode(pm, add_eos=add_eos)

    # ---------------------------------------------------------------- decoding
    def _as_id_list(self, ids):
        array = np.asarray(ids)
        if array.ndim != 1:
            raise ValueError(f"MidiEventTokenizer: expected a 1-D id sequence, got shape {array.shape}.")
        if array.size and not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"MidiEventTokenizer: expected integer ids, got dtype {array.dtype}.")
        bad = np.flatnonzero((array < 0) | (array >= self.vocab_size)) if array.size else []
        if len(bad):
            raise ValueError(f"MidiEventTokenizer: id {int(array[bad[0]])} at position {int(bad[0])} "
                             f"is outside [0, vocab_size={self.vocab_size}).")
        return [int(i) for i in array]

    def decode(self, ids):
        """Event ids (1-D, any integer array / list / eager Tensor) -> `pretty_midi.PrettyMIDI`.

        One piano instrument; invalid sequences are repaired as described in the
        module docstring.
        """
        sps = self.steps_per_second
        pm = pretty_midi.PrettyMIDI(resolution=5 * sps, initial_tempo=120.0)
        piano = pretty_midi.Instrument(program=0, name="piano")
        now, vbin, sounding, notes = 0, self.num_velocity_bins // 2, {}, []

        def close(pitch, end):
            start, note_bin = sounding.pop(pitch)
            if end > start:
                notes.append((start, end, pitch, note_bin))

        for token in self._as_id_list(ids):
            if token < self.note_on_offset:                    # pad / eos
                continue
            if token < self.note_off_offset:                   # NOTE_ON
                pitch = token - self.note_on_offset
                if pitch in sounding:
                    close(pitch, now)
                sounding[pitch] = (now, vbin)
            elif token < self.time_shift_offset:               # NOTE_OFF
                pitch = token - self.note_off_offset
                if pitch in sounding:
                    close(pitch, now)
            elif token < self.velocity_offset:                 # TIME_SHIFT
                now += token - self.time_shift_offset + 1
            else:                                              # VELOCITY
                vbin = token - self.velocity_offset
        for pitch in list(sounding):
            close(pitch, max(now, sounding[pitch][0] + 1))
        for start, end, pitch, note_bin in sorted(notes):
            piano.notes.append(pretty_midi.Note(
                velocity=self.bin_to_velocity(note_bin), pitch=pitch,
                start=start / sps, end=end / sps))
        pm.instruments.append(piano)
        return pm

    def write_midi(self, ids, path):
        """Decodes `ids` and writes a standard MIDI file; returns `path`."""
        self.decode(ids).write(os.fspath(path))
        return path

    # ------------------------------------------------------------------- misc
    def event_to_string(self, token):
        """A human-readable name for one id, e.g. 'NOTE_ON(60)', 'TIME_SHIFT(25=250ms)'."""
        token = int(token)
        if not 0 <= token < self.vocab_size:
            raise ValueError(f"MidiEventTokenizer: id {token} is outside [0, {self.vocab_size}).")
        if token == self.pad_id:
            return "PAD"
        if token == self.eos_id:
            return "EOS"
        if token < self.note_off_offset:
            return f"NOTE_ON({token - self.note_on_offset})"
        if token < self.time_shift_offset:
            return f"NOTE_OFF({token - self.note_off_offset})"
        if token < self.velocity_offset:
            steps = token - self.time_shift_offset + 1
            return f"TIME_SHIFT({steps}={steps * 1000 / self.steps_per_second:g}ms)"
        return f"VELOCITY({token - self.velocity_offset})"

    def get_config(self):
        return {
            "steps_per_second": self.steps_per_second,
            "max_shift_steps": self.max_shift_steps,
            "num_velocity_bins": self.num_velocity_bins,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        return f"MidiEventTokenizer(vocab_size={self.vocab_size}, **{self.get_config()})"
