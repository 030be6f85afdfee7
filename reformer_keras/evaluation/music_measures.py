"""Measures of a piece of music a musician would read, and distances between sets of pieces.

Per piece (`piece_measures(pm)`, a `pretty_midi.PrettyMIDI`, all non-drum instruments merged):
  pitch_class_histogram  (12,) float, note counts per pitch class (C = 0), summing to 1
  pitch_range            highest minus lowest MIDI pitch (semitones)
  notes_per_second       notes / (last note end - first note start)
  polyphony              mean number of notes sounding, over the 10 ms frames where one sounds

Between a set of pieces and a reference set (`compare_sets`):
  pitch_class_histogram  total-variation distance (half the L1) between the two sets' pooled
                         histograms, in [0, 1]
  the three scalars      1-D Wasserstein distance between the two sets' per-piece values,
                         divided by the reference set's standard deviation
Smaller is closer for every measure.
"""

import numpy as np

SCALAR_MEASURES = ("pitch_range", "notes_per_second", "polyphony")
MEASURES = ("pitch_class_histogram",) + SCALAR_MEASURES
FRAME_SECONDS = 0.01


def _notes(pm):
    notes = [n for inst in pm.instruments if not inst.is_drum for n in inst.notes]
    return [n for n in notes if n.end > n.start]


def piece_measures(pm):
    """The measures of one piece (see the module docstring); None for a piece without notes."""
    notes = _notes(pm)
    if not notes:
        return None
    pitches = np.array([n.pitch for n in notes])
    starts = np.array([n.start for n in notes])
    ends = np.array([n.end for n in notes])
    histogram = np.bincount(pitches % 12, minlength=12).astype(np.float64)
    span = float(ends.max() - starts.min())
    frames = np.zeros(int(np.ceil(span / FRAME_SECONDS)) + 1)
    first = starts.min()
    for start, end in zip(starts, ends):
        frames[int(round((start - first) / FRAME_SECONDS)):
               max(int(round((end - first) / FRAME_SECONDS)),
                   int(round((start - first) / FRAME_SECONDS)) + 1)] += 1
    sounding = frames[frames > 0]
    return dict(pitch_class_histogram=histogram / histogram.sum(),
                pitch_range=float(pitches.max() - pitches.min()),
                notes_per_second=float(len(notes) / max(span, FRAME_SECONDS)),
                polyphony=float(sounding.mean()),
                notes=int(len(notes)), seconds=round(span, 2))


def set_measures(pms):
    """Measures of every piece with notes (a list of dicts)."""
    return [m for m in (piece_measures(pm) for pm in pms) if m is not None]


def summarize(measures):
    """Mean of each scalar measure and the pooled pitch-class histogram of a set."""
    if not measures:
        raise ValueError("no piece with notes in the set")
    out = {k: float(np.mean([m[k] for m in measures])) for k in SCALAR_MEASURES}
    pooled = np.sum([m["pitch_class_histogram"] * m["notes"] for m in measures], axis=0)
    out["pitch_class_histogram"] = (pooled / pooled.sum()).tolist()
    out["pieces"] = len(measures)
    return out


def _wasserstein(a, b):
    """1-D Wasserstein-1 distance between two empirical distributions (NumPy)."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    grid = np.sort(np.concatenate([a, b]))
    cdf_a = np.searchsorted(a, grid[:-1], side="right") / len(a)
    cdf_b = np.searchsorted(b, grid[:-1], side="right") / len(b)
    return float(np.sum(np.abs(cdf_a - cdf_b) * np.diff(grid)))


def compare_sets(measures, reference):
    """{measure: distance of `measures` to `reference`} (both lists of `piece_measures`)."""
    if not measures or not reference:
        raise ValueError("both sets need at least one piece with notes")
    ours, ref = summarize(measures), summarize(reference)
    out = {"pitch_class_histogram": 0.5 * float(np.abs(
        np.asarray(ours["pitch_class_histogram"]) - np.asarray(ref["pitch_class_histogram"])
    ).sum())}
    for key in SCALAR_MEASURES:
        ref_values = [m[key] for m in reference]
        scale = float(np.std(ref_values)) or 1.0
        out[key] = _wasserstein([m[key] for m in measures], ref_values) / scale
    return out
