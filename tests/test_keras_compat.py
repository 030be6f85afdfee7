"""The private Keras APIs the library uses exist in the installed Keras (one loud line if not),
and no module but `reformer_keras/tf_keras_compat.py` touches them."""

import pathlib
import re

import keras
import pytest

from reformer_keras import tf_keras_compat

ROOT = pathlib.Path(__file__).resolve().parents[1] / "reformer_keras"


def test_installed_keras_has_every_private_api_we_use():
    tf_keras_compat.check()


def test_a_missing_private_api_fails_with_one_line_naming_keras_and_the_attribute(monkeypatch):
    monkeypatch.setattr(tf_keras_compat, "PRIVATE_APIS", tf_keras_compat.PRIVATE_APIS + (
        ("optimizers.Adam", "_no_such_slot_list"),))
    with pytest.raises(RuntimeError) as err:
        tf_keras_compat.check()
    message = str(err.value)
    assert "\n" not in message
    assert f"Keras {keras.__version__}" in message
    assert "keras.optimizers.Adam._no_such_slot_list" in message


def test_no_other_module_touches_keras_internals():
    names = sorted({attribute for _, attribute in tf_keras_compat.PRIVATE_APIS
                    if attribute.startswith("_")})
    pattern = re.compile(r"keras\.src|\.(%s)\b" % "|".join(map(re.escape, names)))
    found = [f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
             for path in sorted(ROOT.rglob("*.py")) if path.name != "tf_keras_compat.py"
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if pattern.search(line.split("#")[0])]
    assert not found, found
