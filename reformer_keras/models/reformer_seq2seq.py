"""`ReformerSeq2Seq`: reversible encoder-decoder (translation) with real cross-attention."""

import keras
import numpy as np
from keras import ops

from reformer_keras import input_checks
from reformer_keras.config import Seq2SeqConfig
from reformer_keras.layers import ChunkedFeedForward, PreNormBranch
from reformer_keras.layers.cross_attention import CrossAttention
from reformer_keras.layers.layer_norm import LayerNorm
from reformer_keras.layers.seeding import derive_seed, glorot_uniform
from reformer_keras.models import attention_factory
from reformer_keras.models.attention_factory import layer_seed
from reformer_keras.models.presets import PresetMixin
from reformer_keras.models.reformer_backbone import ReformerBackbone, stack_config
from reformer_keras.models.reversible_decoder import (DecoderAttentionBranch,
                                                      ReversibleDecoderSequence)
from reformer_keras.models.train_state import TrainStateMixin

DECODER_MAX_LEN = 1024  # `ReformerDecoder`'s position table when built without max_len


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerDecoder(keras.layers.Layer):
    """Decoder trunk: token + learned position embeddings -> `ReversibleDecoderSequence` of
    [causal self-attention + cross-attention, feed-forward] blocks -> LayerNorm.

    Args: a `ReformerConfig` (`config=`; causal, learned positions) and `context_dim` (feature
      size of the encoder output, 2 * encoder d_model); or the config's fields as arguments
      (`ReformerDecoder(vocab_size, d_model, num_layers, num_heads, d_ff, context_dim,
      **options)`, max_len 1024 unless given).
    Call: `decoder(token_ids, context, context_mask=None, padding_mask=None, training=None,
      rng=None, num_hashes=None)`; token_ids (B, L) int, context (B, Lk, context_dim) ->
      (B, L, 2 * d_model) float32.
    """

    def __init__(self, *args, context_dim=None, config=None, **kwargs):
        if len(args) > 5:
            args, context_dim = args[:5], args[5]
        if config is None:
            kwargs.setdefault("max_len", DECODER_MAX_LEN)
        config = stack_config(config, args, kwargs, "ReformerDecoder", causal=True)
        super().__init__(**kwargs)
        if config.axial_shape is not None:
            raise ValueError("ReformerDecoder has learned positions: `axial_shape` must be None.")
        self.config = c = config.resolved()
        self.context_dim = input_checks.integer("context_dim", context_dim)
        for key, value in c.to_dict().items():   # the options, as attributes
            setattr(self, key, value)
        self.attention_types, seed = c.attention_types, c.seed
        init = keras.initializers.RandomNormal
        self.token_embedding = keras.layers.Embedding(
            c.vocab_size, c.d_model, embeddings_initializer=init(
                stddev=c.d_model**-0.5, seed=derive_seed(seed, "token_embedding")),
            name="token_embedding")
        self.position_embedding = keras.layers.Embedding(
            c.max_len, c.d_model, embeddings_initializer=init(
                stddev=c.position_init_stddev, seed=derive_seed(seed, "position_embedding")),
            name="position_embedding")
        blocks = []
        for i in range(c.num_layers):
            cross = CrossAttention(context_dim=self.context_dim, seed=layer_seed(seed, 3 * i + 1),
                                   name=f"cross_attention_{i}", num_heads=c.num_heads,
                                   head_dim=c.head_dim, attention_dropout=c.attention_dropout,
                                   output_dropout=c.dropout)
            f = DecoderAttentionBranch(
                attention_factory.self_attention(c, i, layer_seed(seed, 3 * i)), cross,
                name=f"attention_{i}")
            g = PreNormBranch(ChunkedFeedForward(c.d_ff, chunk_size=c.ff_chunk_size,
                                                 dropout=c.dropout,
                                                 chunked_backward=c.ff_chunked_backward,
                                                 seed=layer_seed(seed, 3 * i + 2),
                                                 name=f"ff_{i}"),
                              name=f"feed_forward_{i}")
            blocks.append((f, g))
        self.stack = ReversibleDecoderSequence(blocks, reversible=c.reversible, seed=seed,
                                               stored_top_blocks=c.stored_top_blocks,
                                               name="stack")
        self.final_norm = LayerNorm(epsilon=1e-6, dtype="float32", name="final_norm")

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
        return {**super().get_config(), **self.config.to_dict(),
                "context_dim": self.context_dim}


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerSeq2Seq(PresetMixin, TrainStateMixin, keras.Model):
    """Encoder-decoder Reformer: non-causal reversible encoder (`ReformerBackbone`), causal
    reversible decoder with cross-attention to the encoder output, LM head over the target
    vocabulary.

    Args: a `Seq2SeqConfig` (`config=`), or its fields as positional / keyword arguments:
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

    def __init__(self, *args, config=None, **kwargs):
        fields = Seq2SeqConfig.pop_fields(kwargs)
        if config is None:
            fields.update(zip(Seq2SeqConfig.field_names(), args))
            config = Seq2SeqConfig(**fields)
        elif args or fields:
            raise ValueError("ReformerSeq2Seq: pass either `config` or the model options "
                             f"{sorted(fields)}, not both.")
        elif isinstance(config, dict):
            config = Seq2SeqConfig.from_dict(config)
        super().__init__(**kwargs)
        encoder, decoder = config.encoder_config(), config.decoder_config()
        self.encoder = ReformerBackbone(config=encoder, name="encoder")
        self.decoder = ReformerDecoder(config=decoder, context_dim=2 * config.d_model,
                                       name="decoder")
        self.lm_head = keras.layers.Dense(config.decoder_vocab_size, name="lm_head",
                                          kernel_initializer=glorot_uniform(config.seed,
                                                                            "lm_head"))
        self.config = config.replace(head_dim=self.encoder.head_dim,
                                     local_chunk_size=self.encoder.local_chunk_size)

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
        return {**super().get_config(), **self.config.to_dict()}
