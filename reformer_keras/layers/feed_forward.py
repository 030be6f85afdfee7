"""`ChunkedFeedForward`: the position-wise feed-forward block, applied chunk by chunk."""

import keras
from keras import ops

from reformer_keras.layers import attention_utils as au
from reformer_keras.layers.seeding import glorot_uniform
from reformer_keras import input_checks


@keras.saving.register_keras_serializable(package="reformer_keras")
class ChunkedFeedForward(keras.layers.Layer):
    """Dense(d_ff) -> activation -> dropout -> Dense(d_model), over chunks of the sequence.

    The feed-forward is position-wise, so processing `chunk_size` positions at a time gives the
    same result while only one chunk's (chunk_size, d_ff) activation is alive at a time in the
    forward pass (the paper's chunking; d_ff is typically 4x d_model). `chunk_size=None` runs the
    whole sequence at once.

    Automatic differentiation of the chunk loop keeps every chunk's activations for the backward
    pass, so on TensorFlow a call under a gradient tape runs the whole sequence at once (same
    memory, bigger GEMMs; not with dropout in training, whose masks are drawn per chunk); the
    chunks bound the forward-only calls (a reversible stack's forward pass, inference).
    `chunked_backward=True` (TensorFlow backend) writes the backward out instead
    (`tf_chunked_recompute`): each chunk is recomputed and differentiated on its own, so the
    (L, d_ff) activations never exist at once in either pass, at the cost of one more forward
    pass of the block (measured costs in docs/benchmarks.md, "Memory knobs").

    Call: `layer(x, padding_mask=None, training=None, rng=None)`; x (B, L, d_model) ->
    (B, L, d_model). `padding_mask` is accepted for a uniform block signature and ignored
    (position-wise). `rng` as in `SelfAttentionBase`.
    """

    def __init__(self, d_ff, chunk_size=None, activation="gelu", dropout=0.0, seed=None,
                 chunked_backward=False, **kwargs):
        super().__init__(**kwargs)
        self.d_ff = input_checks.integer("d_ff", d_ff)
        self.chunk_size = None if chunk_size is None else input_checks.integer(
            "chunk_size", chunk_size)
        self.activation = keras.activations.get(activation)
        self.dropout = input_checks.rate("dropout", dropout)
        self.seed = seed
        self.chunked_backward = bool(chunked_backward)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape):
        d_model = input_shape[-1]
        self.inner_kernel = self.add_weight(name="inner_kernel", shape=(d_model, self.d_ff),
                                            initializer=glorot_uniform(self.seed, "inner_kernel"))
        self.inner_bias = self.add_weight(name="inner_bias", shape=(self.d_ff,),
                                          initializer="zeros")
        self.outer_kernel = self.add_weight(name="outer_kernel", shape=(self.d_ff, d_model),
                                            initializer=glorot_uniform(self.seed, "outer_kernel"))
        self.outer_bias = self.add_weight(name="outer_bias", shape=(d_model,),
                                          initializer="zeros")
        super().build(input_shape)

    def _weights(self):
        """The weights `_apply` takes, as read in this call (autocast, or stateless-call values):
        the inner kernel transposed to (d_ff, d_model), once per call, outside the chunk loop.

        x @ W with W (d_model, d_ff) stored row-major is a slow GEMM shape for oneDNN when x has
        few rows (a 128-token chunk), the transposed kernel a fast one (`tf_feed_forward`).
        """
        return [ops.transpose(self.inner_kernel), self.inner_bias, self.outer_kernel,
                self.outer_bias]

    def _apply(self, x, training, seed, salt=0, weights=None):
        """x (B, L, d_model) -> (B, L, d_model) with `weights` from `_weights` (inner kernel
        transposed)."""
        inner_kernel_t, inner_bias, outer_kernel, outer_bias = weights or self._weights()
        activate = lambda z, b: self.activation(z + b)
        if keras.backend.backend() == "tensorflow":
            from reformer_keras.layers import tf_feed_forward  # pylint: disable=import-outside-toplevel
            inner = tf_feed_forward.dense_transposed
            outer = tf_feed_forward.dense
            if self.activation is keras.activations.gelu:  # the exact GELU, bias fused in
                activate = tf_feed_forward.bias_gelu
        else:
            inner = lambda a, w: ops.einsum("bld,fd->blf", a, w)
            outer = ops.matmul
        h = activate(inner(x, inner_kernel_t), inner_bias)
        if training and self.dropout:
            h = au.dropout(h, self.dropout, seed, salt=31 + salt)
        return outer(h, outer_kernel) + outer_bias

    def _whole_for_gradient(self, training):
        """Whether to run unchunked because a gradient is being taken (TensorFlow, automatic
        differentiation of the chunk loop, i.e. `chunked_backward=False`): that backward stacks
        every chunk's activations anyway, so the whole sequence at once costs no more memory
        and runs faster (`tf_feed_forward`). Not with dropout in training, whose masks are
        drawn per chunk."""
        if (keras.backend.backend() != "tensorflow" or self.chunked_backward
                or (training and self.dropout)):
            return False
        from reformer_keras.layers import tf_feed_forward  # pylint: disable=import-outside-toplevel
        return tf_feed_forward.tape_is_recording()

    def call(self, x, padding_mask=None, training=None, rng=None):
        del padding_mask
        if len(x.shape) != 3:
            raise ValueError(f"{self.name}: `x` must have rank 3 (batch, length, d_model), got "
                             f"shape {tuple(x.shape)}.")
        seed = rng if rng is not None else (self.seed_generator.next() if training else None)
        length = x.shape[1]
        weights = self._weights()
        if (self.chunk_size is None or (isinstance(length, int) and length <= self.chunk_size)
                or self._whole_for_gradient(training)):
            return self._apply(x, training, seed, weights=weights)
        # (B, L, D) -> (nc, B, C, D): map over chunks so only one chunk's activations are live.
        dyn_length = ops.shape(x)[1]
        padded, _ = au.pad_length_to_multiple(x, self.chunk_size, axis=1)
        # Each chunk gets its own dropout mask, keyed by the chunk index.
        if self.chunked_backward and keras.backend.backend() == "tensorflow":
            from reformer_keras.layers import tf_chunked_recompute  # pylint: disable=import-outside-toplevel
            weights = [ops.cast(w, self.compute_dtype) for w in weights]
            out = tf_chunked_recompute.chunked_recompute(
                lambda a, w, i: self._apply(a, training, seed, salt=i, weights=w),
                ops.cast(padded, self.compute_dtype), weights, self.chunk_size)
            return au.trim_length(out, dyn_length, axis=1)
        chunks = ops.transpose(au.split_chunks(padded, self.chunk_size, axis=1), (1, 0, 2, 3))
        index = ops.arange(ops.shape(chunks)[0], dtype="int32")
        out = ops.map(lambda a: self._apply(a[0], training, seed, salt=a[1], weights=weights),
                      (chunks, index))
        out = au.merge_chunks(ops.transpose(out, (1, 0, 2, 3)), axis=1)
        return au.trim_length(out, dyn_length, axis=1)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(d_ff=self.d_ff, chunk_size=self.chunk_size,
                      activation=keras.activations.serialize(self.activation),
                      dropout=self.dropout, seed=self.seed,
                      chunked_backward=self.chunked_backward)
        return config
