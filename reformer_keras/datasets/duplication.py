"""`duplication`: the Reformer paper's synthetic duplication task (Kitaev et al. 2020, sec. 5).

Every example is `0 w 0 w`: a separator 0, a word w of `word_length` symbols drawn uniformly
from 1..vocab_size-1, the separator again, and w again. A model that attends well copies the
second w from the first; only the second copy is predictable, so the loss is taken on it.

Features (length L = 2 * (word_length + 1)):
  tokens:    int32 (L,). tokens[0] = tokens[word_length + 1] = 0,
             tokens[1:word_length + 1] = tokens[word_length + 2:] = w.
  loss_mask: int32 (L,), 1 where tokens[t] is a symbol of the second copy of w
             (t in [word_length + 2, L)), else 0. For next-token training on
             inputs = tokens[:-1], targets = tokens[1:], use sample weights loss_mask[1:].

Configs (name: word_length, vocab_size, train / test sizes, seed):
  w127_v128 (default): |w| = 127, vocab 128 -> L = 256, 50,000 / 1,000 (the paper's task with
                       N = 127 symbols at CPU scale).
  w511_v128:           |w| = 511, vocab 128 -> L = 1024 (the paper's length), 50,000 / 1,000.
  tiny:                |w| = 15,  vocab 16  -> L = 32, 256 / 64 (for tests).

Generation is deterministic: split s (train = 0, test = 1) draws all its words at once from
`np.random.default_rng([seed, s]).integers(1, vocab_size, size=(n, word_length))`; example i is
row i (see `make_words`). Train and test come from different streams.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow_datasets as tfds

SPLIT_STREAMS = {"train": 0, "test": 1}

_DESCRIPTION = """\
Synthetic duplication task of the Reformer paper: sequences 0 w 0 w with w a random word over
symbols 1..vocab_size-1 (0 is the separator). `loss_mask` marks the second copy of w, the only
part a model can predict. Deterministic (seeded numpy generation).
"""

_CITATION = """\
@inproceedings{kitaev2020reformer,
  title = {Reformer: The Efficient Transformer},
  author = {Kitaev, Nikita and Kaiser, {\\L}ukasz and Levskaya, Anselm},
  booktitle = {International Conference on Learning Representations},
  year = {2020},
  url = {https://openreview.net/forum?id=rkgNKkHtvB}
}
"""


@dataclasses.dataclass(eq=False)
class DuplicationConfig(tfds.core.BuilderConfig):
    """A duplication task size: |w|, the vocabulary (0 = separator) and the number of examples."""

    word_length: int = 127
    vocab_size: int = 128
    num_train: int = 50_000
    num_test: int = 1_000
    seed: int = 0

    @property
    def length(self) -> int:
        """The sequence length 2 * (word_length + 1)."""
        return 2 * (self.word_length + 1)


def make_words(num_examples: int, word_length: int, vocab_size: int, seed: int,
               stream: int) -> np.ndarray:
    """The words w of one split: int32 (num_examples, word_length), symbols in 1..vocab_size-1."""
    if vocab_size < 2:
        raise ValueError("vocab_size must be >= 2 (0 is the separator)")
    rng = np.random.default_rng([seed, stream])
    words = rng.integers(1, vocab_size, size=(num_examples, word_length), dtype=np.int64)
    return words.astype(np.int32)


def make_sequences(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """words (n, |w|) -> (tokens, loss_mask), int32 (n, 2 * (|w| + 1)): `0 w 0 w` and its mask."""
    words = np.asarray(words, np.int32)
    n, word_length = words.shape
    zeros = np.zeros((n, 1), np.int32)
    tokens = np.concatenate([zeros, words, zeros, words], axis=1)
    mask = np.zeros_like(tokens)
    mask[:, word_length + 2:] = 1
    return tokens, mask


class Duplication(tfds.core.GeneratorBasedBuilder):
    """TFDS builder for the synthetic duplication task (see module docstring)."""

    name = "duplication"
    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: configs w127_v128 (default), w511_v128, tiny."}
    BUILDER_CONFIGS = [
        DuplicationConfig(name="w127_v128", word_length=127, vocab_size=128, num_train=50_000,
                          num_test=1_000, description="|w|=127, symbols 1..127, length 256."),
        DuplicationConfig(name="w511_v128", word_length=511, vocab_size=128, num_train=50_000,
                          num_test=1_000,
                          description="|w|=511, symbols 1..127, length 1024 (the paper's)."),
        DuplicationConfig(name="tiny", word_length=15, vocab_size=16, num_train=256, num_test=64,
                          description="|w|=15, symbols 1..15, length 32; for tests."),
    ]
    DEFAULT_BUILDER_CONFIG_NAME = "w127_v128"

    def _info(self) -> tfds.core.DatasetInfo:
        length = self.builder_config.length
        return tfds.core.DatasetInfo(
            builder=self,
            description=_DESCRIPTION,
            features=tfds.features.FeaturesDict({
                "tokens": tfds.features.Tensor(shape=(length,), dtype=np.int32,
                                               doc="0 w 0 w, symbols 1..vocab_size-1."),
                "loss_mask": tfds.features.Tensor(shape=(length,), dtype=np.int32,
                                                  doc="1 on the second copy of w."),
            }),
            supervised_keys=None,
            homepage="https://openreview.net/forum?id=rkgNKkHtvB",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # Synthetic: nothing to read.
        config = self.builder_config
        sizes = {"train": config.num_train, "test": config.num_test}
        return {split: self._generate_examples(split, sizes[split]) for split in SPLIT_STREAMS}

    def _generate_examples(self, split, num_examples):
        config = self.builder_config
        words = make_words(num_examples, config.word_length, config.vocab_size, config.seed,
                           SPLIT_STREAMS[split])
        tokens, mask = make_sequences(words)
        for i in range(num_examples):
            yield i, {"tokens": tokens[i], "loss_mask": mask[i]}
