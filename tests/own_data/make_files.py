"""Writes small real data sets into a directory, as a user would have them on disk."""
import json
import pathlib
import random

import numpy as np

WORDS = ("the quick brown fox jumps over a lazy dog and runs far away from home while "
         "birds sing in tall green trees").split()


def text_folder(root, files=4, words=300, seed=0):
    """root/doc<i>.txt: `files` UTF-8 documents of random words (with one non-ASCII word)."""
    rng = random.Random(seed)
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        body = " ".join(rng.choice(WORDS) for _ in range(words))
        (root / f"doc{i}.txt").write_text(f"café {body}\n", encoding="utf-8")
    return root


def labelled_jsonl(path, rows=24, seed=0):
    """JSON lines {"body": text, "topic": "birds"|"fox"}."""
    rng = random.Random(seed)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            topic = ("birds", "fox")[i % 2]
            words = [topic] + [rng.choice(WORDS) for _ in range(12)]
            f.write(json.dumps({"body": " ".join(words), "topic": topic}) + "\n")
    return path


def image_folder(root, per_class=6, seed=0):
    """root/{dark,light}/<i>.png: grayscale images of different sizes (10x12 and 16x16)."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    root = pathlib.Path(root)
    for label, base in (("dark", 40), ("light", 210)):
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            shape = (10, 12) if i % 2 else (16, 16)
            pixels = np.clip(base + rng.integers(-30, 30, shape), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / label / f"{i}.png")
    return root


def midi_files(root, count=3, corrupt=True, seed=0):
    """root/piece<i>.mid written with pretty_midi (+ root/broken.mid, not MIDI)."""
    import pretty_midi
    rng = random.Random(seed)
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pm = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(program=0)
        t = 0.0
        for _ in range(40):
            length = rng.choice((0.25, 0.5))
            piano.notes.append(pretty_midi.Note(velocity=80, pitch=rng.randint(55, 75),
                                                start=t, end=t + length))
            t += length
        pm.instruments.append(piano)
        pm.write(str(root / f"piece{i}.mid"))
    if corrupt:
        (root / "broken.mid").write_bytes(b"MThd this is not a MIDI file")
    return root
