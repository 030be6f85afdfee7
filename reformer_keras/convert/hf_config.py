"""Hugging Face `ReformerConfig` (config.json) -> `ReformerLM` constructor arguments.

Everything the configuration can express for a causal LM maps onto `ReformerLM` with the
`hf_local` / `hf_lsh` attention types (`HFLocalSelfAttention`, `HFLSHSelfAttention`); a field
we cannot honour raises `HFConfigError` naming it. Dropout rates are not carried over: the
converted model reproduces Hugging Face's inference (evaluation mode).
"""

import json
import logging
import math
import os

# Hugging Face `hidden_act` -> Keras activation with the same formula (PyTorch's
# `nn.functional.gelu` is the exact erf form, as Keras' "gelu" by default).
ACTIVATIONS = {"relu": "relu", "gelu": "gelu", "silu": "silu", "swish": "silu", "tanh": "tanh",
               "sigmoid": "sigmoid"}
ATTENTION = {"local": "hf_local", "lsh": "hf_lsh"}


class HFConfigError(ValueError):
    """A Hugging Face configuration this converter cannot honour (the message names the
    field)."""


def read_config(directory):
    """directory/config.json -> dict (one-line errors for a missing or malformed file)."""
    path = os.path.join(directory, "config.json")
    if not os.path.isfile(path):
        raise HFConfigError(f"{path}: no such file (expected a `save_pretrained` directory).")
    try:
        with open(path, encoding="utf-8") as f:
            config = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise HFConfigError(f"{path}: not a readable JSON file ({err}).") from None
    if not isinstance(config, dict):
        raise HFConfigError(f"{path}: expected a JSON object.")
    return config


def _field(config, name, default=None, kind=int, minimum=1):
    value = config.get(name, default)
    if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < minimum):
        raise HFConfigError(f"config field `{name}`: expected an int >= {minimum}, got {value!r}.")
    return value


def lm_arguments(config, hash_seed=None):
    """`ReformerLM(**arguments)` reproducing the Hugging Face model of `config` (a dict).

    hash_seed: seed of the LSH rotations when the configuration's `hash_seed` is null (Hugging
      Face then draws fresh rotations at every forward pass; a converted model fixes one draw).
      Ignored when the configuration sets it. Default 0.
    """
    if config.get("model_type", "reformer") != "reformer":
        raise HFConfigError(f"config field `model_type`: expected 'reformer', got "
                            f"{config.get('model_type')!r}.")
    if config.get("is_decoder") is not True:
        raise HFConfigError("config field `is_decoder`: must be true (a causal language model, "
                            "`ReformerModelWithLMHead`).")
    if config.get("tie_word_embeddings"):
        raise HFConfigError("config field `tie_word_embeddings`: tied input/output embeddings "
                            "are not supported (the Reformer head reads 2 * hidden_size).")
    layers = config.get("attn_layers")
    if not isinstance(layers, list) or not layers:
        raise HFConfigError(f"config field `attn_layers`: expected a non-empty list, got "
                            f"{layers!r}.")
    unknown = sorted({str(t) for t in layers if t not in ATTENTION})
    if unknown:
        raise HFConfigError(f"config field `attn_layers`: unknown attention type(s) {unknown} "
                            "(expected 'local' or 'lsh').")
    hidden = _field(config, "hidden_size")
    act = config.get("hidden_act", "relu")
    if act not in ACTIVATIONS:
        raise HFConfigError(f"config field `hidden_act`: {act!r} is not supported (supported: "
                            f"{sorted(ACTIVATIONS)}).")
    eps = config.get("layer_norm_eps", 1e-12)
    if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
        raise HFConfigError(f"config field `layer_norm_eps`: expected a number > 0, got {eps!r}.")
    kinds = set(layers)
    chunks = {}
    for kind, prefix in (("local", "local"), ("lsh", "lsh")):
        if kind in kinds:
            length = "local_attn_chunk_length" if kind == "local" else "lsh_attn_chunk_length"
            chunks[kind] = (_field(config, length, 64),
                            _field(config, f"{prefix}_num_chunks_before", 1, minimum=0),
                            _field(config, f"{prefix}_num_chunks_after", 0, minimum=0))
            if chunks[kind][2]:
                raise HFConfigError(f"config field `{prefix}_num_chunks_after`: must be 0 in a "
                                    "causal model (Hugging Face asserts the same).")
    lengths = [c[0] for c in chunks.values()]
    pad = dict(pad_multiple=math.lcm(*lengths), pad_min_length=min(lengths))
    options = {}
    if "local" in kinds:
        length, before, after = chunks["local"]
        options["hf_local"] = dict(chunk_length=length, num_chunks_before=before,
                                   num_chunks_after=after, **pad)
    if "lsh" in kinds:
        length, before, after = chunks["lsh"]
        buckets = config.get("num_buckets")
        factors = buckets if isinstance(buckets, list) else [buckets]
        if not factors or any(isinstance(b, bool) or not isinstance(b, int) or b < 2 or b % 2
                              for b in factors):
            raise HFConfigError(
                f"config field `num_buckets`: expected an even int >= 2 or a list of them, got "
                f"{buckets!r} (null: Hugging Face picks it from the first sequence length it "
                "sees; set it explicitly).")
        seed = config.get("hash_seed")
        if seed is None:
            seed = 0 if hash_seed is None else hash_seed
            logging.info("config `hash_seed` is null (fresh LSH rotations per forward pass in "
                         "Hugging Face); the converted model uses the fixed hash_seed %d.", seed)
        elif isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise HFConfigError(f"config field `hash_seed`: expected null or an int in "
                                f"[0, 2**32), got {seed!r}.")
        options["hf_lsh"] = dict(chunk_length=length, num_chunks_before=before,
                                 num_chunks_after=after, num_buckets=buckets,
                                 num_hashes=_field(config, "num_hashes", 1), hash_seed=seed,
                                 **pad)
    arguments = dict(
        vocab_size=_field(config, "vocab_size"), d_model=hidden, num_layers=len(layers),
        num_heads=_field(config, "num_attention_heads"), d_ff=_field(config, "feed_forward_size"),
        head_dim=_field(config, "attention_head_size"),
        attention_types=[ATTENTION[t] for t in layers], attention_options=options,
        layer_norm_epsilon=float(eps), ff_activation=ACTIVATIONS[act], dropout=0.0,
        attention_dropout=0.0, max_len=_field(config, "max_position_embeddings"))
    if config.get("axial_pos_embds", True):
        shape = config.get("axial_pos_shape")
        dims = config.get("axial_pos_embds_dim")
        if not isinstance(shape, list) or len(shape) != 2 or not all(
                isinstance(s, int) and s > 0 for s in shape):
            raise HFConfigError(f"config field `axial_pos_shape`: expected two positive ints "
                                f"(Hugging Face's inference path is 2-D), got {shape!r}.")
        if not isinstance(dims, list) or len(dims) != 2 or sum(dims) != hidden:
            raise HFConfigError(f"config field `axial_pos_embds_dim`: expected two ints summing "
                                f"to hidden_size {hidden}, got {dims!r}.")
        # The axial table covers prod(axial_pos_shape) positions (Hugging Face also rejects
        # inputs longer than max_position_embeddings; ours accept up to the table's length).
        arguments.pop("max_len")
        arguments.update(axial_shape=list(shape), axial_dims=list(dims))
    return arguments
