"""The part every Reformer self-attention layer shares: projections, checks, seeds, dropout.

Subclasses implement `_attend(q, k, v, positions, valid, training, seed)` on per-head tensors.
Weight names are the same across subclasses (`qk_kernel` or `q_kernel`/`k_kernel`, `v_kernel`,
`output_kernel`), so LSH, local and full attention can share one set of weights in tests and when
a model switches attention type.
"""

import keras
from keras import ops

from reformer_keras import input_checks
from reformer_keras.layers import attention_utils as au
from reformer_keras.layers.seeding import glorot_uniform


class SelfAttentionBase(keras.layers.Layer):
    """Multi-head self-attention with the Reformer's options, without the attention pattern.

    Args:
      num_heads: number of heads H.
      head_dim: size dh of each head.
      causal: mask keys after the query.
      shared_qk: one projection for queries and keys; keys are unit-normalised and a token
        attends to itself only when nothing else is visible.
      attention_dropout: dropout rate on the attention probabilities.
      output_dropout: dropout rate on the layer output.
      seed: int seed for this layer's random draws (dropout masks; LSH rotations).

    Call args:
      x: (B, L, d_model) float.
      padding_mask: optional (B, L) bool or int, True/1 for real tokens. Padded tokens never
        influence real positions.
      training: Python bool.
      rng: optional int tensor (2,): the stateless seed of this call. The reversible stack passes
        it so that its backward recompute sees the same dropout masks and rotations; when None
        and training, one is drawn from the layer's seed generator.
    Returns:
      (B, L, d_model) in the layer's compute dtype.
    """

    def __init__(self, num_heads, head_dim, causal=False, shared_qk=False,
                 attention_dropout=0.0, output_dropout=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = input_checks.integer("num_heads", num_heads)
        self.head_dim = input_checks.integer("head_dim", head_dim)
        self.causal = bool(causal)
        self.shared_qk = bool(shared_qk)
        self.attention_dropout = input_checks.rate("attention_dropout", attention_dropout)
        self.output_dropout = input_checks.rate("output_dropout", output_dropout)
        self.seed = input_checks.seed("seed", seed)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        if len(input_shape) != 3 or input_shape[-1] is None:
            raise ValueError(
                f"{self.__class__.__name__} expects inputs of shape (batch, length, d_model) with "
                f"a known d_model, got shape {tuple(input_shape)}.")
        d_model = input_shape[-1]
        proj = (d_model, self.num_heads, self.head_dim)

        def weight(name, shape):
            return self.add_weight(name=name, shape=shape,
                                   initializer=glorot_uniform(self.seed, name))

        if self.shared_qk:
            self.qk_kernel = weight("qk_kernel", proj)
        else:
            self.q_kernel = weight("q_kernel", proj)
            self.k_kernel = weight("k_kernel", proj)
        self.v_kernel = weight("v_kernel", proj)
        self.output_kernel = weight("output_kernel", (self.num_heads, self.head_dim, d_model))
        super().build(input_shape)

    # -- checks -------------------------------------------------------------------------------
    def _check_inputs(self, x, padding_mask):
        if len(x.shape) != 3:
            raise ValueError(
                f"{self.name}: `x` must have rank 3 (batch, length, d_model), got shape "
                f"{tuple(x.shape)}.")
        if not keras.backend.is_float_dtype(x.dtype):
            raise ValueError(f"{self.name}: `x` must be a float tensor, got dtype {x.dtype}.")
        if padding_mask is not None and len(padding_mask.shape) != 2:
            raise ValueError(
                f"{self.name}: `padding_mask` must have shape (batch, length), got shape "
                f"{tuple(padding_mask.shape)}.")

    def _call_seed(self, training, rng):
        if rng is not None:
            return ops.convert_to_tensor(rng)
        if training:
            return self.seed_generator.next()
        return None

    # -- call ---------------------------------------------------------------------------------
    def call(self, x, padding_mask=None, training=None, rng=None, **attend_kwargs):
        self._check_inputs(x, padding_mask)
        seed = self._call_seed(training, rng)
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        if padding_mask is None:
            valid = ops.ones((batch, length), "bool")
        else:
            valid = ops.cast(padding_mask, "bool")
        positions = ops.broadcast_to(ops.arange(length, dtype="int32")[None, :], (batch, length))

        out = self._attend_and_project(x, positions, valid, bool(training), seed,
                                       **attend_kwargs)
        out, *extra = out if isinstance(out, tuple) else (out,)  # a subclass's extra outputs
        if training and self.output_dropout:
            out = au.dropout(out, self.output_dropout, seed, salt=101)
        return (out, *extra) if extra else out

    def _attend_and_project(self, x, positions, valid, training, seed, **attend_kwargs):
        """x (B, L, D) -> (B, L, D) in the compute dtype: per-head projections, `_attend`, the
        output projection. A subclass may do all three together (LSH's sequential groups)."""
        q, k, v = self._project_heads(x)
        out = self._attend(q, k, v, positions, valid, training, seed, **attend_kwargs)
        return self._project_out(out)

    def _project_heads(self, x):
        """x (B, L, D) -> q, k, v (B, H, L, dh); q is k under shared QK."""

        def heads(kernel):  # (B, L, D) x (D, H, dh) -> (B, H, L, dh)
            return ops.einsum("bld,dhk->bhlk", x, kernel)

        v = heads(self.v_kernel)
        if self.shared_qk:
            qk = heads(self.qk_kernel)
            return qk, qk, v
        return heads(self.q_kernel), heads(self.k_kernel), v

    def _project_out(self, out):
        """Attention output (B, H, L, dh) -> (B, L, D) in the compute dtype."""
        return ops.einsum("bhlk,hkd->bld", ops.cast(out, self.compute_dtype), self.output_kernel)

    def _attend(self, q, k, v, positions, valid, training, seed, **kwargs):
        """q, k, v (B, H, L, dh); positions (B, L) int32; valid (B, L) bool -> (B, H, L, dh)."""
        raise NotImplementedError

    def _attention_dropout_rate(self, training):
        return self.attention_dropout if training else 0.0

    # -- cached decoding (TensorFlow backend) --------------------------------------------------
    def init_cache(self, batch_size, max_length, dtype="float32", hash_length=None):
        """An empty cache for decoding up to `max_length` tokens one at a time (causal layers).

        Args:
          batch_size: Python int or scalar int tensor B.
          max_length: Python int M >= 1 (static: it sizes the cache, valid `tf.while_loop`
            state).
          dtype: storage dtype of the cached keys / values (the step computes in float32).
          hash_length: LSH with `num_buckets=None` only: the sequence length whose bucket count
            the hash uses (default `max_length`); pass the length the model was trained on, so
            that decoding hashes as training did whatever the cache size. Ignored otherwise.
        Returns: a dict of tensors (layouts in `tf_cached_attention`).
        """
        input_checks.integer("max_length", max_length)
        hash_length = max_length if hash_length is None else input_checks.integer(
            "hash_length", hash_length)
        return self._cache_steps(hash_length=hash_length).init(batch_size, max_length, dtype)

    def prefill_cache(self, x, cache):
        """Fills `cache` (from `init_cache`, empty) with a prompt: x (B, P, d_model), the layer's
        input at positions 0 .. P - 1, P <= max_length. Returns the new cache. The prompt's
        outputs are the layer's own `call(x)` (causal)."""
        return self._cache_steps(cache=cache).prefill(cache, x)

    def decode_step(self, x_t, cache, index):
        """One token: x_t (B, 1, d_model) the layer's input at position `index` (scalar int,
        < max_length), `cache` holding positions 0 .. index - 1.

        Returns (y_t (B, 1, d_model) float32, the cache now holding 0 .. index). Full and local
        attention give exactly `call(x)[:, index]` of the whole prefix; LSH computes what the
        layer computes for the last token of the prefix (see `tf_cached_attention`).
        """
        return self._cache_steps(cache=cache).step(cache, x_t, ops.cast(index, "int32"))

    def _cache_steps(self, hash_length=None, cache=None):
        """The `tf_cached_attention` object computing this layer's cached steps."""
        raise ValueError(f"{type(self).__name__} has no cached decoding step.")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads, head_dim=self.head_dim, causal=self.causal,
            shared_qk=self.shared_qk, attention_dropout=self.attention_dropout,
            output_dropout=self.output_dropout, seed=self.seed)
        return config
