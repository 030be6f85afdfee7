"""`ReformerBackbone`: embeddings + reversible stack of attention / feed-forward blocks + norm."""

import keras
from keras import ops

from reformer_keras import input_checks
from reformer_keras.layers import (AxialPositionalEmbedding, ChunkedFeedForward,
                                   FullSelfAttention, LayerNorm, LocalSelfAttention,
                                   LSHSelfAttention, PreNormBranch, ReversibleSequence)
from reformer_keras.layers.seeding import derive_seed
from reformer_keras.layers.self_attention_base import check_positive_int, check_rate

ATTENTION_TYPES = ("lsh", "local", "full")


# `ReformerBackbone` options a task model takes in its own **kwargs and hands on.
BACKBONE_OPTIONS = ("head_dim", "attention_types", "bucket_size", "num_hashes", "num_buckets",
                    "attn_chunks", "query_chunk_len", "rotations_per_example",
                    "local_chunk_size", "shared_qk", "max_len", "axial_shape", "axial_dims",
                    "position_init_stddev", "dropout", "attention_dropout", "ff_chunk_size",
                    "ff_chunked_backward", "reversible", "stored_top_blocks", "seed")


def pop_backbone_options(kwargs, exclude=()):
    """Removes the `BACKBONE_OPTIONS` (less `exclude`) from a task's **kwargs; returns them."""
    return {k: kwargs.pop(k) for k in BACKBONE_OPTIONS if k in kwargs and k not in exclude}


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerBackbone(keras.layers.Layer):
    """The Reformer trunk shared by every task.

    token ids (B, L) -> embedding (+ axial or learned positions) -> dropout -> reversible stack
    of [attention, chunked feed-forward] blocks -> LayerNorm -> (B, L, 2 * d_model) float32.

    Args:
      vocab_size, d_model, num_layers, num_heads, d_ff: sizes; head_dim defaults to
        d_model // num_heads.
      attention_types: cycled over the layers, each "lsh", "local" or "full"; e.g.
        ("local", "lsh") alternates as in the paper's long-text model.
      causal: causal masking in every attention layer (language models).
      bucket_size, num_hashes, num_buckets, attn_chunks, query_chunk_len,
        rotations_per_example: LSH options (`LSHSelfAttention`).
      local_chunk_size: chunk of local attention (default `bucket_size`).
      shared_qk: local and full layers share the query/key projection too (LSH always does);
        with it, the weights of an LSH model load into a full- or local-attention model of the
        same sizes (the paper's evaluation of LSH-trained models with full attention).
      max_len: longest sequence; sizes the learned position table when `axial_shape` is None.
      axial_shape, axial_dims: axial positions (`AxialPositionalEmbedding`); `axial_dims`
        defaults to halves of d_model.
      position_init_stddev: standard deviation of the position embeddings' initialiser (learned
        table or axial). None: d_model ** -0.5, the token embeddings' scale, so that LSH hashes
        positions as strongly as content from the first step (with positions 4x smaller than
        tokens, the duplication task's LSH models stalled at 30-67 %; at equal scale, above 99 %).
      dropout, attention_dropout: residual-branch / embedding and attention dropout.
      ff_chunk_size: chunk length of the feed-forward (None: whole sequence).
      ff_chunked_backward: the feed-forward's backward pass chunk by chunk too (lowest memory,
        one more feed-forward pass; `ChunkedFeedForward(chunked_backward=True)`).
      reversible: reversible residual stack (False: same math, ordinary backprop).
      stored_top_blocks: with `reversible`, the top this-many blocks keep their activations for
        the backward pass instead of recomputing them (`ReversibleSequence`): one block's
        forward less time per step for one block's activations more memory, still independent
        of depth. 0 is the leanest.
      seed: int seed for initialisers and random draws.

    Call: `backbone(token_ids, padding_mask=None, training=None, rng=None, num_hashes=None)`.
    """

    def __init__(self, vocab_size, d_model, num_layers, num_heads, d_ff, head_dim=None,
                 attention_types=("lsh",), causal=True, bucket_size=64, num_hashes=2,
                 num_buckets=None, attn_chunks=1, query_chunk_len=None,
                 rotations_per_example=False, local_chunk_size=None, shared_qk=False,
                 max_len=4096,
                 axial_shape=None, axial_dims=None, position_init_stddev=None, dropout=0.0,
                 attention_dropout=0.0, ff_chunk_size=None, ff_chunked_backward=False,
                 reversible=True, stored_top_blocks=0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.d_model = check_positive_int("d_model", d_model)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.d_ff = check_positive_int("d_ff", d_ff)
        self.head_dim = check_positive_int("head_dim", head_dim or d_model // num_heads)
        if isinstance(attention_types, str):
            attention_types = (attention_types,)
        bad = [t for t in attention_types if t not in ATTENTION_TYPES]
        if not attention_types or bad:
            raise ValueError(f"`attention_types` must be a non-empty list of {ATTENTION_TYPES}, "
                             f"got {attention_types!r}.")
        self.attention_types = tuple(attention_types)
        self.causal = bool(causal)
        self.bucket_size = check_positive_int("bucket_size", bucket_size)
        self.num_hashes = check_positive_int("num_hashes", num_hashes)
        self.num_buckets = list(num_buckets) if isinstance(num_buckets, tuple) else num_buckets
        self.attn_chunks = attn_chunks
        self.query_chunk_len = query_chunk_len
        self.rotations_per_example = bool(rotations_per_example)
        self.local_chunk_size = local_chunk_size or bucket_size
        self.shared_qk = bool(shared_qk)
        self.max_len = check_positive_int("max_len", max_len)
        self.axial_shape = None if axial_shape is None else list(axial_shape)
        if axial_shape is not None and axial_dims is None:
            axial_dims = [d_model // 2, d_model - d_model // 2]
        self.axial_dims = None if axial_dims is None else list(axial_dims)
        if position_init_stddev is None:
            position_init_stddev = self.d_model**-0.5
        if isinstance(position_init_stddev, bool) or not isinstance(
                position_init_stddev, (int, float)) or not position_init_stddev > 0:
            raise ValueError("`position_init_stddev` must be None or a number > 0, got "
                             f"{position_init_stddev!r}.")
        self.position_init_stddev = float(position_init_stddev)
        self.dropout = check_rate("dropout", dropout)
        self.attention_dropout = check_rate("attention_dropout", attention_dropout)
        self.ff_chunk_size = ff_chunk_size
        self.ff_chunked_backward = bool(ff_chunked_backward)
        self.reversible = bool(reversible)
        self.seed = seed

        self.token_embedding = keras.layers.Embedding(
            vocab_size, d_model, name="token_embedding",
            embeddings_initializer=keras.initializers.RandomNormal(
                stddev=d_model**-0.5, seed=derive_seed(seed, "token_embedding")))
        if self.axial_shape is not None:
            self.position_embedding = AxialPositionalEmbedding(
                self.axial_shape, self.axial_dims,
                initializer_stddev=self.position_init_stddev,
                seed=derive_seed(seed, "axial_positions"), name="axial_positions")
            self.max_len = self.position_embedding.max_length
        else:
            self.position_embedding = keras.layers.Embedding(
                self.max_len, d_model, name="position_embedding",
                embeddings_initializer=keras.initializers.RandomNormal(
                    stddev=self.position_init_stddev,
                    seed=derive_seed(seed, "position_embedding")))
        blocks = [(PreNormBranch(self._attention(i), name=f"attention_{i}"),
                   PreNormBranch(ChunkedFeedForward(
                       d_ff, chunk_size=ff_chunk_size, dropout=dropout, seed=self._seed(2 * i + 1),
                       chunked_backward=ff_chunked_backward, name=f"ff_{i}"),
                       name=f"feed_forward_{i}"))
                  for i in range(num_layers)]
        self.stack = ReversibleSequence(blocks, reversible=reversible, seed=seed,
                                        stored_top_blocks=stored_top_blocks, name="stack")
        self.stored_top_blocks = self.stack.stored_top_blocks
        self.final_norm = LayerNorm(
            epsilon=1e-6, dtype="float32", name="final_norm")

    def _seed(self, salt):
        return None if self.seed is None else self.seed + 7919 * (salt + 1)

    def _attention(self, i):
        kind = self.attention_types[i % len(self.attention_types)]
        common = dict(num_heads=self.num_heads, head_dim=self.head_dim, causal=self.causal,
                      attention_dropout=self.attention_dropout, output_dropout=self.dropout,
                      seed=self._seed(2 * i), name=f"{kind}_attention_{i}")
        if kind == "lsh":
            return LSHSelfAttention(
                bucket_size=self.bucket_size, num_hashes=self.num_hashes,
                num_buckets=self.num_buckets, attn_chunks=self.attn_chunks,
                query_chunk_len=self.query_chunk_len,
                rotations_per_example=self.rotations_per_example, **common)
        if kind == "local":
            return LocalSelfAttention(chunk_size=self.local_chunk_size, shared_qk=self.shared_qk,
                                      **common)
        return FullSelfAttention(shared_qk=self.shared_qk, **common)

    def build(self, input_shape):
        self.token_embedding.build(input_shape)
        hidden = tuple(input_shape) + (self.d_model,)
        self.position_embedding.build(hidden)
        self.stack.build(hidden)
        self.final_norm.build(tuple(input_shape) + (2 * self.d_model,))
        super().build(input_shape)

    def call(self, token_ids, padding_mask=None, training=None, rng=None, num_hashes=None):
        return self.final_norm(self.features(token_ids, padding_mask, training, rng, num_hashes))

    def features(self, token_ids, padding_mask=None, training=None, rng=None, num_hashes=None):
        """The output before `final_norm`: the reversible stack's two streams, concatenated.
        int ids (B, L) -> (B, L, 2 * d_model) float32. (A task fusing the final norm into its
        head calls this on the built backbone.)"""
        token_ids = input_checks.check_token_ids(token_ids, self.vocab_size)
        token_ids = input_checks.check_length(token_ids, self.max_len)
        x = self.token_embedding(token_ids)
        if isinstance(self.position_embedding, AxialPositionalEmbedding):
            x = self.position_embedding(x)
        else:
            x = x + self.position_embedding(ops.arange(ops.shape(token_ids)[1]))[None]
        if training and self.dropout:
            x = keras.random.dropout(x, self.dropout, seed=self.stack.seed_generator)
        return self.stack(x, padding_mask=padding_mask, training=training, rng=rng,
                          num_hashes=num_hashes)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (2 * self.d_model,)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, d_model=self.d_model, num_layers=self.num_layers,
            num_heads=self.num_heads, d_ff=self.d_ff, head_dim=self.head_dim,
            attention_types=list(self.attention_types), causal=self.causal,
            bucket_size=self.bucket_size, num_hashes=self.num_hashes,
            num_buckets=self.num_buckets, attn_chunks=self.attn_chunks,
            query_chunk_len=self.query_chunk_len,
            rotations_per_example=self.rotations_per_example,
            local_chunk_size=self.local_chunk_size, shared_qk=self.shared_qk, max_len=self.max_len,
            axial_shape=self.axial_shape, axial_dims=self.axial_dims,
            position_init_stddev=self.position_init_stddev, dropout=self.dropout,
            attention_dropout=self.attention_dropout, ff_chunk_size=self.ff_chunk_size,
            ff_chunked_backward=self.ff_chunked_backward, reversible=self.reversible,
            stored_top_blocks=self.stored_top_blocks, seed=self.seed)
        return config
