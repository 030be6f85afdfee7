"""Bad arguments raise ValueErrors naming the argument (MUST 6)."""

import numpy as np
import pytest

from generation_helpers import tiny_lm
from reformer_keras.generation import generate, init_cache

PROMPT = np.array([[1, 2, 3]], "int32")

CASES = [
    (dict(prompt_ids=np.zeros((1, 0), "int32")), "prompt_ids"),        # empty
    (dict(prompt_ids=np.zeros((1, 40), "int32")), "max_len"),          # longer than max_len
    (dict(max_new_tokens=30), "max_new_tokens"),                       # 3 + 30 > 32
    (dict(prompt_ids=PROMPT.astype("float32")), "prompt_ids"),         # not integer
    (dict(prompt_ids=np.array([1, 2, 3], "int32")), "prompt_ids"),     # rank 1
    (dict(prompt_ids=np.array([[1, 16, 3]], "int32")), "prompt_ids"),  # >= vocab
    (dict(prompt_ids=np.array([[1, -1, 3]], "int32")), "prompt_ids"),  # negative
    (dict(prompt_ids=[["a", "b"]]), "prompt_ids"),
    (dict(max_new_tokens=-1), "max_new_tokens"),
    (dict(max_new_tokens=2.0), "max_new_tokens"),
    (dict(temperature=-0.5), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(temperature="hot"), "temperature"),
    (dict(top_k=0), "top_k"),
    (dict(top_k=2.5), "top_k"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(seed=-3), "seed"),
    (dict(seed="x"), "seed"),
    (dict(seed=np.zeros(3, "int32")), "seed"),
    (dict(eos_id=16), "eos_id"),
    (dict(pad_id=-1), "pad_id"),
    (dict(max_length=4), "max_length"),
    (dict(max_length=33), "max_length"),
]


@pytest.fixture(scope="module")
def model():
    return tiny_lm(("local",), max_len=32)


@pytest.mark.parametrize("kwargs,name", CASES, ids=[f"{n}-{i}" for i, (_, n) in enumerate(CASES)])
def test_bad_argument_raises_value_error_naming_it(model, kwargs, name):
    args = dict(prompt_ids=PROMPT, max_new_tokens=4)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"`?{name}`?"):
        generate(model, **args)


def test_init_cache_max_length(model):
    with pytest.raises(ValueError, match="max_length"):
        init_cache(model, 1, 0)
    with pytest.raises(ValueError, match="max_length"):
        init_cache(model, 1, 64)


def test_non_causal_or_foreign_model():
    with pytest.raises(ValueError, match="model"):
        generate(object(), PROMPT, 2)
