"""`CrossAttention`: encoder-decoder (source) attention, written with `keras.ops`.

Queries come from the decoder stream, keys and values from the encoder output (the "context").
Every decoder position attends to every real (unpadded) context position: O(Lq * Lk), which is
fine for translation-length sources; the long-sequence machinery (LSH, chunking) is for
self-attention.
"""

import keras
from keras import ops

from reformer_keras.layers import attention_utils as au
from reformer_keras.layers.seeding import glorot_uniform
from reformer_keras import input_checks

# Logit of padded context keys: finite, so an all-padding context gives a uniform (not NaN) row.
_MASK_VALUE = -1e9


@keras.saving.register_keras_serializable(package="reformer_keras")
class CrossAttention(keras.layers.Layer):
    """Multi-head attention from `x` (queries) to `context` (keys / values).

    out = concat_h softmax(q_h k_h^T / sqrt(dh) + mask) v_h  @ W_o, with
    q_h = x W_q[h], k_h = context W_k[h], v_h = context W_v[h].

    Args:
      num_heads: number of heads H.
      head_dim: size dh of each head.
      context_dim: feature size of the context; None takes it from the first call (or from
        `build(x_shape, context_shape)`).
      attention_dropout, output_dropout: dropout rates (probabilities / output).
      seed: int seed for the dropout masks.

    Call: `layer(x, context, context_mask=None, training=None, rng=None)`
      x: (B, Lq, d_model) float.
      context: (B, Lk, context_dim) float.
      context_mask: optional (B, Lk) bool / int, True for real context tokens; padded context
        tokens get zero attention weight.
      rng: optional int tensor (2,), the stateless seed of this call (reversible recompute).
    Returns: (B, Lq, d_model) in the layer's compute dtype.
    """

    def __init__(self, num_heads, head_dim, context_dim=None, attention_dropout=0.0,
                 output_dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = input_checks.integer("num_heads", num_heads)
        self.head_dim = input_checks.integer("head_dim", head_dim)
        self.context_dim = None if context_dim is None else input_checks.integer(
            "context_dim", context_dim)
        self.attention_dropout = input_checks.rate("attention_dropout", attention_dropout)
        self.output_dropout = input_checks.rate("output_dropout", output_dropout)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"`seed` must be an int or None, got {seed!r}.")
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, x_shape, context_shape=None):
        if len(x_shape) != 3 or x_shape[-1] is None:
            raise ValueError(f"{self.name}: `x` must have shape (batch, length, d_model) with a "
                             f"known d_model, got {tuple(x_shape)}.")
        context_dim = self.context_dim
        if context_dim is None:
            if context_shape is None or context_shape[-1] is None:
                raise ValueError(f"{self.name}: pass `context_dim` or build with the context "
                                 "shape.")
            context_dim = self.context_dim = int(context_shape[-1])
        d_model = x_shape[-1]
        h, dh = self.num_heads, self.head_dim

        def weight(name, shape):
            return self.add_weight(name=name, shape=shape,
                                   initializer=glorot_uniform(self.seed, name))

        self.q_kernel = weight("q_kernel", (d_model, h, dh))
        self.k_kernel = weight("k_kernel", (context_dim, h, dh))
        self.v_kernel = weight("v_kernel", (context_dim, h, dh))
        self.output_kernel = weight("output_kernel", (h, dh, d_model))
        self.built = True

    def _check(self, x, context, context_mask):
        if len(x.shape) != 3 or len(context.shape) != 3:
            raise ValueError(
                f"{self.name}: `x` and `context` must have rank 3 (batch, length, features), got "
                f"shapes {tuple(x.shape)} and {tuple(context.shape)}.")
        if context.shape[-1] is not None and self.context_dim is not None and \
                context.shape[-1] != self.context_dim:
            raise ValueError(f"{self.name}: `context` must have {self.context_dim} features, got "
                             f"shape {tuple(context.shape)}.")
        if context_mask is not None and len(context_mask.shape) != 2:
            raise ValueError(f"{self.name}: `context_mask` must have shape (batch, context "
                             f"length), got {tuple(context_mask.shape)}.")

    def call(self, x, context, context_mask=None, training=None, rng=None):
        self._check(x, context, context_mask)
        seed = None
        if rng is not None:
            seed = ops.convert_to_tensor(rng)
        elif training:
            seed = self.seed_generator.next()
        context = ops.cast(context, self.compute_dtype)
        q = ops.einsum("bld,dhk->bhlk", x, self.q_kernel)          # (B, H, Lq, dh)
        k = ops.einsum("bld,dhk->bhlk", context, self.k_kernel)    # (B, H, Lk, dh)
        v = ops.einsum("bld,dhk->bhlk", context, self.v_kernel)    # (B, H, Lk, dh)
        scale = 1.0 / float(self.head_dim) ** 0.5
        logits = ops.einsum("bhqd,bhkd->bhqk", ops.cast(q, "float32") * scale,
                            ops.cast(k, "float32"))                 # (B, H, Lq, Lk) float32
        if context_mask is not None:
            visible = ops.cast(context_mask, "bool")[:, None, None, :]
            logits = ops.where(visible, logits, _MASK_VALUE)
        probs = ops.softmax(logits, axis=-1)
        if training and self.attention_dropout:
            probs = au.dropout(probs, self.attention_dropout, seed, salt=13)
        out = ops.einsum("bhqk,bhkd->bhqd", ops.cast(probs, v.dtype), v)   # (B, H, Lq, dh)
        out = ops.einsum("bhlk,hkd->bld", ops.cast(out, self.compute_dtype), self.output_kernel)
        if training and self.output_dropout:
            out = au.dropout(out, self.output_dropout, seed, salt=103)
        return out

    # -- cached decoding (TensorFlow backend) --------------------------------------------------
    def init_cache(self, context, context_mask=None, dtype="float32"):
        """The keys and values of `context` (B, Lk, context_dim), computed once for decoding.

        context_mask: optional (B, Lk) bool / int, True for real context tokens. dtype: storage
        dtype of the keys / values (the step computes in float32). Returns {"k", "v":
        (B, H, Lk, dh), "valid": (B, Lk) bool}.
        """
        from reformer_keras.layers import tf_cached_attention  # pylint: disable=import-outside-toplevel
        return tf_cached_attention.cross_init(self, context, context_mask, dtype)

    def decode_step(self, x_t, cache, index=None):
        """One query x_t (B, 1, d_model) against the cached context (`init_cache`).

        `index` (the query's position) is unused: every query sees the whole context. Returns
        (y_t (B, 1, d_model) float32, cache unchanged), as `call(x, context)[:, index]` at
        inference.
        """
        from reformer_keras.layers import tf_cached_attention  # pylint: disable=import-outside-toplevel
        del index
        return tf_cached_attention.cross_step(self, cache, x_t), cache

    def compute_output_shape(self, x_shape, context_shape=None):
        return tuple(x_shape)

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, head_dim=self.head_dim,
                      context_dim=self.context_dim, attention_dropout=self.attention_dropout,
                      output_dropout=self.output_dropout, seed=self.seed)
        return config
