"""The one place that turns a `ReformerConfig` into self-attention layers (encoder, LM and
decoder stacks alike), and the per-layer seed rule."""

from reformer_keras.layers import (FullSelfAttention, HFLocalSelfAttention, HFLSHSelfAttention,
                                   LocalSelfAttention, LSHSelfAttention)

# Hugging Face's attention, as it computes it; options from `config.attention_options[kind]`.
_HF_ATTENTION = {"hf_lsh": HFLSHSelfAttention, "hf_local": HFLocalSelfAttention}


def layer_seed(seed, salt):
    """The seed of sub-layer number `salt` of a stack seeded with `seed` (None: unseeded)."""
    return None if seed is None else seed + 7919 * (salt + 1)


def self_attention(config, index, seed):
    """Self-attention layer `index` of a stack: kind `config.attention_types[index % n]`.

    Args:
      config: a resolved `ReformerConfig` (`config.resolved()`).
      index: the layer's position in the stack (names the layer, picks the kind).
      seed: the layer's seed (`layer_seed(...)`).
    Returns:
      `LSHSelfAttention`, `LocalSelfAttention`, `FullSelfAttention`, or for "hf_lsh" /
      "hf_local" `HFLSHSelfAttention` / `HFLocalSelfAttention` with the arguments of
      `config.attention_options[kind]`; (B, L, d_model) -> (B, L, d_model).
    """
    kind = config.attention_types[index % len(config.attention_types)]
    common = dict(num_heads=config.num_heads, head_dim=config.head_dim, causal=config.causal,
                  attention_dropout=config.attention_dropout, output_dropout=config.dropout,
                  seed=seed, name=f"{kind}_attention_{index}")
    if kind in _HF_ATTENTION:
        return _HF_ATTENTION[kind](**common, **(config.attention_options or {}).get(kind, {}))
    if kind == "lsh":
        return LSHSelfAttention(
            bucket_size=config.bucket_size, num_hashes=config.num_hashes,
            num_buckets=config.num_buckets, attn_chunks=config.attn_chunks,
            query_chunk_len=config.query_chunk_len,
            rotations_per_example=config.rotations_per_example, max_len=config.max_len,
            **common)
    if kind == "local":
        return LocalSelfAttention(chunk_size=config.local_chunk_size, shared_qk=config.shared_qk,
                                  **common)
    return FullSelfAttention(shared_qk=config.shared_qk, **common)
