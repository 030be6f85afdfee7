"""Media writers, checked by re-reading the PNGs with Pillow."""
import numpy as np
import pretty_midi
import pytest
from PIL import Image

from reformer_keras.media import write_piano_roll_png, write_png_grid


def test_png_grid_rgb_layout_and_pixels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 4, 3, 3), dtype=np.uint8)   # N, H, W, C
    path = tmp_path / "grid.png"
    assert write_png_grid(images, path, cols=3) == path
    with Image.open(path) as image:
        assert image.format == "PNG" and image.mode == "RGB"
        assert image.size == (3 * 3, 2 * 4)            # (width, height)
        pixels = np.asarray(image)
    for i in range(5):
        r, c = divmod(i, 3)
        np.testing.assert_array_equal(pixels[4 * r:4 * r + 4, 3 * c:3 * c + 3], images[i])
    assert not pixels[4:8, 6:9].any()                    # the empty sixth cell is black


def test_png_grid_grey_scaled_default_cols(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(4, 2, 5, 1), dtype=np.uint8)
    path = write_png_grid(images, str(tmp_path / "sub" / "grey.png"), scale=3)
    with Image.open(path) as image:
        assert image.mode == "L"
        assert image.size == (2 * 5 * 3, 2 * 2 * 3)       # default cols = ceil(sqrt(4)) = 2
        pixels = np.asarray(image)
    for y in range(pixels.shape[0]):
        for x in range(pixels.shape[1]):
            row, col = y // 3, x // 3
            i = (row // 2) * 2 + col // 5
            assert pixels[y, x] == images[i, row % 2, col % 5, 0]


@pytest.mark.parametrize("images, kwargs, message", [
    (np.zeros((2, 4, 4, 3), np.float32), {}, "uint8"),
    (np.zeros((4, 4, 3), np.uint8), {}, "rank 4"),
    (np.zeros((2, 4, 4, 4), np.uint8), {}, "1 or 3 channels"),
    (np.zeros((0, 4, 4, 3), np.uint8), {}, "empty"),
    (np.zeros((2, 4, 4, 3), np.uint8), {"cols": 0}, "cols"),
    (np.zeros((2, 4, 4, 3), np.uint8), {"scale": 1.5}, "scale"),
])
def test_png_grid_bad_inputs(tmp_path, images, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_png_grid(images, tmp_path / "bad.png", **kwargs)
    assert not (tmp_path / "bad.png").exists()


def _small_piece():
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    for k, pitch in enumerate([60, 64, 67, 72]):
        piano.notes.append(pretty_midi.Note(velocity=100, pitch=pitch, start=0.25 * k, end=0.25 * k + 0.5))
    pm.instruments.append(piano)
    return pm


def test_piano_roll_png_from_pretty_midi_and_ids(tmp_path):
    from reformer_keras.tokenizers import MidiEventTokenizer

    pm = _small_piece()
    for name, source in [("pm.png", pm), ("ids.png", MidiEventTokenizer().encode(pm))]:
        path = tmp_path / name
        assert write_piano_roll_png(source, path, fs=50) == path
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] >= 200 and image.size[1] >= 200
            pixels = np.asarray(image.convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10     # something was drawn


def test_piano_roll_png_empty_piece(tmp_path):
    path = write_piano_roll_png(pretty_midi.PrettyMIDI(), tmp_path / "empty.png")
    with Image.open(path) as image:
        assert image.format == "PNG"
