"""A model's `seed` fixes every initial weight, and gives each random table its own stream.

Two models built from the same seed must be equal weight for weight (the axial position tables
and the task heads included), and no two random weights may start as
copies of each other: one seed for two `RandomNormal` tables of the same scale makes the first
rows of the longer one equal the shorter one (the learned position table was the token table's
first rows).
"""

import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from reformer_keras.models import from_preset

TINY = ["tiny_text", "tiny_image", "tiny_music", "tiny_seq2seq", "tiny_classifier"]
# A non-axial text model too (the learned position table).
CASES = [(name, {}) for name in TINY] + [("tiny_text", dict(axial_shape=None, max_len=256))]


def _weights(name, **overrides):
    model = from_preset(name, **overrides)
    if name == "tiny_seq2seq":
        model.build({"encoder_token_ids": (None, None), "decoder_token_ids": (None, None)})
    else:
        model.build((None, None))
    return {v.path.split("/", 1)[1]: v.numpy() for v in model.weights}


def _random(weights):
    """The randomly initialised weights (not the zeros / ones of biases and norms)."""
    return {k: v for k, v in weights.items() if v.size > 1 and np.std(v) > 0}


@pytest.mark.parametrize("name,overrides", CASES)
def test_same_seed_same_weights_and_no_two_tables_alike(name, overrides):
    first = _weights(name, seed=0, **overrides)
    second = _weights(name, seed=0, **overrides)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    other = _random(_weights(name, seed=1, **overrides))
    random = _random(first)
    assert len(random) >= 6 and random.keys() == other.keys()
    for key in random:
        assert not np.array_equal(random[key], other[key]), f"{key} ignores the seed"
    for (a, x), (b, y) in itertools.combinations(random.items(), 2):
        n = min(x.size, y.size, 64)
        assert not np.allclose(x.ravel()[:n], y.ravel()[:n]), f"{a} starts as a copy of {b}"


def test_derive_seed_is_stable_and_names_streams():
    from reformer_keras.layers import seeding  # pylint: disable=import-outside-toplevel
    derive_seed = seeding.derive_seed
    assert derive_seed(None, "q_kernel") is None
    seeds = {derive_seed(s, n) for s in (0, 1, 7919) for n in ("q_kernel", "k_kernel", "v_kernel")}
    assert len(seeds) == 9 and all(0 <= s < 2**31 for s in seeds)
    # the same in a fresh process with another string-hash salt (Python's own `hash` of a str
    # changes from process to process; initial weights must not)
    code = ("import importlib.util as u, sys; s = u.spec_from_file_location('s', sys.argv[1]); "
            "m = u.module_from_spec(s); s.loader.exec_module(m); "
            "print(m.derive_seed(0, 'q_kernel'), m.derive_seed(5, 'axis_1'))")
    out = subprocess.run([sys.executable, "-c", code, seeding.__file__], capture_output=True,
                         text=True, check=True,
                         env=dict(os.environ, PYTHONHASHSEED="12345")).stdout.split()
    assert out == [str(derive_seed(0, "q_kernel")), str(derive_seed(5, "axis_1"))]
