"""A bigram model over event ids: the simple baseline a sequence model of events must beat.

  model = EventBigram(vocab_size=390).fit(documents)    # documents: 1-D int event-id arrays
  ids = model.sample(start_id=1, num_events=511, seed=0)  # int32 (511,)

P(next | previous) = (count(previous, next) + alpha) / (count(previous) + alpha * vocab),
counted over consecutive events of each document (no pair across documents).
"""

import numpy as np


class EventBigram:
    """Add-alpha smoothed bigram model over ids in [0, vocab_size)."""

    def __init__(self, vocab_size, alpha=0.01):
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, (int, np.integer)) or \
                vocab_size < 1:
            raise ValueError(f"vocab_size must be a positive int, got {vocab_size!r}")
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.vocab_size, self.alpha = int(vocab_size), float(alpha)
        self.counts = None

    def fit(self, documents):
        """Counts the bigrams of `documents` (iterable of 1-D int arrays); returns self."""
        counts = np.zeros((self.vocab_size, self.vocab_size), np.float64)
        seen = 0
        for doc in documents:
            doc = np.asarray(doc)
            if doc.ndim != 1 or (doc.size and doc.dtype.kind not in "iu"):
                raise ValueError(f"documents must be 1-D int arrays, got {doc.dtype} "
                                 f"{doc.shape}")
            if doc.size and (doc.min() < 0 or doc.max() >= self.vocab_size):
                raise ValueError(f"event ids must be in [0, {self.vocab_size}), got "
                                 f"[{doc.min()}, {doc.max()}]")
            np.add.at(counts, (doc[:-1], doc[1:]), 1.0)
            seen += max(doc.size - 1, 0)
        if seen == 0:
            raise ValueError("no bigram in the documents (each needs at least 2 events)")
        self.counts = counts
        return self

    def probabilities(self):
        """(V, V) float64: row p = P(next | previous = p)."""
        if self.counts is None:
            raise ValueError("the bigram model is not fitted: call fit() first")
        smoothed = self.counts + self.alpha
        return smoothed / smoothed.sum(axis=1, keepdims=True)

    def sample(self, start_id, num_events, seed=None):
        """int32 (num_events,) events following `start_id` (not included)."""
        probs = self.probabilities()
        rng = np.random.default_rng(seed)
        out, previous = [], int(start_id)
        for _ in range(int(num_events)):
            previous = int(rng.choice(self.vocab_size, p=probs[previous]))
            out.append(previous)
        return np.asarray(out, np.int32)
