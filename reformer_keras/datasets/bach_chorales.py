"""`bach_chorales`: J. S. Bach's four-part chorales of the music21 corpus, as MIDI files.

Source: the corpus shipped in the `music21==10.5.1` wheel (BSD-3-Clause, no download). The chorale
list is music21's Riemenschneider/BWV table (`music21.corpus.chorales.ChoraleListRKBWV`, the
table behind `corpus.chorales.Iterator(numberingSystem='bwv')`), keyed by BWV number, so
de-duplicated by BWV -> 353 chorales, taken in Riemenschneider order. Each BWV is
matched to its file in `music21.corpus.getComposer('bach')` (`bwv<BWV>.mxl`, else `.xml`, else
`.krn`; if no exact name exists, the one file whose name starts with it, e.g. BWV 18.5-l ->
bwv18.5-lz.mxl), parsed with `corpus.parse(path, forceSource=True)` and written to MIDI with
`music21.midi.translate.streamToMidiFile(score).writestr()`.

Features:
  midi:            tf.string scalar: a standard MIDI file (bytes) with one track per voice
                   (Soprano, Alto, Tenor, Bass); `pretty_midi.PrettyMIDI(io.BytesIO(midi))`
                   reads it.
  bwv:             tf.string scalar, the BWV number as music21 writes it, e.g. "269", "248.12-2".
  title:           tf.string scalar, the chorale's title from music21's table.
  id:              tf.string scalar, the corpus file, e.g. "bach/bwv269.mxl".
  riemenschneider: int32 scalar, the Riemenschneider number (1..371; in music21's table a few
                   different BWV numbers share one).

Splits: by `sha256("bwv" + bwv) % 100`: 0-79 train, 80-89 validation, 90-99 test
(full: 282 / 39 / 32 chorales).

Configs:
  full (default): every chorale; ~2.5 min to prepare on 2 CPU cores (single process; music21
                  parsing and MIDI writing dominate at ~0.4 s per chorale), 1.1 MiB on disk.
  tiny:           the first 16 train, 2 validation and 2 test chorales in Riemenschneider
                  order (a subset of `full`, each in the same split); about 10 s, for tests.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Optional

import numpy as np
import tensorflow_datasets as tfds

from reformer_keras.datasets import _utils

SPLITS = ("train", "validation", "test")
_SUFFIX_PREFERENCE = (".mxl", ".xml", ".musicxml", ".krn")

_DESCRIPTION = """\
The four-part chorales of J. S. Bach from the music21 corpus (353 unique BWV numbers of the
Riemenschneider edition), each converted by music21 to a standard MIDI file with one track per
voice. Split by a hash of the BWV number (80/10/10).
"""

_CITATION = """\
@inproceedings{cuthbert2010music21,
  title = {music21: A Toolkit for Computer-Aided Musicology and Symbolic Music Data},
  author = {Cuthbert, Michael Scott and Ariza, Christopher},
  booktitle = {Proceedings of the 11th International Society for Music Information
               Retrieval Conference (ISMIR)},
  pages = {637--642},
  year = {2010}
}
"""


@dataclasses.dataclass(eq=False)
class BachChoralesConfig(tfds.core.BuilderConfig):
    """`max_per_split`: at most this many chorales per split (first in Riemenschneider order)."""

    max_per_split: Optional[dict] = None


@dataclasses.dataclass(frozen=True)
class Chorale:
    """One chorale of the table, resolved to its corpus file."""

    bwv: str
    title: str
    riemenschneider: int
    path: str  # absolute path of the corpus file
    corpus_id: str  # e.g. "bach/bwv269.mxl"

    @property
    def split(self) -> str:
        return split_of(self.bwv)


def split_of(bwv: str) -> str:
    """The split of a chorale by its BWV number (e.g. "269")."""
    return _utils.hash_split("bwv" + bwv)


def _bach_files() -> dict:
    """{file stem: [paths sorted by suffix preference]} of music21's Bach corpus."""
    from music21 import corpus  # Lazy: music21 is only needed to prepare this dataset.

    by_stem: dict = {}
    for path in corpus.getComposer("bach"):
        stem, suffix = path.name.rsplit(".", 1)
        if "." + suffix in _SUFFIX_PREFERENCE:
            by_stem.setdefault(stem, []).append(path)
    for paths in by_stem.values():
        paths.sort(key=lambda p: _SUFFIX_PREFERENCE.index(p.suffix))
    return by_stem


def list_chorales() -> list[Chorale]:
    """The chorales, unique by BWV, in Riemenschneider order, each resolved to a corpus file."""
    from music21.corpus import chorales

    table = chorales.ChoraleListRKBWV()
    files = _bach_files()
    out, seen = [], set()
    # byBWV is keyed by BWV (unique); a stable sort puts it in Riemenschneider order. (Iterating
    # byRiemenschneider instead would lose 3 chorales that share a Riemenschneider number.)
    for entry in sorted(table.byBWV.values(), key=lambda e: int(e["riemenschneider"])):
        bwv, number = str(entry["bwv"]), int(entry["riemenschneider"])
        if bwv in seen:
            continue
        seen.add(bwv)
        stem = "bwv" + bwv
        candidates = files.get(stem) or [paths[0] for s, paths in sorted(files.items())
                                         if s.startswith(stem)]
        if len(candidates) < 1 or (stem not in files and len(candidates) > 1):
            logging.warning("bach_chorales: no unique corpus file for BWV %s; skipped.", bwv)
            continue
        path = candidates[0]
        out.append(Chorale(bwv=bwv, title=str(entry["title"]), riemenschneider=int(number),
                           path=str(path), corpus_id=f"bach/{path.name}"))
    return out


def chorale_to_midi(path: str) -> bytes:
    """Parses one corpus file (without music21's cache) and returns it as standard MIDI bytes."""
    from music21 import corpus, midi

    score = corpus.parse(path, forceSource=True)
    return midi.translate.streamToMidiFile(score).writestr()


def select(chorales: list[Chorale], max_per_split: Optional[dict]) -> dict[str, list[Chorale]]:
    """Groups chorales by split, keeping the first `max_per_split[split]` of each if given."""
    by_split = {split: [c for c in chorales if c.split == split] for split in SPLITS}
    if max_per_split:
        by_split = {s: cs[:max_per_split.get(s, len(cs))] for s, cs in by_split.items()}
    return by_split


class BachChorales(tfds.core.GeneratorBasedBuilder):
    """TFDS builder for music21's Bach chorales as MIDI (see module docstring)."""

    name = "bach_chorales"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: music21 10.5.1 corpus, 353 chorales as MIDI."}
    BUILDER_CONFIGS = [
        BachChoralesConfig(name="full", description="All chorales (unique BWV numbers)."),
        BachChoralesConfig(name="tiny", max_per_split={"train": 16, "validation": 2, "test": 2},
                           description="20 chorales (16/2/2), a subset of 'full'; for tests."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "full"

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "midi": tfds.features.Tensor(shape=(), dtype=np.object_,
                                             doc="A standard MIDI file (bytes)."),
                "bwv": tfds.features.Text(doc='BWV number, e.g. "269".'),
                "title": tfds.features.Text(doc="Chorale title."),
                "id": tfds.features.Text(doc='music21 corpus file, e.g. "bach/bwv269.mxl".'),
                "riemenschneider": tfds.features.Scalar(dtype=np.int32,
                                                        doc="Riemenschneider number."),
            }),
            supervised_keys=None,
            homepage="https://www.music21.org/",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # The corpus is on disk in the installed music21 wheel.
        by_split = select(list_chorales(), self.builder_config.max_per_split)
        return {split: self._generate_examples(chorales) for split, chorales in by_split.items()}

    def _generate_examples(self, chorales):
        for chorale in chorales:
            yield chorale.bwv, {
                "midi": chorale_to_midi(chorale.path),
                "bwv": chorale.bwv,
                "title": chorale.title,
                "id": chorale.corpus_id,
                "riemenschneider": chorale.riemenschneider,
            }
