"""Writers for files a person looks at: image grids and piano rolls (PNG).

* `write_png_grid(images, path, cols=None, scale=1)`: uint8 images (N, H, W, C),
  C in {1, 3}, tiled row-major into one PNG (Pillow). Empty cells are black.
* `write_piano_roll_png(pm_or_ids, path, fs=100)`: pitch-vs-time piano roll of a
  `pretty_midi.PrettyMIDI` (or of `MidiEventTokenizer` event ids), drawn with
  matplotlib's Agg canvas (no pyplot, no display, no global backend switch).
"""
import math
import os

import numpy as np

__all__ = ["write_png_grid", "write_piano_roll_png"]


def _ensure_parent(path):
    parent = os.path.dirname(os.fspath(path))
    if parent:
        os.makedirs(parent, exist_ok=True)


def write_png_grid(images, path, cols=None, scale=1):
    """Tiles a batch of images into one PNG.

    Args:
      images: uint8 array-like (N, H, W, C) with C = 1 (grey) or 3 (RGB); NumPy or
        an eager Tensor. N >= 1.
      path: output file (str / PathLike); parent directories are created.
      cols: images per row; default `ceil(sqrt(N))`.
      scale: positive integer nearest-neighbour upscaling factor.

    Returns:
      `path`, unchanged. The PNG is (rows*H*scale) x (cols*W*scale) pixels, mode "L"
      for C = 1 and "RGB" for C = 3, where rows = ceil(N / cols); image i sits at
      row i // cols, column i % cols.

    Raises:
      ValueError: wrong dtype, rank, channel count, empty batch, or bad cols / scale.
    """
    from PIL import Image

    array = np.asarray(images)
    if array.dtype != np.uint8:
        raise ValueError(f"write_png_grid: images must have dtype uint8, got {array.dtype} "
                         "(convert with np.clip(x, 0, 255).astype(np.uint8)).")
    if array.ndim != 4:
        raise ValueError(f"write_png_grid: images must have rank 4 (N, H, W, C), got shape {array.shape}.")
    n, height, width, channels = array.shape
    if channels not in (1, 3):
        raise ValueError(f"write_png_grid: images must have 1 or 3 channels, got {channels} "
                         f"(shape {array.shape}).")
    if n == 0 or height == 0 or width == 0:
        raise ValueError(f"write_png_grid: got an empty batch or empty images, shape {array.shape}.")
    if cols is None:
        cols = math.ceil(math.sqrt(n))
    if int(cols) != cols or cols < 1:
        raise ValueError(f"write_png_grid: cols must be a positive integer, got {cols!r}.")
    if int(scale) != scale or scale < 1:
        raise ValueError(f"write_png_grid: scale must be a positive integer, got {scale!r}.")
    cols, scale = int(cols), int(scale)
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * height, cols * width, channels), np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * height:(r + 1) * height, c * width:(c + 1) * width] = array[i]
    if scale > 1:
        grid = np.repeat(np.repeat(grid, scale, axis=0), scale, axis=1)
    image = Image.fromarray(grid[..., 0] if channels == 1 else grid)  # uint8 -> "L" / "RGB"
    _ensure_parent(path)
    image.save(os.fspath(path), format="PNG")
    return path


def write_piano_roll_png(pm_or_ids, path, fs=100, tokenizer=None):
    """Draws a piano roll (pitch vs time, colour = velocity) to a PNG.

    Args:
      pm_or_ids: a `pretty_midi.PrettyMIDI`, or 1-D event ids decoded with
        `tokenizer` (default `MidiEventTokenizer()`).
      path: output file (str / PathLike); parent directories are created.
      fs: piano-roll columns per second (`PrettyMIDI.get_piano_roll(fs)`; drums and
        the sustain pedal are handled as pretty_midi does).
      tokenizer: the `MidiEventTokenizer` used for ids.

    Returns:
      `path`, unchanged. The pitch axis spans the notes played (+-2 semitones);
      an empty piece gives an empty, labelled plot.
    """
    import pretty_midi
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if isinstance(pm_or_ids, pretty_midi.PrettyMIDI):
        pm = pm_or_ids
    else:
        from reformer_keras.tokenizers.midi import MidiEventTokenizer
        pm = (tokenizer or MidiEventTokenizer()).decode(pm_or_ids)
    if fs <= 0:
        raise ValueError(f"write_piano_roll_png: fs must be positive, got {fs!r}.")
    roll = pm.get_piano_roll(fs=fs)                      # float (128, T)
    played = np.flatnonzero(roll.sum(axis=1) > 0) if roll.size else np.array([], int)
    low, high = (max(0, played.min() - 2), min(127, played.max() + 2)) if played.size else (48, 72)
    duration = roll.shape[1] / fs

    figure = Figure(figsize=(max(4.0, min(20.0, 1.0 + duration)), 4.0), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    if roll.shape[1] > 0:
        axes.imshow(roll[low:high + 1], origin="lower", aspect="auto", cmap="magma",
                    interpolation="nearest", vmin=0, vmax=max(127.0, float(roll.max())),
                    extent=(0.0, duration, low - 0.5, high + 0.5))
    else:
        axes.set_xlim(0.0, 1.0)
        axes.set_ylim(low - 0.5, high + 0.5)
    axes.set_xlabel("time (s)")
    axes.set_ylabel("MIDI pitch")
    axes.set_title(f"piano roll ({sum(len(i.notes) for i in pm.instruments)} notes)")
    figure.tight_layout()
    _ensure_parent(path)
    figure.savefig(os.fspath(path), format="png")
    return path
