"""The model configurations: `ReformerConfig` (one Reformer stack: the backbone of the LM,
image, music and classifier tasks) and `Seq2SeqConfig` (encoder-decoder).

Each is a frozen dataclass whose fields are the model options, each documented
(`field.metadata["help"]`, also the trainers' flag help) and checked by one function of
`reformer_keras.input_checks` (`field.metadata["check"]`). A config is validated once, when it
is created (`__post_init__`); `dataclasses.replace(config, **changes)` creates a new, validated
one. `to_dict()` / `from_dict()` give the JSON form the models' `get_config()` stores.

Pure Python: importable without TensorFlow or Keras (the trainers validate flags first).

Position table rule (no silent rewrite): with `axial_shape`, the table covers
prod(axial_shape) positions and `max_len`, if given, must equal that product (else ValueError);
without it, a learned table of `max_len` (default 4096) positions.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

from reformer_keras import input_checks as checks

ATTENTION_TYPES = ("lsh", "local", "full")
# Hugging Face's LSH / local attention computed as it does (models converted from its
# checkpoints by `reformer_keras.convert`; `HFLSHSelfAttention`, `HFLocalSelfAttention`).
HF_ATTENTION_TYPES = ("hf_lsh", "hf_local")
DEFAULT_MAX_LEN = 4096


def _check(fn, *args):
    return lambda name, value: fn(name, value, *args)


def _field(default, help_text, check, kind, flag=True):
    """A config field: default, help text, check(name, value) -> normalised value, flag kind
    ("int", "float", "bool", "ints", "strs", "buckets"); `flag=False`: no trainer flag."""
    metadata = {"help": help_text, "check": check, "kind": kind, "flag": flag}
    if default is dataclasses.MISSING:
        return dataclasses.field(metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


_REQUIRED = dataclasses.MISSING
_INT = _check(checks.integer)
_OPT_INT = _check(checks.optional_integer)
_TYPES = _check(checks.choices, ATTENTION_TYPES + HF_ATTENTION_TYPES)


def _attention_options(name, value):
    """None or {attention type: {layer argument: JSON value}} -> a dict (or None)."""
    if value is None:
        return None
    if not isinstance(value, dict) or any(
            t not in ATTENTION_TYPES + HF_ATTENTION_TYPES or not isinstance(o, dict)
            for t, o in value.items()):
        raise ValueError(f"`{name}` must be None or a dict {{attention type: dict of layer "
                         f"arguments}}, got {value!r}.")
    return {t: {k: list(v) if isinstance(v, tuple) else v for k, v in o.items()}
            for t, o in value.items()}


def _positive_float(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0, got {value!r}.")
    return float(value)


def _activation_name(name, value):
    if not isinstance(value, str) or not value:
        raise ValueError(f"`{name}` must be a Keras activation name, got {value!r}.")
    return value


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


class _ConfigMixin:
    """Validation, dict conversion and kwargs splitting shared by both configs."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, f.metadata["check"](f.name, getattr(self, f.name)))
        self._check_together()

    def _check_together(self):
        raise NotImplementedError

    def to_dict(self, skip_defaults=False):
        """{field: value} with lists for tuples (JSON); `skip_defaults`: only fields whose
        value differs from the default."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if skip_defaults and f.default is not dataclasses.MISSING and value == f.default:
                continue
            out[f.name] = _jsonable(value)
        return out

    @classmethod
    def from_dict(cls, values):
        """The config of a `to_dict()` dict; ValueError names unknown keys."""
        unknown = sorted(set(values) - set(cls.field_names()))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} option(s) {unknown}; known: "
                             f"{', '.join(cls.field_names())}.")
        return cls(**values)

    @classmethod
    def field_names(cls):
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def help(cls, name):
        """The documentation of field `name`."""
        return cls.__dataclass_fields__[name].metadata["help"]

    @classmethod
    def pop_fields(cls, kwargs):
        """Removes this config's fields from `kwargs` (a constructor's **kwargs); returns them."""
        return {k: kwargs.pop(k) for k in cls.field_names() if k in kwargs}

    def replace(self, **changes):
        """A new, validated config with `changes` (unknown names: ValueError)."""
        unknown = sorted(set(changes) - set(self.field_names()))
        if unknown:
            raise ValueError(f"unknown {type(self).__name__} option(s) {unknown}.")
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class ReformerConfig(_ConfigMixin):
    """One Reformer stack: embeddings (+ positions) -> reversible [attention, feed-forward]
    blocks -> LayerNorm. The fields are `ReformerBackbone`'s constructor arguments, in order."""

    vocab_size: int = _field(_REQUIRED, "Vocabulary size (token ids in [0, vocab_size)).",
                             _INT, "int", flag=False)
    d_model: int = _field(_REQUIRED, "Model width (embedding size of each stream).", _INT, "int")
    num_layers: int = _field(_REQUIRED, "Number of [attention, feed-forward] blocks.", _INT,
                             "int")
    num_heads: int = _field(_REQUIRED, "Attention heads per layer.", _INT, "int")
    d_ff: int = _field(_REQUIRED, "Feed-forward hidden width.", _INT, "int")
    head_dim: Optional[int] = _field(None, "Size of each attention head (default "
                                     "d_model // num_heads).", _OPT_INT, "int")
    attention_types: tuple = _field(("lsh",), "Attention of each layer, cycled over the layers: "
                                    "lsh, local or full (e.g. local,lsh alternates).", _TYPES,
                                    "strs")
    causal: bool = _field(True, "Causal masking in every attention layer (language models).",
                          checks.boolean, "bool", flag=False)
    bucket_size: int = _field(64, "LSH bucket size (the chunk each query attends within).", _INT,
                              "int")
    num_hashes: int = _field(2, "LSH hash rounds (more rounds: closer to full attention, "
                             "slower).", _INT, "int")
    num_buckets: object = _field(None, "LSH buckets per round: an even number, or two numbers "
                                 "for a factorised hash (default: about one per chunk).",
                                 checks.num_buckets, "buckets")
    attn_chunks: int = _field(1, "LSH attention runs the heads in this many groups (lower peak "
                              "memory, slower); divides num_heads or is a multiple of it.",
                              _INT, "int")
    query_chunk_len: Optional[int] = _field(None, "LSH attention takes the sorted queries in "
                                            "pieces of this many positions, a multiple of "
                                            "bucket_size (memory of very long sequences).",
                                            _OPT_INT, "int")
    rotations_per_example: bool = _field(False, "LSH draws its random rotations per example "
                                         "instead of per batch.", checks.boolean, "bool")
    local_chunk_size: Optional[int] = _field(None, "Chunk of local attention (default "
                                             "bucket_size).", _OPT_INT, "int")
    shared_qk: bool = _field(False, "Local and full layers share the query/key projection too "
                             "(LSH always does), so LSH weights load into a full-attention "
                             "model of the same sizes.", checks.boolean, "bool")
    max_len: Optional[int] = _field(None, "Length of the learned position table (default 4096); "
                                    "with axial_shape it must equal prod(axial_shape).",
                                    _OPT_INT, "int")
    axial_shape: Optional[tuple] = _field(None, "Axial position table shape, e.g. 16,16 (covers "
                                          "prod(axial_shape) positions); none: learned "
                                          "positions.", checks.integer_tuple, "ints")
    axial_dims: Optional[tuple] = _field(None, "Per-axis position widths summing to d_model "
                                         "(default: halves, or near-equal parts).",
                                         checks.integer_tuple, "ints")
    position_init_stddev: Optional[float] = _field(
        None, "Standard deviation of the position embeddings' initialiser (default "
        "d_model ** -0.5, the token embeddings' scale).", checks.optional_positive_float,
        "float")
    dropout: float = _field(0.0, "Residual-branch and embedding dropout rate.", checks.rate,
                            "float")
    attention_dropout: float = _field(0.0, "Dropout rate on the attention probabilities.",
                                      checks.rate, "float")
    ff_chunk_size: Optional[int] = _field(None, "Chunk length of the feed-forward (default: the "
                                          "whole sequence).", _OPT_INT, "int")
    ff_chunked_backward: bool = _field(False, "The feed-forward's backward pass runs in chunks "
                                       "too (lower peak memory, slower).", checks.boolean,
                                       "bool")
    reversible: bool = _field(True, "Reversible residual stack (False: same math, ordinary "
                              "backprop).", checks.boolean, "bool")
    stored_top_blocks: int = _field(0, "With reversible: the top N blocks keep their activations "
                                    "and skip the backward recompute (faster; one block's "
                                    "activations each).", _check(checks.integer, 0), "int")
    seed: Optional[int] = _field(None, "Seed of the initialisers and random draws.", checks.seed,
                                 "int", flag=False)
    attention_options: Optional[dict] = _field(
        None, "Extra constructor arguments per attention type, e.g. {'hf_lsh': "
        "{'chunk_length': 64, 'num_buckets': [64, 128]}} (converted checkpoints).",
        _attention_options, "dict", flag=False)
    layer_norm_epsilon: float = _field(1e-6, "Epsilon of every LayerNorm (branches and final "
                                       "norm).", _positive_float, "float", flag=False)
    ff_activation: str = _field("gelu", "Activation of the feed-forward (a Keras activation "
                                "name).", _activation_name, "str", flag=False)

    def _check_together(self):
        if self.head_dim is None and self.d_model // self.num_heads < 1:
            raise ValueError(f"`num_heads` {self.num_heads} exceeds d_model {self.d_model}: set "
                             "head_dim.")
        if "lsh" in self.attention_types and (self.num_heads % self.attn_chunks and
                                              self.attn_chunks % self.num_heads):
            raise ValueError(f"`attn_chunks` must divide num_heads={self.num_heads} or be a "
                             f"multiple of it, got {self.attn_chunks!r}.")
        if self.query_chunk_len is not None and self.query_chunk_len % self.bucket_size:
            raise ValueError(f"`query_chunk_len` must be None or a multiple of bucket_size="
                             f"{self.bucket_size}, got {self.query_chunk_len!r}.")
        if self.axial_shape is None:
            if self.axial_dims is not None:
                raise ValueError("`axial_dims` needs `axial_shape`.")
            return
        table = math.prod(self.axial_shape)
        if self.max_len is not None and self.max_len != table:
            raise ValueError(f"`max_len` {self.max_len} differs from the axial position table's "
                             f"length prod(axial_shape={list(self.axial_shape)}) = {table}: "
                             "give one of them, or matching values.")
        if self.axial_dims is not None and (len(self.axial_dims) != len(self.axial_shape) or
                                            sum(self.axial_dims) != self.d_model):
            raise ValueError(f"`axial_dims` {list(self.axial_dims)} must have one entry per axis "
                             f"of axial_shape {list(self.axial_shape)} and sum to d_model="
                             f"{self.d_model}.")

    @property
    def position_length(self):
        """Positions the table covers: prod(axial_shape), or max_len (default 4096)."""
        if self.axial_shape is not None:
            return math.prod(self.axial_shape)
        return self.max_len or DEFAULT_MAX_LEN

    def resolved(self):
        """The same model with every derived default written out (head_dim, local_chunk_size,
        max_len, axial_dims, position_init_stddev): what `get_config()` stores."""
        axial_dims = self.axial_dims
        if self.axial_shape is not None and axial_dims is None:
            axial_dims = default_axial_dims(self.d_model, len(self.axial_shape))
        return dataclasses.replace(
            self, head_dim=self.head_dim or self.d_model // self.num_heads,
            local_chunk_size=self.local_chunk_size or self.bucket_size,
            max_len=self.position_length, axial_dims=axial_dims,
            position_init_stddev=self.position_init_stddev or self.d_model**-0.5)

    def sized_for(self, seq_len):
        """The trainers' documented rule for training windows of `seq_len` tokens: the position
        table is sized to the windows. Returns (config, note): axial positions are kept when
        prod(axial_shape) == seq_len; otherwise learned positions with max_len = seq_len, and
        `note` says what was replaced ("" when nothing changed)."""
        seq_len = checks.integer("seq_len", seq_len)
        if self.axial_shape is not None:
            if math.prod(self.axial_shape) == seq_len:
                return self, ""
            note = (f"axial positions {'x'.join(map(str, self.axial_shape))} = "
                    f"{math.prod(self.axial_shape)} != seq_len {seq_len}: learned positions of "
                    f"max_len {seq_len} instead (pass --axial_shape with product {seq_len} to "
                    "keep axial positions)")
            return self.replace(axial_shape=None, axial_dims=None, max_len=seq_len), note
        if self.max_len == seq_len:
            return self, ""
        return self.replace(max_len=seq_len), ""


def default_axial_dims(d_model, axes):
    """d_model split over `axes` axis tables: halves for two axes (the second takes the odd
    unit), else near-equal parts (the first ones take the remainder)."""
    if axes == 2:
        return (d_model // 2, d_model - d_model // 2)
    base, extra = divmod(d_model, axes)
    return tuple(base + (1 if i < extra else 0) for i in range(axes))


def _shared(name, **changes):
    """A Seq2SeqConfig field with the same default, help and check as ReformerConfig's."""
    f = ReformerConfig.__dataclass_fields__[name]
    meta = {**f.metadata, **changes}
    default = meta.pop("default", f.default)
    return _field(default, meta["help"], meta["check"], meta["kind"], meta["flag"])


@dataclasses.dataclass(frozen=True)
class Seq2SeqConfig(_ConfigMixin):
    """Encoder-decoder: a non-causal encoder stack and a causal decoder stack with
    cross-attention, sharing sizes and the LSH / speed options. The fields are
    `ReformerSeq2Seq`'s constructor arguments, in order. The decoder's seed is seed + 1."""

    encoder_vocab_size: int = _field(_REQUIRED, "Source vocabulary size.", _INT, "int",
                                     flag=False)
    decoder_vocab_size: int = _field(_REQUIRED, "Target vocabulary size.", _INT, "int",
                                     flag=False)
    d_model: int = _shared("d_model")
    num_encoder_layers: int = _field(_REQUIRED, "Encoder blocks.", _INT, "int")
    num_decoder_layers: int = _field(_REQUIRED, "Decoder blocks.", _INT, "int")
    num_heads: int = _shared("num_heads")
    d_ff: int = _shared("d_ff")
    head_dim: Optional[int] = _shared("head_dim")
    encoder_attention_types: tuple = _field(("lsh",), "Encoder attention per layer, cycled: "
                                            "lsh, local or full.", _TYPES, "strs")
    decoder_attention_types: tuple = _field(("lsh",), "Decoder self-attention per layer, "
                                            "cycled: lsh, local or full.", _TYPES, "strs")
    bucket_size: int = _shared("bucket_size")
    num_hashes: int = _shared("num_hashes")
    num_buckets: object = _shared("num_buckets")
    local_chunk_size: Optional[int] = _shared("local_chunk_size")
    encoder_max_len: int = _field(1024, "Encoder's learned position table length.", _INT, "int")
    decoder_max_len: int = _field(1024, "Decoder's learned position table length.", _INT, "int")
    dropout: float = _shared("dropout")
    attention_dropout: float = _shared("attention_dropout")
    ff_chunk_size: Optional[int] = _shared("ff_chunk_size")
    reversible: bool = _shared("reversible")
    seed: Optional[int] = _shared("seed")
    attn_chunks: int = _shared("attn_chunks")
    query_chunk_len: Optional[int] = _shared("query_chunk_len")
    rotations_per_example: bool = _shared("rotations_per_example")
    ff_chunked_backward: bool = _shared("ff_chunked_backward")
    stored_top_blocks: int = _shared("stored_top_blocks")

    def _check_together(self):
        self.encoder_config()
        self.decoder_config()

    def _stack(self, **fields):
        shared = {k: getattr(self, k) for k in (
            "d_model", "num_heads", "d_ff", "head_dim", "bucket_size", "num_hashes",
            "num_buckets", "local_chunk_size", "dropout", "attention_dropout", "ff_chunk_size",
            "reversible", "attn_chunks", "query_chunk_len", "rotations_per_example",
            "ff_chunked_backward", "stored_top_blocks")}
        return ReformerConfig(**shared, **fields)

    def encoder_config(self):
        """The encoder stack's `ReformerConfig` (non-causal, learned positions)."""
        return self._stack(vocab_size=self.encoder_vocab_size,
                           num_layers=self.num_encoder_layers,
                           attention_types=self.encoder_attention_types, causal=False,
                           max_len=self.encoder_max_len, seed=self.seed)

    def decoder_config(self):
        """The decoder stack's `ReformerConfig` (causal, learned positions, seed + 1)."""
        return self._stack(vocab_size=self.decoder_vocab_size,
                           num_layers=self.num_decoder_layers,
                           attention_types=self.decoder_attention_types, causal=True,
                           max_len=self.decoder_max_len,
                           seed=None if self.seed is None else self.seed + 1)

    # Trainer options given once for both stacks: option -> the fields it sets.
    STACK_OPTIONS = {"num_layers": ("num_encoder_layers", "num_decoder_layers"),
                     "attention_types": ("encoder_attention_types", "decoder_attention_types")}

    def with_options(self, **options):
        """`replace` that also takes the single-stack names of `STACK_OPTIONS` (num_layers,
        attention_types set both stacks); an option of `ReformerConfig` a seq2seq model does not
        have raises ValueError."""
        changes = {}
        for key, value in options.items():
            for target in self.STACK_OPTIONS.get(key, (key,)):
                if target not in self.field_names():
                    raise ValueError(f"option `{key}` does not apply to a seq2seq model.")
                changes[target] = value
        return self.replace(**changes)


__all__ = ["ATTENTION_TYPES", "DEFAULT_MAX_LEN", "HF_ATTENTION_TYPES", "ReformerConfig", "Seq2SeqConfig",
           "default_axial_dims"]
