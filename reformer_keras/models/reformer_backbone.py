"""`ReformerBackbone`: embeddings + reversible stack of attention / feed-forward blocks + norm."""

import keras
from keras import ops

from reformer_keras import input_checks
from reformer_keras.config import ReformerConfig
from reformer_keras.layers import (AxialPositionalEmbedding, ChunkedFeedForward, LayerNorm,
                                   PreNormBranch, ReversibleSequence)
from reformer_keras.layers.seeding import derive_seed
from reformer_keras.models import attention_factory
from reformer_keras.models.attention_factory import layer_seed


def stack_config(config, args, kwargs, task, max_positional=None, **fixed):
    """The `ReformerConfig` of a model constructor: `config` (a `ReformerConfig` or its dict),
    or one built from the constructor's positional `args` (field order, at most
    `max_positional`) and the config fields popped from `kwargs`. `fixed`: fields the task sets
    itself; a config or argument with another value raises ValueError naming `task`."""
    limit = len(ReformerConfig.field_names()) if max_positional is None else max_positional
    if len(args) > limit:
        raise TypeError(f"{task} takes at most {limit} positional model options "
                        f"({', '.join(ReformerConfig.field_names()[:limit])}), got {len(args)}.")
    fields = ReformerConfig.pop_fields(kwargs)
    if config is not None:
        if args or fields:
            raise ValueError(f"{task}: pass either `config` or the model options "
                             f"{sorted(fields)}, not both.")
        if isinstance(config, dict):
            config = ReformerConfig.from_dict(config)
        if not isinstance(config, ReformerConfig):
            raise ValueError(f"{task}: `config` must be a ReformerConfig, got "
                             f"{type(config).__name__}.")
    else:
        fields.update(zip(ReformerConfig.field_names(), args))
        config = ReformerConfig(**{**fixed, **fields})
    for key, value in fixed.items():
        have = getattr(config, key)
        if have != (tuple(value) if isinstance(value, list) else value):
            raise ValueError(f"{task} sets `{key}` to {value!r}, got {have!r}.")
    return config


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerBackbone(keras.layers.Layer):
    """The Reformer trunk shared by every task.

    token ids (B, L) -> embedding (+ axial or learned positions) -> dropout -> reversible stack
    of [attention, chunked feed-forward] blocks -> LayerNorm -> (B, L, 2 * d_model) float32.

    Args: a `ReformerConfig` (`config=`), or its fields as positional / keyword arguments
    (`ReformerBackbone(vocab_size, d_model, num_layers, num_heads, d_ff, **options)`), e.g.
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
      attention_options, layer_norm_epsilon, ff_activation: extra attention-layer arguments per
        attention type, the LayerNorms' epsilon, the feed-forward's activation (used by models
        converted from Hugging Face checkpoints, `reformer_keras.convert`).

    Call: `backbone(token_ids, padding_mask=None, training=None, rng=None, num_hashes=None)`.
    """

    def __init__(self, *args, config=None, **kwargs):
        config = stack_config(config, args, kwargs, "ReformerBackbone")
        super().__init__(**kwargs)
        self.config = config.resolved()
        for key, value in self.config.to_dict().items():   # the options, as attributes
            setattr(self, key, value)
        c, seed = self.config, self.config.seed
        self.attention_types = c.attention_types

        self.token_embedding = keras.layers.Embedding(
            c.vocab_size, c.d_model, name="token_embedding",
            embeddings_initializer=keras.initializers.RandomNormal(
                stddev=c.d_model**-0.5, seed=derive_seed(seed, "token_embedding")))
        if c.axial_shape is not None:
            self.position_embedding = AxialPositionalEmbedding(
                c.axial_shape, c.axial_dims, initializer_stddev=c.position_init_stddev,
                seed=derive_seed(seed, "axial_positions"), name="axial_positions")
        else:
            self.position_embedding = keras.layers.Embedding(
                c.max_len, c.d_model, name="position_embedding",
                embeddings_initializer=keras.initializers.RandomNormal(
                    stddev=c.position_init_stddev,
                    seed=derive_seed(seed, "position_embedding")))
        eps = c.layer_norm_epsilon
        blocks = [(PreNormBranch(attention_factory.self_attention(c, i, layer_seed(seed, 2 * i)),
                                 epsilon=eps, name=f"attention_{i}"),
                   PreNormBranch(ChunkedFeedForward(
                       c.d_ff, chunk_size=c.ff_chunk_size, activation=c.ff_activation,
                       dropout=c.dropout, seed=layer_seed(seed, 2 * i + 1),
                       chunked_backward=c.ff_chunked_backward, name=f"ff_{i}"),
                       epsilon=eps, name=f"feed_forward_{i}"))
                  for i in range(c.num_layers)]
        self.stack = ReversibleSequence(blocks, reversible=c.reversible, seed=seed,
                                        stored_top_blocks=c.stored_top_blocks, name="stack")
        self.final_norm = LayerNorm(epsilon=eps, dtype="float32", name="final_norm")

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
        if num_hashes is not None and "hf_lsh" in self.attention_types:
            raise ValueError("`num_hashes` cannot be changed per call in a model with hf_lsh "
                             "layers (their rounds are fixed: attention_options['hf_lsh']).")
        length = token_ids.shape[1]
        if isinstance(length, int) and length > self.max_len:
            raise ValueError(f"Sequence length {length} exceeds the model's max_len "
                             f"{self.max_len}.")
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
        return {**super().get_config(), **self.config.to_dict()}
