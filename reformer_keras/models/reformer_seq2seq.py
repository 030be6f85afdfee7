"""`ReformerSeq2Seq`: reversible encoder-decoder (translation) with real cross-attention."""

import keras
import numpy as np
from keras import ops

from reformer_keras import input_checks
from reformer_keras.layers import (ChunkedFeedForward, FullSelfAttention, LocalSelfAttention,
                                   LSHSelfAttention, PreNormBranch)
from reformer_keras.layers.cross_attention import CrossAttention
from reformer_keras.layers.layer_norm import LayerNorm
from reformer_keras.layers.seeding import derive_seed, glorot_uniform
from reformer_keras.layers.self_attention_base import check_positive_int, check_rate
from reformer_keras.models.presets import PresetMixin
from reformer_keras.models.reformer_backbone import ATTENTION_TYPES, ReformerBackbone
from reformer_keras.models.reversible_decoder import (DecoderAttentionBranch,
                                                      ReversibleDecoderSequence)
from reformer_keras.models.train_state import TrainStateMixin


def _check_types(name, types):
    types = (types,) if isinstance(types, str) else tuple(types)
    if not types or any(t not in ATTENTION_TYPES for t in types):
        raise ValueError(f"`{name}` must be a non-empty list of {ATTENTION_TYPES}, got "
                         f"{types!r}.")
    return types


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerDecoder(keras.layers.Layer):
    """Decoder trunk: token + learned position embeddings -> `ReversibleDecoderSequence` of
    [causal self-attention + cross-attention, feed-forward] blocks -> LayerNorm.

    Args: sizes as `ReformerBackbone` (`context_dim`: feature size of the encoder output,
      2 * encoder d_model); `attention_types` cycled over layers ("lsh" / "local" / "full");
      the speed / memory options `attn_chunks`, `query_chunk_len`, `rotations_per_example`
      (LSH self-attention), `ff_chunked_backward` and `stored_top_blocks` as the backbone's.
    Call: `decoder(token_ids, context, context_mask=None, padding_mask=None, training=None,
      rng=None, num_hashes=None)`; token_ids (B, L) int, context (B, Lk, context_dim) ->
      (B, L, 2 * d_model) float32.
    """

    def __init__(self, vocab_size, d_model, num_layers, num_heads, d_ff, context_dim,
                 head_dim=None, attention_types=("lsh",), bucket_size=64, num_hashes=2,
                 num_buckets=None, local_chunk_size=None, max_len=1024, dropout=0.0,
                 attention_dropout=0.0, ff_chunk_size=None, reversible=True, seed=None,
                 attn_chunks=1, query_chunk_len=None, rotations_per_example=False,
                 ff_chunked_backward=False, stored_top_blocks=0, **kwargs):
        super().__init__(**kwargs)
        self.attn_chunks, self.query_chunk_len = attn_chunks, query_chunk_len
        self.rotations_per_example = bool(rotations_per_example)
        self.ff_chunked_backward = bool(ff_chunked_backward)
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.d_model = check_positive_int("d_model", d_model)
        self.num_layers = check_positive_int("num_layers", num_layers)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.d_ff = check_positive_int("d_ff", d_ff)
        self.context_dim = check_positive_int("context_dim", context_dim)
        self.head_dim = check_positive_int("head_dim", head_dim or d_model // num_heads)
        self.attention_types = _check_types("attention_types", attention_types)
        self.bucket_size, self.num_hashes = bucket_size, num_hashes
        self.num_buckets = list(num_buckets) if isinstance(num_buckets, tuple) else num_buckets
        self.local_chunk_size = local_chunk_size or bucket_size
        self.max_len = check_positive_int("max_len", max_len)
        self.dropout = check_rate("dropout", dropout)
        self.attention_dropout = check_rate("attention_dropout", attention_dropout)
        self.ff_chunk_size, self.reversible, self.seed = ff_chunk_size, bool(reversible), seed
        init = keras.initializers.RandomNormal
        self.token_embedding = keras.layers.Embedding(
            vocab_size, d_model, embeddings_initializer=init(
                stddev=d_model**-0.5, seed=derive_seed(seed, "token_embedding")),
            name="token_embedding")
        self.position_embedding = keras.layers.Embedding(  # the tokens' scale, as the backbone's
            max_len, d_model, embeddings_initializer=init(
                stddev=d_model**-0.5, seed=derive_seed(seed, "position_embedding")),
            name="position_embedding")
        blocks = []
        for i in range(num_layers):
            common = dict(num_heads=num_heads, head_dim=self.head_dim,
                          attention_dropout=self.attention_dropout, output_dropout=self.dropout)
            cross = CrossAttention(context_dim=context_dim, seed=self._seed(3 * i + 1),
                                   name=f"cross_attention_{i}", **common)
            f = DecoderAttentionBranch(self._self_attention(i, common), cross,
                                       name=f"attention_{i}")
            g = PreNormBranch(ChunkedFeedForward(d_ff, chunk_size=ff_chunk_size, dropout=dropout,
                                                 chunked_backward=self.ff_chunked_backward,
                                                 seed=self._seed(3 * i + 2), name=f"ff_{i}"),
                              name=f"feed_forward_{i}")
            blocks.append((f, g))
        self.stack = ReversibleDecoderSequence(blocks, reversible=reversible, seed=seed,
                                               stored_top_blocks=stored_top_blocks, name="stack")
        self.stored_top_blocks = self.stack.stored_top_blocks
        self.final_norm = LayerNorm(epsilon=1e-6, dtype="float32",
                                                          name="final_norm")

    def _seed(self, salt):
        return None if self.seed is None else self.seed + 7919 * (salt + 1)

    def _self_attention(self, i, common):
        kind = self.attention_types[i % len(self.attention_types)]
        kw = dict(causal=True, seed=self._seed(3 * i), name=f"{kind}_attention_{i}", **common)
        if kind == "lsh":
            return LSHSelfAttention(bucket_size=self.bucket_size, num_hashes=self.num_hashes,
                                    num_buckets=self.num_buckets, attn_chunks=self.attn_chunks,
                                    query_chunk_len=self.query_chunk_len,
                                    rotations_per_example=self.rotations_per_example, **kw)
        if kind == "local":
            return LocalSelfAttention(chunk_size=self.local_chunk_size, **kw)
        return FullSelfAttention(**kw)

    def build(self, token_ids_shape, context_shape=None):
        context_shape = context_shape or (None, None, self.context_dim)
        hidden = tuple(token_ids_shape) + (self.d_model,)
        self.token_embedding.build(token_ids_shape)
        self.position_embedding.build(token_ids_shape)
        self.stack.build(hidden, tuple(context_shape))
        self.final_norm.build(tuple(token_ids_shape) + (2 * self.d_model,))
        self.built = True

    def call(self, token_ids, context, context_mask=None, padding_mask=None, training=None,
             rng=None, num_hashes=None):
        token_ids = input_checks.check_token_ids(token_ids, self.vocab_size,
                                                 name="decoder_token_ids")
        length = token_ids.shape[1]
        if isinstance(length, int) and length > self.max_len:
            raise ValueError(f"Decoder length {length} exceeds decoder max_len {self.max_len}.")
        x = self.token_embedding(token_ids)
        x = x + self.position_embedding(ops.arange(ops.shape(token_ids)[1]))[None]
        if training and self.dropout:
            x = keras.random.dropout(x, self.dropout, seed=self.stack.seed_generator)
        x = self.stack(x, context, context_mask=context_mask, padding_mask=padding_mask,
                       training=training, rng=rng, num_hashes=num_hashes)
        return self.final_norm(x)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size, d_model=self.d_model, num_layers=self.num_layers,
            num_heads=self.num_heads, d_ff=self.d_ff, context_dim=self.context_dim,
            head_dim=self.head_dim, attention_types=list(self.attention_types),
            bucket_size=self.bucket_size, num_hashes=self.num_hashes,
            num_buckets=self.num_buckets, local_chunk_size=self.local_chunk_size,
            max_len=self.max_len, dropout=self.dropout,
            attention_dropout=self.attention_dropout, ff_chunk_size=self.ff_chunk_size,
            reversible=self.reversible, seed=self.seed, attn_chunks=self.attn_chunks,
            query_chunk_len=self.query_chunk_len,
            rotations_per_example=self.rotations_per_example,
            ff_chunked_backward=self.ff_chunked_backward,
            stored_top_blocks=self.stored_top_blocks)
        return config


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerSeq2Seq(PresetMixin, TrainStateMixin, keras.Model):
    """Encoder-decoder Reformer: non-causal reversible encoder (`ReformerBackbone`), causal
    reversible decoder with cross-attention to the encoder output, LM head over the target
    vocabulary.

    Args:
      encoder_vocab_size, decoder_vocab_size: source / target vocabularies.
      d_model, num_heads, d_ff, head_dim: shared sizes; num_encoder_layers, num_decoder_layers.
      encoder_attention_types, decoder_attention_types: cycled per layer ("lsh"/"local"/"full").
      encoder_max_len, decoder_max_len: learned position tables.
      bucket_size, num_hashes, num_buckets, local_chunk_size, dropout, attention_dropout,
      ff_chunk_size, reversible, seed: as `ReformerBackbone`.
      attn_chunks, query_chunk_len, rotations_per_example, ff_chunked_backward,
      stored_top_blocks: the backbone's speed / memory options, for encoder and decoder.

    Call: `model({"encoder_token_ids": (B, Ls) int, "encoder_padding_mask": (B, Ls) bool
      (optional), "decoder_token_ids": (B, Lt) int, "decoder_padding_mask": (B, Lt) (optional)})`
      -> logits (B, Lt, decoder_vocab_size) float32 (decoder position t predicts token t + 1).
    """

    def __init__(self, encoder_vocab_size, decoder_vocab_size, d_model, num_encoder_layers,
                 num_decoder_layers, num_heads, d_ff, head_dim=None,
                 encoder_attention_types=("lsh",), decoder_attention_types=("lsh",),
                 bucket_size=64, num_hashes=2, num_buckets=None, local_chunk_size=None,
                 encoder_max_len=1024, decoder_max_len=1024, dropout=0.0, attention_dropout=0.0,
                 ff_chunk_size=None, reversible=True, seed=None, attn_chunks=1,
                 query_chunk_len=None, rotations_per_example=False, ff_chunked_backward=False,
                 stored_top_blocks=0, **kwargs):
        super().__init__(**kwargs)
        shared = dict(head_dim=head_dim, bucket_size=bucket_size, num_hashes=num_hashes,
                      num_buckets=num_buckets, local_chunk_size=local_chunk_size,
                      dropout=dropout, attention_dropout=attention_dropout,
                      ff_chunk_size=ff_chunk_size, reversible=reversible,
                      attn_chunks=attn_chunks, query_chunk_len=query_chunk_len,
                      rotations_per_example=rotations_per_example,
                      ff_chunked_backward=ff_chunked_backward,
                      stored_top_blocks=stored_top_blocks)
        self.encoder = ReformerBackbone(
            encoder_vocab_size, d_model, num_encoder_layers, num_heads, d_ff, causal=False,
            attention_types=_check_types("encoder_attention_types", encoder_attention_types),
            max_len=encoder_max_len, seed=seed, name="encoder", **shared)
        self.decoder = ReformerDecoder(
            decoder_vocab_size, d_model, num_decoder_layers, num_heads, d_ff,
            context_dim=2 * d_model,
            attention_types=_check_types("decoder_attention_types", decoder_attention_types),
            max_len=decoder_max_len, seed=None if seed is None else seed + 1, name="decoder",
            **shared)
        self.lm_head = keras.layers.Dense(decoder_vocab_size, name="lm_head",
                                          kernel_initializer=glorot_uniform(seed, "lm_head"))
        self._config = dict(
            encoder_vocab_size=encoder_vocab_size, decoder_vocab_size=decoder_vocab_size,
            d_model=d_model, num_encoder_layers=num_encoder_layers,
            num_decoder_layers=num_decoder_layers, num_heads=num_heads, d_ff=d_ff,
            encoder_attention_types=list(self.encoder.attention_types),
            decoder_attention_types=list(self.decoder.attention_types),
            encoder_max_len=encoder_max_len, decoder_max_len=decoder_max_len, seed=seed,
            **{**shared, "head_dim": self.encoder.head_dim,
               "local_chunk_size": self.encoder.local_chunk_size,
               "num_buckets": self.encoder.num_buckets})

    def build_input_shape(self):
        return {"encoder_token_ids": (None, None), "decoder_token_ids": (None, None)}

    def build(self, input_shape):
        if not isinstance(input_shape, dict):
            raise ValueError("ReformerSeq2Seq expects a dict of inputs with "
                             "'encoder_token_ids' and 'decoder_token_ids'.")
        enc, dec = input_shape["encoder_token_ids"], input_shape["decoder_token_ids"]
        if not self.encoder.built:  # encode() / decode() may have built the parts already
            self.encoder.build(enc)
        if not self.decoder.built:
            self.decoder.build(dec, tuple(enc) + (2 * self.encoder.d_model,))
        if not self.lm_head.built:
            self.lm_head.build(tuple(dec) + (2 * self.decoder.d_model,))
        self.built = True

    @staticmethod
    def _unpack(inputs):
        if not isinstance(inputs, dict) or "encoder_token_ids" not in inputs or \
                "decoder_token_ids" not in inputs:
            raise ValueError("ReformerSeq2Seq expects a dict with 'encoder_token_ids' and "
                             "'decoder_token_ids' (and optional '*_padding_mask'), got "
                             f"{type(inputs).__name__}.")
        return (inputs["encoder_token_ids"], inputs.get("encoder_padding_mask"),
                inputs["decoder_token_ids"], inputs.get("decoder_padding_mask"))

    def encode(self, encoder_token_ids, encoder_padding_mask=None, training=None):
        """(B, Ls) int -> encoder output (B, Ls, 2 * d_model) float32."""
        encoder_token_ids = input_checks.check_token_ids(
            encoder_token_ids, self.encoder.vocab_size, name="encoder_token_ids")
        return self.encoder(encoder_token_ids, padding_mask=encoder_padding_mask,
                            training=training)

    def decode(self, decoder_token_ids, encoder_output, encoder_padding_mask=None,
               decoder_padding_mask=None, training=None):
        """(B, Lt) int + encoder output (B, Ls, 2 * d_model) -> logits (B, Lt, V) float32."""
        hidden = self.decoder(decoder_token_ids, encoder_output,
                              context_mask=encoder_padding_mask,
                              padding_mask=decoder_padding_mask, training=training)
        return ops.cast(self.lm_head(hidden), "float32")

    def call(self, inputs, training=None):
        enc_ids, enc_mask, dec_ids, dec_mask = self._unpack(inputs)
        context = self.encode(enc_ids, enc_mask, training=training)
        return self.decode(dec_ids, context, enc_mask, dec_mask, training=training)

    def generate(self, encoder_token_ids, max_new_tokens, **kwargs):
        """Cached autoregressive decoding: (B, Ls) int source ids -> (B, 1 + max_new_tokens)
        int32 decoder ids starting with `start_id`.

        Keyword args (encoder_padding_mask, start_id, temperature, top_k, top_p, seed, eos_id,
        pad_id) as in `reformer_keras.generation.generate_seq2seq`, which this delegates to
        (TensorFlow backend; the encoder runs once, cross-attention keys / values are cached).
        """
        from reformer_keras.generation import generate_seq2seq  # pylint: disable=import-outside-toplevel
        return generate_seq2seq(self, encoder_token_ids, max_new_tokens, **kwargs)

    def translate(self, encoder_token_ids, max_new_tokens, start_id, end_id=None,
                  encoder_padding_mask=None):
        """Greedy decoding (cached, via `generate` with temperature 0).

        encoder_token_ids (B, Ls) int -> int32 NumPy (B, 1 + max_new_tokens) starting with
        `start_id`; after `end_id` a row is filled with `end_id`.
        """
        out = self.generate(
            np.asarray(encoder_token_ids), int(max_new_tokens),
            encoder_padding_mask=encoder_padding_mask, start_id=int(start_id),
            temperature=0.0, eos_id=None if end_id is None else int(end_id),
            pad_id=0 if end_id is None else int(end_id))
        return np.asarray(out, np.int32)

    def get_config(self):
        config = super().get_config()
        config.update(self._config)
        return config
