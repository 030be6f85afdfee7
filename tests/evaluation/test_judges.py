"""The judges against independent references: loops, scipy, hand-counted pieces, sklearn data."""

import collections

import numpy as np
import pretty_midi
import pytest

from reformer_keras.evaluation import EventBigram, ImageJudge, music_measures
from reformer_keras.evaluation.image_judge import downsample, quantize_levels, transform_images


def test_quantize_and_downsample_match_loops():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 4, 6, 1)).astype(np.uint8)
    quantised = quantize_levels(images, 4)
    for v, q in zip(images.ravel(), quantised.ravel()):
        level = min(range(4), key=lambda k: abs(int(v) - k * 85))  # 255 / 3 = 85
        assert q == level * 85
    small = downsample(images, 2)
    for n in range(3):
        for i in range(2):
            for j in range(3):
                block = images[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, 0].astype(float)
                assert small[n, i, j, 0] == np.round(block.mean())
    assert np.array_equal(quantize_levels(images, 256), images)
    # digits' 17 levels are kept exactly by levels=17
    digits = np.round(np.arange(17) * 255 / 16).astype(np.uint8)
    assert np.array_equal(quantize_levels(digits, 17), digits)


@pytest.mark.parametrize("bad, message", [
    (dict(images=np.zeros((1, 4, 4, 1), np.float32), levels=4), "uint8"),
    (dict(images=np.zeros((1, 4, 4, 1), np.uint8), levels=1), "levels"),
    (dict(images=np.zeros((1, 5, 4, 1), np.uint8), factor=2), "divisible"),
])
def test_transform_rejects_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        transform_images(bad["images"], bad.get("levels", 256), bad.get("factor", 1))


def test_digits_judge_held_out_accuracy_and_counts():
    from reformer_keras.datasets import digits
    images, labels = digits.load_arrays()
    judge = ImageJudge(levels=17).fit(images[:1500], labels[:1500])
    assert judge.score(images[1500:], labels[1500:]) > 0.85
    with pytest.raises(ValueError, match="shape"):
        judge.predict(np.zeros((1, 16, 16, 1), np.uint8))
    # judge() on real test images: its figures are the plain counts of predict()
    verdict = judge.judge(images[1500:], labels[1500:])
    predicted = judge.predict(images[1500:])
    for c in range(10):
        rows = labels[1500:] == c
        assert verdict["per_class"][c] == pytest.approx(np.mean(predicted[rows] == c))
        assert sum(verdict["confusion"][c]) == rows.sum()
    assert verdict["overall"] == pytest.approx(judge.score(images[1500:], labels[1500:]))


def _piece(notes):
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes = [pretty_midi.Note(80, p, s, e) for p, s, e in notes]
    pm.instruments.append(inst)
    return pm


def test_piece_measures_of_a_hand_counted_piece():
    # a C major chord held 2 s (3 voices), then a lone G4 for 1 s: 4 notes over 3 s
    m = music_measures.piece_measures(_piece([(60, 0, 2), (64, 0, 2), (67, 0, 2),
                                              (67, 2, 3)]))
    expected = np.zeros(12)
    expected[[0, 4, 7]] = [1, 1, 2]
    np.testing.assert_allclose(m["pitch_class_histogram"], expected / 4)
    assert m["pitch_range"] == 7
    assert m["notes_per_second"] == pytest.approx(4 / 3)
    assert m["polyphony"] == pytest.approx((3 * 2 + 1 * 1) / 3, rel=1e-2)  # time-weighted
    assert music_measures.piece_measures(pretty_midi.PrettyMIDI()) is None


def test_set_distances_match_scipy():
    from scipy.stats import wasserstein_distance
    rng = np.random.default_rng(1)
    def random_piece():
        return _piece([(int(p), float(s), float(s) + 0.5)
                       for p, s in zip(rng.integers(48, 80, 12), rng.random(12) * 4)])
    a = music_measures.set_measures([random_piece() for _ in range(5)])
    b = music_measures.set_measures([random_piece() for _ in range(7)])
    d = music_measures.compare_sets(a, b)
    for key in music_measures.SCALAR_MEASURES:
        ref = [m[key] for m in b]
        assert d[key] == pytest.approx(
            wasserstein_distance([m[key] for m in a], ref) / np.std(ref))
    pooled_a = sum(m["pitch_class_histogram"] * m["notes"] for m in a)
    pooled_b = sum(m["pitch_class_histogram"] * m["notes"] for m in b)
    assert d["pitch_class_histogram"] == pytest.approx(
        0.5 * np.abs(pooled_a / pooled_a.sum() - pooled_b / pooled_b.sum()).sum())
    assert music_measures.compare_sets(b, b)["pitch_class_histogram"] == 0


def test_bigram_probabilities_match_counting_and_sampling_follows_them():
    docs = [np.array([1, 2, 3, 2, 3, 4]), np.array([2, 3, 1])]
    model = EventBigram(5, alpha=0.5).fit(docs)
    pairs = collections.Counter((int(a), int(b)) for d in docs for a, b in zip(d[:-1], d[1:]))
    probs = model.probabilities()
    for prev in range(5):
        total = sum(c for (p, _), c in pairs.items() if p == prev)
        for nxt in range(5):
            assert probs[prev, nxt] == pytest.approx((pairs[(prev, nxt)] + 0.5) /
                                                     (total + 0.5 * 5))
    # a deterministic chain (tiny alpha): 1 -> 2 -> 3 -> 4 -> 1 ...
    chain = EventBigram(5, alpha=1e-9).fit([np.array([1, 2, 3, 4, 1, 2, 3, 4, 1])])
    assert chain.sample(1, 8, seed=0).tolist() == [2, 3, 4, 1, 2, 3, 4, 1]
    with pytest.raises(ValueError, match="in \\[0, 5\\)"):
        EventBigram(5).fit([np.array([1, 7])])
    with pytest.raises(ValueError, match="not fitted"):
        EventBigram(5).sample(1, 3)
