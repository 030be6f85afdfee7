"""Converted Hugging Face Reformers against Hugging Face's own PyTorch outputs.

The fixtures (`fixtures/NAME/`: a `save_pretrained` directory plus `reference.npz`) were made by
`make_hf_fixtures.py` with transformers' `ReformerModelWithLMHead` (versions, seeds and command in
`fixtures/PROVENANCE.json`); these tests need no PyTorch.
"""

import functools
import os

import numpy as np
import pytest

from reformer_keras.convert import hf_config
from reformer_keras.layers import torch_randn
from reformer_keras.models import ReformerLM, from_hf

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
NAMES = ["local_only", "lsh_only", "alternating", "axial_uneven", "multi_hash"]
LENGTHS = (32, 29, 6, 3)  # chunk multiple, not a multiple, padded to the lcm, standard path


# Greedy runs of the configurations without LSH re-sorting effects run in the slow suite.
SLOW_GREEDY = ("local_only", "axial_uneven")


@functools.lru_cache(maxsize=None)
def converted(name):
    directory = os.path.join(FIXTURES, name)
    model, _ = from_hf(directory)
    return model, dict(np.load(os.path.join(directory, "reference.npz")))


@pytest.mark.parametrize("name", NAMES)
def test_logits_match_hugging_face(name):
    model, ref = converted(name)
    for length in LENGTHS:
        ours = np.asarray(model(ref[f"ids_{length}"].astype("int32")))
        theirs = ref[f"logits_{length}"]
        assert ours.shape == theirs.shape
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-4,
                                   err_msg=f"{name}, length {length}")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in SLOW_GREEDY
                                  else n for n in NAMES])
def test_greedy_generation_matches_hugging_face(name):
    """32 greedy tokens equal Hugging Face's `generate(use_cache=False)` (every step a full
    forward pass, as ours for these models)."""
    model, ref = converted(name)
    prompt = ref["prompt"].astype("int32")
    out = np.asarray(model.generate(prompt, 32, temperature=0.0))
    np.testing.assert_array_equal(out, ref["greedy_uncached"], err_msg=name)


def test_rotations_port_matches_torch_randn():
    for name in NAMES:
        ref = np.load(os.path.join(FIXTURES, name, "reference.npz"))
        if "rotations" not in ref:
            continue
        config = hf_config.read_config(os.path.join(FIXTURES, name))
        ours = torch_randn.randn(config["hash_seed"], ref["rotations"].shape)
        # PyTorch's vectorised log / sin / cos (SLEEF) differ from NumPy's in the last bits.
        np.testing.assert_allclose(ours, ref["rotations"], rtol=0, atol=5e-7, err_msg=name)


def test_from_preset_hf_prefix_and_keras_round_trip(tmp_path):
    directory = os.path.join(FIXTURES, "alternating")
    ref = np.load(os.path.join(directory, "reference.npz"))
    model = ReformerLM.from_preset("hf:" + directory)
    path = str(tmp_path / "m.keras")
    model.save(path)
    import keras  # pylint: disable=import-outside-toplevel
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(ref["ids_29"].astype("int32"))),
                               ref["logits_29"], rtol=0, atol=1e-4)
