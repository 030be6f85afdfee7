"""`ReformerConfig` / `Seq2SeqConfig`: validated once with one message per rule, JSON round
trip, the position rule; the trainers' model flags are generated from the fields, and
`num_hashes` goes flag -> config field -> attention factory -> `LSHSelfAttention`."""
import json
import pathlib
import re
import subprocess
import sys

import pytest

from reformer_keras.config import ReformerConfig, Seq2SeqConfig
from reformer_keras.presets import PRESETS

ROOT = pathlib.Path(__file__).resolve().parents[1]
SIZES = dict(vocab_size=20, d_model=16, num_layers=2, num_heads=2, d_ff=32)


@pytest.mark.parametrize("changes, message", [
    (dict(num_hashes=0), "`num_hashes` must be an integer >= 1, got 0."),
    (dict(num_hashes=True), "`num_hashes` must be an integer >= 1, got True."),
    (dict(dropout=1.0), "`dropout` must be a float in [0, 1), got 1.0."),
    (dict(attention_types=("lsh", "banana")), "`attention_types` must be a non-empty list"),
    (dict(num_buckets=3), "`num_buckets` must be None, 1, an even integer"),
    (dict(attn_chunks=3), "`attn_chunks` must divide num_heads=2"),
    (dict(query_chunk_len=10, bucket_size=4), "multiple of bucket_size=4"),
    (dict(axial_shape=(4, 4), max_len=32), "`max_len` 32 differs from the axial position "
                                           "table's length prod(axial_shape=[4, 4]) = 16"),
    (dict(axial_shape=(4, 4), axial_dims=(8, 4)), "sum to d_model=16"),
    (dict(axial_dims=(8, 8)), "`axial_dims` needs `axial_shape`."),
])
def test_invalid_options_raise_one_line_naming_the_option(changes, message):
    with pytest.raises(ValueError) as err:
        ReformerConfig(**{**SIZES, **changes})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_round_trip_replace_and_resolved():
    config = ReformerConfig(**SIZES, attention_types=["local", "lsh"], axial_shape=[4, 8])
    assert config.attention_types == ("local", "lsh") and config.axial_shape == (4, 8)
    as_json = json.loads(json.dumps(config.to_dict()))
    assert ReformerConfig.from_dict(as_json) == config
    with pytest.raises(ValueError, match=r"unknown ReformerConfig option\(s\) \['hashes'\]"):
        ReformerConfig.from_dict({**as_json, "hashes": 2})
    with pytest.raises(ValueError, match="`num_hashes` must be an integer >= 1"):
        config.replace(num_hashes=-1)
    resolved = config.resolved()
    assert (resolved.head_dim, resolved.local_chunk_size, resolved.max_len,
            resolved.axial_dims, resolved.position_init_stddev) == (8, 64, 32, (8, 8), 0.25)
    # d_model changes keep derived values derived (the raw config stores None).
    assert config.replace(d_model=32).resolved().head_dim == 16


def test_seq2seq_config_splits_into_two_stacks():
    config = PRESETS["tiny_seq2seq"].config
    enc, dec = config.encoder_config(), config.decoder_config()
    assert (enc.causal, dec.causal, enc.seed, dec.seed) == (False, True, 0, 1)
    assert enc.attention_types == ("local", "lsh") and dec.attention_types == ("lsh", "full")
    both = config.with_options(num_layers=3, num_hashes=4)
    assert (both.num_encoder_layers, both.num_decoder_layers, both.num_hashes) == (3, 3, 4)
    with pytest.raises(ValueError, match="`shared_qk` does not apply to a seq2seq model"):
        config.with_options(shared_qk=True)
    with pytest.raises(ValueError, match="`num_encoder_layers` must be an integer >= 1"):
        config.replace(num_encoder_layers=0)
    assert Seq2SeqConfig.from_dict(config.to_dict()) == config


def test_position_table_rule_for_training_windows():
    config = PRESETS["tiny_text"].config                         # axial 16 x 16
    assert config.sized_for(256) == (config, "")
    sized, note = config.sized_for(128)
    assert (sized.axial_shape, sized.max_len) == (None, 128)
    assert "axial positions 16x16 = 256 != seq_len 128" in note


def _parse_in_fresh_process(*argv):
    """Parses trainers/train.py's flags in a new interpreter; returns (error line or "",
    num_hashes help, modules loaded)."""
    code = (
        "import sys, json\n"
        "from absl import flags\n"
        "from trainers import flags as tf_\n"
        "tf_.define_train_flags()\n"
        "try:\n"
        f"    tf_.FLAGS(['train', '--model_dir={ROOT}/.pytest_flags_probe', *{list(argv)!r}])\n"
        "    error = ''\n"
        "except flags.Error as err:\n"
        "    error = ' '.join(str(err).split())\n"
        "print(json.dumps([error, tf_.FLAGS['num_hashes'].help,\n"
        "                  sorted(m for m in ('tensorflow', 'keras') if m in sys.modules)]))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_num_hashes_flag_comes_from_the_config_field():
    error, help_text, modules = _parse_in_fresh_process("--num_hashes=0")
    with pytest.raises(ValueError) as want:
        ReformerConfig(**SIZES, num_hashes=0)
    assert error == f"flag --num_hashes=0: {want.value}"        # the config's message
    assert help_text.startswith(ReformerConfig.help("num_hashes"))
    assert modules == []                                        # checked before TF is imported
    error, _, _ = _parse_in_fresh_process("--num_hashes=3", "--query_chunk_len=48")
    assert "`query_chunk_len` must be None or a multiple of bucket_size=32, got 48." in error
    assert _parse_in_fresh_process("--num_hashes=3")[0] == ""


def test_num_hashes_passes_through_three_places():
    """Named in the config field, the attention factory and the LSH layer: the trainers, the
    training library and the other model modules do not name it as an option."""
    def mentions(path, pattern):
        return bool(re.search(pattern, path.read_text()))
    front = list((ROOT / "trainers").glob("*.py")) + \
        list((ROOT / "reformer_keras" / "training").glob("*.py"))
    assert [p.name for p in front if mentions(p, r"\bnum_hashes\b")] == []
    models = (ROOT / "reformer_keras" / "models").glob("*.py")
    assert [p.name for p in models if mentions(p, r"config\.num_hashes|num_hashes=self\.")] == \
        ["attention_factory.py"]
    assert mentions(ROOT / "reformer_keras" / "config.py", r"\n    num_hashes: int = _field")


def test_num_hashes_reaches_the_lsh_layers_of_a_trainer_built_model():
    from reformer_keras.datasets import pipelines  # pylint: disable=import-outside-toplevel
    from reformer_keras.training import model_factory  # pylint: disable=import-outside-toplevel
    info = pipelines.describe("shakespeare_plays", "lm", 32)
    model = model_factory.build_model("lm", "tiny_text", info,
                                      dict(num_hashes=3, d_model=16, attention_types=["lsh"]))
    layers = model._flatten_layers()  # pylint: disable=protected-access
    lsh = [layer for layer in layers if type(layer).__name__ == "LSHSelfAttention"]
    assert len(lsh) == 2 and all(layer.num_hashes == 3 for layer in lsh)
