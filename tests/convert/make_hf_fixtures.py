"""Regenerates the Hugging Face reference fixtures of `tests/convert` (needs PyTorch).

Run from the repository root with an environment holding torch and transformers:
    python tests/convert/make_hf_fixtures.py
For each configuration in `CONFIGS`, builds a randomly initialised
`transformers.ReformerModelWithLMHead` (torch.manual_seed(SEED + index)), saves it with
`save_pretrained` (config.json + model.safetensors) under `fixtures/NAME/`, and records in
`fixtures/NAME/reference.npz`:
  ids_L       (2, L) int64 inputs, logits_L (2, L, V) float32 eval-mode logits, per length L;
  prompt      (1, P) int64; greedy_uncached (1, P + 32) from `generate(use_cache=False)`;
  greedy_cached (1, P + 32) from `generate(use_cache=True)` (Hugging Face's cached decoding);
  text_ids / greedy_text (byte-level models) the same for [1] + bytes(TEXT_PROMPT) + 2;
  rotations   the (H, dh, n, R/2) float32 `torch.randn` draws of its LSH layers (if any).
Provenance (versions, seeds, command) goes to `fixtures/PROVENANCE.json`.
"""

import json
import os
import platform
import shutil
import sys

import numpy as np
import torch
import transformers
from transformers import GenerationConfig, ReformerConfig, ReformerModelWithLMHead

SEED = 1234
NEW_TOKENS = 32
HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
BASE = dict(vocab_size=40, hidden_size=16, num_attention_heads=2, attention_head_size=8,
            feed_forward_size=32, is_decoder=True, hidden_dropout_prob=0.0,
            local_attention_probs_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0,
            eos_token_id=None, pad_token_id=0, max_position_embeddings=64,
            axial_pos_embds=False, hash_seed=7, initializer_range=0.5)
CONFIGS = {
    # local attention only, learned positions, two chunks before
    "local_only": dict(attn_layers=["local", "local"], local_attn_chunk_length=4,
                       local_num_chunks_before=2, hidden_act="gelu"),
    # shared-QK LSH only, one hash round, byte-level vocabulary (ids = bytes + 2, as enwik8)
    "lsh_only": dict(attn_layers=["lsh", "lsh"], vocab_size=258, lsh_attn_chunk_length=4,
                     num_buckets=4, num_hashes=1, axial_pos_embds=True, axial_pos_shape=[8, 8],
                     axial_pos_embds_dim=[8, 8]),
    # alternating local / LSH as google/reformer-crime-and-punishment, factorised buckets,
    # different chunk lengths (padding to their lcm 8; LSH chunks 4)
    "alternating": dict(attn_layers=["local", "lsh", "local", "lsh"], hidden_size=32,
                        local_attn_chunk_length=8, lsh_attn_chunk_length=4, num_buckets=[2, 4],
                        num_hashes=2, axial_pos_embds=True, axial_pos_shape=[8, 8],
                        axial_pos_embds_dim=[8, 24]),
    # axial positions with uneven per-axis widths, LSH then local
    "axial_uneven": dict(attn_layers=["lsh", "local"], hidden_size=24, num_attention_heads=3,
                         local_attn_chunk_length=4, lsh_attn_chunk_length=4, num_buckets=4,
                         num_hashes=1, axial_pos_embds=True, axial_pos_shape=[4, 16],
                         axial_pos_embds_dim=[6, 18]),
    # factorised buckets and four hash rounds, two chunks before
    "multi_hash": dict(attn_layers=["lsh", "lsh", "lsh"], lsh_attn_chunk_length=4,
                       lsh_num_chunks_before=2, num_buckets=[4, 2], num_hashes=4,
                       hash_seed=123),
}
LENGTHS = (32, 29, 6, 3)
# Byte-level models: also the greedy continuation of [1 (start)] + UTF-8 bytes + 2, the ids
# the exported `generate_text` signature feeds for this prompt.
TEXT_PROMPT = "Reformer"


def greedy(model, prompt, cached):
    """Hugging Face's greedy `generate` of NEW_TOKENS tokens (no early stop) -> int64 array."""
    gen = GenerationConfig(max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS,
                           do_sample=False, num_beams=1, pad_token_id=0, eos_token_id=None,
                           use_cache=cached)
    return model.generate(torch.tensor(prompt), generation_config=gen).numpy()


def main():
    if os.path.isdir(HERE):
        shutil.rmtree(HERE)
    os.makedirs(HERE)
    torch.set_num_threads(1)
    for index, (name, overrides) in enumerate(CONFIGS.items()):
        torch.manual_seed(SEED + index)
        config = ReformerConfig(**{**BASE, **overrides})
        model = ReformerModelWithLMHead(config).eval()
        out_dir = os.path.join(HERE, name)
        model.save_pretrained(out_dir, safe_serialization=True)
        os.remove(os.path.join(out_dir, "generation_config.json"))
        rng = np.random.default_rng(SEED + index)
        arrays = {}
        with torch.no_grad():
            for length in LENGTHS:
                ids = rng.integers(1, config.vocab_size, size=(2, length))
                arrays[f"ids_{length}"] = ids
                arrays[f"logits_{length}"] = model(torch.tensor(ids)).logits.numpy()
            prompt = rng.integers(1, config.vocab_size, size=(1, 5))
            arrays["prompt"] = prompt
            for cached in (False, True):
                out = greedy(model, prompt, cached)
                arrays["greedy_cached" if cached else "greedy_uncached"] = out
            if config.vocab_size == 258:
                text_ids = np.array([[1] + [b + 2 for b in TEXT_PROMPT.encode("utf-8")]])
                arrays["text_ids"] = text_ids
                arrays["greedy_text"] = greedy(model, text_ids, False)
        if "lsh" in config.attn_layers:
            factors = (config.num_buckets if isinstance(config.num_buckets, (list, tuple))
                       else [config.num_buckets])
            torch.manual_seed(config.hash_seed)
            arrays["rotations"] = torch.randn(
                (config.num_attention_heads, config.attention_head_size, config.num_hashes,
                 sum(factors) // 2)).numpy()
        np.savez_compressed(os.path.join(out_dir, "reference.npz"), **arrays)
        same = bool(np.array_equal(arrays["greedy_cached"], arrays["greedy_uncached"]))
        print(f"{name}: cached == uncached greedy: {same}")
    provenance = dict(
        command="python tests/convert/make_hf_fixtures.py", seed=SEED,
        model_seed="torch.manual_seed(seed + index of the configuration)",
        inputs="numpy.random.default_rng(seed + index).integers(1, vocab_size, ...)",
        torch=torch.__version__, transformers=transformers.__version__,
        numpy=np.__version__, python=sys.version.split()[0], machine=platform.machine(),
        configurations={name: {**BASE, **o} for name, o in CONFIGS.items()},
        lengths=list(LENGTHS), new_tokens=NEW_TOKENS, text_prompt=TEXT_PROMPT)
    with open(os.path.join(HERE, "PROVENANCE.json"), "w", encoding="utf-8") as f:
        json.dump(provenance, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
