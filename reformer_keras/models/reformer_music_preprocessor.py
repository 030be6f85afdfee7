"""`ReformerMusicPreprocessor`: MIDI -> `MidiEventTokenizer` ids -> fixed-length LM windows.

A piece becomes [start] + events + [eos], where the start token is the tokenizer's eos id (1):
pieces are separated by eos, so "after eos" means "a new piece begins". Host side (NumPy /
pretty_midi); feed the arrays to `model.fit` or `tf.data.Dataset.from_tensor_slices`.
"""

import io

import keras
import numpy as np
import pretty_midi

from reformer_keras.tokenizers.midi import MidiEventTokenizer


def as_midi_tokenizer(tokenizer):
    """None (default tokenizer), a config dict / serialized dict, or a MidiEventTokenizer."""
    if tokenizer is None:
        return MidiEventTokenizer()
    if isinstance(tokenizer, dict):
        if "class_name" in tokenizer:
            return keras.saving.deserialize_keras_object(tokenizer)
        return MidiEventTokenizer(**tokenizer)
    if not isinstance(tokenizer, MidiEventTokenizer):
        raise ValueError(f"`tokenizer` must be a MidiEventTokenizer, got {type(tokenizer).__name__}.")
    return tokenizer


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerMusicPreprocessor:
    """MIDI files -> training windows for `ReformerMusicGenerator`.

    Args:
      sequence_length: model input length L.
      tokenizer: a `MidiEventTokenizer` (or its config); default `MidiEventTokenizer()`.
      stride: step between windows (default L, i.e. non-overlapping).

    `encode(midi)`: a path, raw bytes or `pretty_midi.PrettyMIDI` -> int32 (n + 2,)
      [start] + events + [eos].
    `windows(ids)`: int ids (n,) -> (x, y, sample_weight) with x = {"token_ids": (N, L) int32,
      "padding_mask": (N, L) bool}, y (N, L) int32 (next tokens), sample_weight (N, L) float32;
      the last window is padded with pad id 0 (mask False, weight 0).
    `__call__(midis)`: one or a list of MIDIs -> the windows of all pieces, concatenated.
    """

    def __init__(self, sequence_length, tokenizer=None, stride=None):
        if isinstance(sequence_length, bool) or not isinstance(sequence_length, int) or \
                sequence_length < 1:
            raise ValueError(f"`sequence_length` must be a positive int, got {sequence_length!r}.")
        self.sequence_length = sequence_length
        self.stride = sequence_length if stride is None else int(stride)
        if self.stride < 1:
            raise ValueError(f"`stride` must be >= 1, got {stride!r}.")
        self.tokenizer = as_midi_tokenizer(tokenizer)

    @property
    def start_id(self):
        return self.tokenizer.eos_id

    def encode(self, midi):
        """A MIDI path / bytes / PrettyMIDI -> int32 (n + 2,) [start] + events + [eos]."""
        if isinstance(midi, pretty_midi.PrettyMIDI):
            events = self.tokenizer.encode(midi)
        elif isinstance(midi, (bytes, bytearray, memoryview)):
            events = self.tokenizer.encode(pretty_midi.PrettyMIDI(io.BytesIO(bytes(midi))))
        elif isinstance(midi, str) or hasattr(midi, "__fspath__"):
            events = self.tokenizer.encode_file(midi)
        else:
            raise ValueError("`midi` must be a .mid path, its bytes or a pretty_midi.PrettyMIDI,"
                             f" got {type(midi).__name__}.")
        return np.concatenate([[self.start_id], events, [self.tokenizer.eos_id]]).astype(np.int32)

    def windows(self, ids):
        """Piece ids (n,) -> (x, y, sample_weight) windows of length L (see class doc)."""
        ids = np.asarray(ids)
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            raise ValueError(f"`ids` must be a 1-D integer array, got dtype {ids.dtype} shape "
                             f"{ids.shape}.")
        if ids.size and (ids.min() < 0 or ids.max() >= self.tokenizer.vocab_size):
            raise ValueError(f"`ids` must be in [0, vocab_size={self.tokenizer.vocab_size}).")
        span = self.sequence_length + 1
        starts = range(0, max(len(ids) - 1, 1), self.stride)
        rows, masks = [], []
        for s in starts:
            piece = ids[s:s + span]
            rows.append(np.pad(piece, (0, span - len(piece))))
            masks.append(np.arange(span) < len(piece))
        rows, masks = np.stack(rows).astype(np.int32), np.stack(masks)
        x = {"token_ids": rows[:, :-1], "padding_mask": masks[:, :-1]}
        return x, rows[:, 1:], masks[:, 1:].astype(np.float32)

    def __call__(self, midis):
        if not isinstance(midis, (list, tuple)):
            midis = [midis]
        if not midis:
            raise ValueError("`midis` is empty.")
        parts = [self.windows(self.encode(m)) for m in midis]
        x = {k: np.concatenate([p[0][k] for p in parts]) for k in ("token_ids", "padding_mask")}
        return x, np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])

    def get_config(self):
        return {"sequence_length": self.sequence_length, "stride": self.stride,
                "tokenizer": self.tokenizer.get_config()}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
