"""Unusable Hugging Face checkpoints and configurations give one-line errors naming the problem;
the `exports.import_hf` command rejects bad flags at parse time (exit 2)."""

import json
import os
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest

from reformer_keras.convert import HFConfigError, HFWeightsError, hf_config, hf_weights
from reformer_keras.models import from_hf

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _write_safetensors(path, tensors):
    header, offset, chunks = {}, 0, []
    for name, array in tensors.items():
        data = np.ascontiguousarray(array, "<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(array.shape),
                        "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        chunks.append(data)
    blob = json.dumps(header).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(blob)) + blob + b"".join(chunks))


@pytest.fixture
def checkpoint(tmp_path):
    """A writable copy of the `alternating` fixture: (directory, config dict, tensors)."""
    directory = tmp_path / "ckpt"
    shutil.copytree(os.path.join(FIXTURES, "alternating"), directory)
    tensors = hf_weights.read_safetensors(str(directory / "model.safetensors"))
    return directory, hf_config.read_config(str(directory)), tensors


def _config_error(config, match):
    with pytest.raises(HFConfigError, match=match):
        hf_config.lm_arguments(config)


def test_config_fields_we_cannot_honour_are_named(checkpoint):
    _, config, _ = checkpoint
    _config_error({**config, "attn_layers": ["local", "full"]},
                  r"`attn_layers`: unknown attention type\(s\) \['full'\]")
    _config_error({**config, "hidden_act": "gelu_new"}, "`hidden_act`: 'gelu_new'")
    _config_error({**config, "is_decoder": False}, "`is_decoder`")
    _config_error({**config, "num_buckets": None}, "`num_buckets`")
    _config_error({**config, "num_buckets": [2, 3]}, "`num_buckets`")
    _config_error({**config, "lsh_num_chunks_after": 1}, "`lsh_num_chunks_after`")
    _config_error({**config, "axial_pos_shape": [4, 4, 4]}, "`axial_pos_shape`")
    _config_error({**config, "axial_pos_embds_dim": [8, 8]}, "`axial_pos_embds_dim`")
    _config_error({**config, "tie_word_embeddings": True}, "`tie_word_embeddings`")
    _config_error({**config, "model_type": "bert"}, "`model_type`")


def test_missing_weight_is_named(checkpoint):
    directory, _, tensors = checkpoint
    del tensors["reformer.encoder.layers.1.attention.self_attention.value.weight"]
    _write_safetensors(str(directory / "model.safetensors"), tensors)
    with pytest.raises(HFWeightsError, match=r"missing 1 weight.*layers\.1\.attention\."
                                             r"self_attention\.value\.weight"):
        from_hf(str(directory))


def test_wrong_shape_is_named(checkpoint):
    directory, config, _ = checkpoint
    (directory / "config.json").write_text(json.dumps({**config, "feed_forward_size": 40}))
    with pytest.raises(HFWeightsError, match=r"layers\.0\.feed_forward\.dense\.dense\.weight' "
                                             r"has shape \[32, 32\]; the configuration needs "
                                             r"\[40, 32\]"):
        from_hf(str(directory))


def test_attention_type_not_matching_the_checkpoint(checkpoint):
    directory, config, _ = checkpoint
    (directory / "config.json").write_text(json.dumps(
        {**config, "attn_layers": ["lsh", "lsh", "local", "lsh"]}))
    with pytest.raises(HFWeightsError, match=r"layers\.0\.attention\.self_attention\.query_key"):
        from_hf(str(directory))


def test_corrupt_safetensors(checkpoint):
    directory, _, _ = checkpoint
    path = directory / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(HFWeightsError, match="corrupt safetensors entry .*truncated"):
        from_hf(str(directory))
    path.write_bytes(b"\x05\x00")
    with pytest.raises(HFWeightsError, match="corrupt safetensors file"):
        from_hf(str(directory))


def test_bin_without_pytorch(checkpoint):
    try:
        import torch  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
        pytest.skip("PyTorch is installed")
    except ImportError:
        pass
    directory, _, _ = checkpoint
    os.remove(directory / "model.safetensors")
    (directory / "pytorch_model.bin").write_bytes(b"not read")
    with pytest.raises(HFWeightsError, match="needs PyTorch"):
        from_hf(str(directory))


def _command(*args):
    return subprocess.run([sys.executable, "-m", "exports.import_hf", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize("args, message", [
    (["--output=x.keras"], "flag --hf_model=None: must be a directory holding config.json"),
    ([f"--hf_model={os.path.join(FIXTURES, 'lsh_only')}", "--output=x.h5"],
     "flag --output=x.h5: must be a .keras path"),
    ([f"--hf_model={os.path.join(FIXTURES, 'lsh_only')}", "--output=x.keras",
      "--generation_length=64"], "need --export_dir"),
])
def test_command_usage_errors_exit_2(args, message):
    result = _command(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("import_hf: error: ") and message in lines[0]


@pytest.mark.slow  # the command imports TensorFlow (~30 s on a loaded 2-core machine)
def test_command_rejects_corrupt_checkpoint_without_writing(checkpoint, tmp_path):
    directory, _, _ = checkpoint
    (directory / "model.safetensors").write_bytes(b"\x05\x00")
    output = tmp_path / "out.keras"
    result = _command(f"--hf_model={directory}", f"--output={output}")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("import_hf: error: ") and "corrupt safetensors file" in last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]  # nothing written


def test_spiece_model_becomes_the_tokenizer(tmp_path):
    from reformer_keras.models.hf_checkpoint import hf_tokenizer  # pylint: disable=import-outside-toplevel
    from reformer_keras.tokenizers.subword import (  # pylint: disable=import-outside-toplevel
        SentencePieceTokenizer, train_sentencepiece)
    from reformer_keras.tokenizers.text import ByteTokenizer  # pylint: disable=C0415
    proto = train_sentencepiece(["a few months later, said the clerk"] * 20, vocab_size=280)
    (tmp_path / "spiece.model").write_bytes(proto)
    size = SentencePieceTokenizer(proto).vocab_size
    tokenizer = hf_tokenizer(str(tmp_path), size)
    assert isinstance(tokenizer, SentencePieceTokenizer)
    assert tokenizer.detokenize(tokenizer.tokenize("a few")).numpy() == b"a few"
    with pytest.raises(HFConfigError, match=f"{size} pieces, but config field `vocab_size`"):
        hf_tokenizer(str(tmp_path), size + 1)
    assert isinstance(hf_tokenizer(str(tmp_path / "none"), 258), ByteTokenizer)


def test_presets_without_weights_say_so(caplog):
    from reformer_keras.models import presets  # pylint: disable=import-outside-toplevel
    assert "No weights" in presets.PRESETS["enwik8"].description
    assert "No weights" in presets.PRESETS["crime_and_punishment"].description
    with caplog.at_level("INFO"):
        presets.from_preset("tiny_text")
    assert "'tiny_text': randomly initialised weights" in caplog.text


def test_null_hash_seed_takes_the_converter_seed(checkpoint):
    _, config, _ = checkpoint
    assert config["hash_seed"] == 7
    assert hf_config.lm_arguments(config, hash_seed=5)["attention_options"]["hf_lsh"][
        "hash_seed"] == 7
    null = {**config, "hash_seed": None}
    assert hf_config.lm_arguments(null)["attention_options"]["hf_lsh"]["hash_seed"] == 0
    assert hf_config.lm_arguments(null, hash_seed=5)["attention_options"]["hf_lsh"][
        "hash_seed"] == 5
