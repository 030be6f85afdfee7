"""The converted byte-level model, exported by `exports.import_hf`, continues a prompt through
`generate_text` in a fresh process exactly as Hugging Face's greedy `generate` does on the same
ids ([1] + bytes + 2). Optionally (PyTorch and transformers importable) a live comparison."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CALL = os.path.join(ROOT, "tests", "export", "_call_savedmodel.py")


def _export_and_generate(directory, tmp_path, prompt, name):
    """Runs the import_hf command with --export_dir, then `generate_text` (greedy, 32 new
    tokens) in a fresh process that cannot import reformer_keras -> the output dict."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    convert = subprocess.run(
        [sys.executable, "-m", "exports.import_hf", f"--hf_model={directory}",
         f"--output={tmp_path / (name + '.keras')}", f"--export_dir={tmp_path / 'serving'}",
         "--generation_length=48"], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=1200, check=False)
    assert convert.returncode == 0, convert.stderr[-2000:]
    requests = [{"key": "greedy", "path": str(tmp_path / "serving" / name / "1"),
                 "signature": "generate_text",
                 "inputs": {"prompt": {"value": [prompt], "dtype": "string"},
                            "max_new_tokens": {"value": 32, "dtype": "int32"},
                            "temperature": {"value": 0.0, "dtype": "float32"},
                            "top_k": {"value": 0, "dtype": "int32"},
                            "seed": {"value": 0, "dtype": "int64"}}}]
    (tmp_path / "req.json").write_text(json.dumps(requests))
    call = subprocess.run([sys.executable, CALL, str(tmp_path / "req.json"),
                           str(tmp_path / "res.json")], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=1200, check=False)
    assert call.returncode == 0, call.stderr[-2000:]
    result = json.loads((tmp_path / "res.json").read_text())
    assert not result["modules"]["reformer_keras"]
    return result["results"]["greedy"]


@pytest.mark.slow
def test_exported_generate_text_matches_hugging_face_in_a_fresh_process(tmp_path):
    directory = os.path.join(FIXTURES, "lsh_only")
    ref = np.load(os.path.join(directory, "reference.npz"))
    prompt = json.load(open(os.path.join(FIXTURES, "PROVENANCE.json"), encoding="utf-8"))[
        "text_prompt"]
    out = _export_and_generate(directory, tmp_path, prompt, "byte")
    np.testing.assert_array_equal(np.array(out["token_ids"]["value"]), ref["greedy_text"])
    expected = bytes(int(i) - 2 for i in ref["greedy_text"][0, 1 + len(prompt):])
    assert out["continuation"]["value"][0].encode("latin-1") == expected


@pytest.mark.slow
def test_exported_sentencepiece_model_in_a_fresh_process(tmp_path):
    """spiece.model in the checkpoint directory becomes the graph's tokenizer; the exported
    continuation equals `model.generate` on [eos] + the SentencePiece ids, in this process."""
    from reformer_keras.models import from_hf  # pylint: disable=import-outside-toplevel
    from reformer_keras.tokenizers.subword import (  # pylint: disable=import-outside-toplevel
        train_sentencepiece)
    directory = tmp_path / "ckpt"
    shutil.copytree(os.path.join(FIXTURES, "alternating"), directory)  # vocab_size 40
    text = ["a few months later the student raskolnikov walked down the street to the old "
            "woman"] * 50  # 21 characters + 19 symbols = the fixture's 40 ids
    proto = train_sentencepiece(text, vocab_size=40, byte_fallback=False, model_type="char",
                                user_defined_symbols=[f"<x{i}>" for i in range(19)])
    (directory / "spiece.model").write_bytes(proto)
    model, tokenizer = from_hf(str(directory))
    assert tokenizer.vocab_size == 40
    prompt = "a few months"
    ids = np.concatenate([[tokenizer.eos_id], tokenizer.tokenize(prompt).numpy()])[None]
    expected = np.asarray(model.generate(ids.astype("int32"), 32, temperature=0.0))
    out = _export_and_generate(str(directory), tmp_path, prompt, "ckpt_sp")
    np.testing.assert_array_equal(np.array(out["token_ids"]["value"]), expected)
    assert out["text"]["value"][0].encode("latin-1") == tokenizer.detokenize(
        expected[0]).numpy()


def test_live_hugging_face_comparison(tmp_path):
    """Random HF model built here (not from the fixtures): logits on a fresh config."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from reformer_keras.models import from_hf  # pylint: disable=import-outside-toplevel
    torch.manual_seed(0)
    config = transformers.ReformerConfig(
        vocab_size=32, hidden_size=16, num_attention_heads=2, attention_head_size=8,
        attn_layers=["lsh", "local", "lsh"], feed_forward_size=24, is_decoder=True,
        lsh_attn_chunk_length=4, local_attn_chunk_length=2, num_buckets=[2, 2], num_hashes=3,
        hash_seed=5, axial_pos_shape=[4, 8], axial_pos_embds_dim=[4, 12],
        max_position_embeddings=32, initializer_range=0.5, hidden_dropout_prob=0.0,
        local_attention_probs_dropout_prob=0.0, eos_token_id=None)
    hf = transformers.ReformerModelWithLMHead(config).eval()
    hf.save_pretrained(tmp_path)
    ids = np.random.default_rng(0).integers(0, 32, size=(2, 27))
    with torch.no_grad():
        theirs = hf(torch.tensor(ids)).logits.numpy()
    model, _ = from_hf(str(tmp_path))
    np.testing.assert_allclose(np.asarray(model(ids.astype("int32"))), theirs, atol=1e-4)
