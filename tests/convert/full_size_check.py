"""The google/reformer-crime-and-punishment configuration at full size, with random weights.

Step 1, with torch and transformers (writes DIR: save_pretrained + ref.npz):
    python tests/convert/full_size_check.py make DIR
Step 2, with reformer_keras (compares the converted model with the recorded outputs):
    python tests/convert/full_size_check.py check DIR
The configuration is the checkpoint's (6 layers local/LSH, d 256, 2 heads of 64, chunks 64,
factorised buckets [64, 128], axial 512 x 1024 with widths 64 / 192, `hash_seed: null`); the
reference runs Hugging Face with hash_seed 0, the converter's default for a null seed. Inputs:
1,000 random ids (a padded length), and greedy decoding of 32 tokens after 100.
"""

import sys
import time

import numpy as np

CONFIG = dict(attention_head_size=64, attn_layers=["local", "lsh"] * 3, axial_pos_embds=True,
              axial_pos_embds_dim=[64, 192], axial_pos_shape=[512, 1024], eos_token_id=None,
              feed_forward_size=512, hash_seed=None, hidden_act="relu", hidden_size=256,
              is_decoder=True, local_attn_chunk_length=64, lsh_attn_chunk_length=64,
              max_position_embeddings=524288, num_attention_heads=2, num_buckets=[64, 128],
              num_hashes=1, vocab_size=320, pad_token_id=0)


def make(directory):
    import torch  # pylint: disable=import-outside-toplevel
    from transformers import (GenerationConfig, ReformerConfig,  # pylint: disable=C0415
                              ReformerModelWithLMHead)
    torch.manual_seed(0)
    model = ReformerModelWithLMHead(ReformerConfig(**CONFIG)).eval()
    model.save_pretrained(directory)  # hash_seed null, as the public checkpoint
    for layer in model.reformer.encoder.layers:
        if hasattr(layer.attention.self_attention, "hash_seed"):
            layer.attention.self_attention.hash_seed = 0
    ids = np.random.default_rng(0).integers(3, 320, size=(1, 1000))
    with torch.no_grad():
        logits = model(torch.tensor(ids)).logits.numpy()
        gen = GenerationConfig(max_new_tokens=32, min_new_tokens=32, do_sample=False,
                               pad_token_id=0, eos_token_id=None, use_cache=False)
        greedy = model.generate(torch.tensor(ids[:, :100]), generation_config=gen).numpy()
    np.savez(f"{directory}/ref.npz", ids=ids, logits=logits, greedy=greedy)


def check(directory):
    from reformer_keras.models import from_hf  # pylint: disable=import-outside-toplevel
    model, _ = from_hf(directory)
    ref = np.load(f"{directory}/ref.npz")
    ids = ref["ids"].astype("int32")
    model(ids)  # trace
    start = time.time()
    logits = np.asarray(model(ids))
    print(f"forward of 1,000 tokens: {time.time() - start:.2f} s")
    print(f"max |logits - Hugging Face| = {np.abs(logits - ref['logits']).max():.3g} "
          f"(logits' standard deviation {ref['logits'].std():.3g})")
    greedy = np.asarray(model.generate(ids[:, :100], 32, temperature=0.0))
    print(f"greedy 32 tokens equal: {np.array_equal(greedy, ref['greedy'])}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("make", "check"):
        sys.exit("usage: full_size_check.py make|check DIR")
    {"make": make, "check": check}[sys.argv[1]](sys.argv[2])
