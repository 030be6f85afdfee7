"""TensorFlow-only: the cached single-token steps behind the attention layers' `init_cache` /
`prefill_cache` / `decode_step` (cached autoregressive decoding).

Each cache class computes exactly its layer's math for one query: it reads the layer's weights
(`qk_kernel` or `q_kernel`/`k_kernel`, `v_kernel`, `output_kernel`) and reuses
`attention_utils` for the logits, masks and softmax. All caches are preallocated to a static
`max_length` M so that they can be `tf.while_loop` state. Computation is float32 whatever the
cache's storage dtype (floats are cast on write and read).

Notation: B batch, H heads, dh head dim, D d_model, M cache length, C chunk / bucket size,
n hash rounds, NB number of LSH buckets, t the position of the token being decoded.

  Full  : K, V (B, H, M, dh); the query sees keys 0..t. Exact.
  Local : K, V (B, H, before * C + ceil(M / C) * C, dh), stored `before * C` slots to the right so
          that the window of chunk c = t // C is one static-size slice; the query sees keys of its
          chunk and the `num_chunks_before` previous chunks, up to t. Exact.
  LSH   : shared-QK keys (length-normalised, `attention_utils.unit_keys`) and values
          (B, H, M, dh), bucket ids and within-bucket ranks
          (B, H, n, M), bucket counts (B, H, n, NB). The query's sorted index in a round is
          s = #{j < t: b_j <= b_t}; key j's is s_j = #{i <= t: b_i < b_j} + rank_j. Key j is
          visible iff j <= t and chunk(s_j) is within [chunk(s) - before, chunk(s) + after]:
          exactly what the layer computes for the LAST token of a sequence 0..t. Cost O(n * M)
          per step. See `reformer_keras.generation.decoding` for how this differs from
          re-running the layer on the whole prefix.
  Cross : the context's K, V (B, H, Ls, dh) and its validity (B, Ls) bool, computed once; the
          query attends to every valid context position, as `CrossAttention` does.
"""

import math

import tensorflow as tf
from tensorflow.python.ops import control_flow_util  # pylint: disable=no-name-in-module

from reformer_keras.layers import attention_utils as au


def project(h, kernel):
    """h (B, L, D), kernel (D, H, dh) -> (B, H, L, dh) float32."""
    return tf.einsum("bld,dhk->bhlk", tf.cast(h, tf.float32), tf.cast(kernel, tf.float32))


def project_out(out, kernel):
    """(B, H, 1, dh), kernel (H, dh, D) -> (B, 1, D) float32."""
    return tf.einsum("bhlk,hkd->bld", tf.cast(out, tf.float32), tf.cast(kernel, tf.float32))


def _write(cache, new, start, axis):
    """Writes `new` into `cache` along `axis` at [start, start + new_len). Static cache shape.

    A length-1 `new` (a decoding step) is one strided-slice update, which reuses the cache's
    buffer when nothing else holds it; under XLA (which needs a constant begin for that op),
    and for longer writes (the prefill, padded to the cache length first), a masked select.
    """
    size = cache.shape[axis]
    length = new.shape[axis]
    if length == 1 and not control_flow_util.GraphOrParentsInXlaContext(
            tf.compat.v1.get_default_graph()):
        rank = len(cache.shape)
        start = tf.cast(start, tf.int32)
        begin = tf.stack([start if i == axis else 0 for i in range(rank)])
        end = tf.stack([start + 1 if i == axis else 0 for i in range(rank)])
        others = sum(1 << i for i in range(rank) if i != axis)  # whole extent on these axes
        return tf.raw_ops.TensorStridedSliceUpdate(
            input=cache, begin=begin, end=end, strides=tf.ones([rank], tf.int32),
            value=tf.cast(new, cache.dtype), begin_mask=others, end_mask=others)
    index = tf.range(size, dtype=tf.int32)
    end = start + (1 if length == 1 else tf.shape(new)[axis])
    mask = tf.logical_and(index >= start, index < end)
    mask = tf.reshape(mask, [-1] + [1] * (len(cache.shape) - axis - 1))
    if length != 1:
        widths = [[0, 0] for _ in cache.shape]
        widths[axis] = [start, size - end]
        new = tf.pad(new, widths)
    return tf.where(mask, tf.cast(new, cache.dtype), cache)


def _f32(x):
    return tf.cast(x, tf.float32)


class _SelfAttentionCache:
    """Common part: projections, output, the one-query attention. Subclasses implement
    `init(batch, max_length, dtype)`, `prefill(cache, h)` and `step(cache, h, position)`."""

    def __init__(self, layer):
        if not layer.causal:
            raise ValueError(f"Cached decoding needs causal attention; layer {layer.name} is not "
                             "causal.")
        self.layer = layer
        self.heads, self.head_dim = layer.num_heads, layer.head_dim

    def _qkv(self, h):
        """h (B, L, D) -> q, k, v (B, H, L, dh) float32 (k is q under shared QK)."""
        layer = self.layer
        v = project(h, layer.v_kernel)
        if layer.shared_qk:
            q = k = project(h, layer.qk_kernel)
        else:
            q, k = project(h, layer.q_kernel), project(h, layer.k_kernel)
        return q, k, v

    def _zeros(self, batch, length, dtype):
        return tf.zeros(tf.stack([batch, self.heads, length, self.head_dim]), dtype)

    def _attend(self, q, k, v, k_pos, k_valid, position):
        """q (B, H, 1, dh); k, v (B, H, W, dh); k_pos, k_valid (W,) -> (B, 1, D) float32."""
        k, v = _f32(k), _f32(v)
        if self.layer.shared_qk:
            k = au.unit_keys(k)
        logits = au.attention_logits(q, k)  # (B, H, 1, W)
        logits = au.mask_logits(logits, tf.reshape(position, (1, 1, 1)), k_pos[None, None],
                                k_valid[None, None], True, self.layer.shared_qk)
        out, _ = au.softmax_attend(logits, v)
        return project_out(out, self.layer.output_kernel)


class FullCache(_SelfAttentionCache):
    """`FullSelfAttention`: K/V cache of every position; the query attends to 0..t."""

    def init(self, batch, max_length, dtype):
        return {"k": self._zeros(batch, max_length, dtype),
                "v": self._zeros(batch, max_length, dtype)}

    def prefill(self, cache, h):
        """h (B, P, D): the layer's input over the prompt."""
        _, k, v = self._qkv(h)
        return {"k": _write(cache["k"], k, 0, 2), "v": _write(cache["v"], v, 0, 2)}

    def step(self, cache, h, position):
        """h (B, 1, D), position scalar int32 -> ((B, 1, D) float32, new cache)."""
        q, k, v = self._qkv(h)
        k_cache = _write(cache["k"], k, position, 2)
        v_cache = _write(cache["v"], v, position, 2)
        k_pos = tf.range(k_cache.shape[2], dtype=tf.int32)
        out = self._attend(q, k_cache, v_cache, k_pos, k_pos <= position, position)
        return out, {"k": k_cache, "v": v_cache}


class LocalCache(_SelfAttentionCache):
    """`LocalSelfAttention`: one static-size window slice of the K/V cache per step."""

    def __init__(self, layer):
        super().__init__(layer)
        self.chunk = layer.chunk_size
        self.offset = layer.num_chunks_before * layer.chunk_size  # empty slots before position 0
        self.window = (layer.num_chunks_before + 1) * layer.chunk_size  # after-chunks are future

    def init(self, batch, max_length, dtype):
        size = self.offset + math.ceil(max_length / self.chunk) * self.chunk
        return {"k": self._zeros(batch, size, dtype), "v": self._zeros(batch, size, dtype)}

    def prefill(self, cache, h):
        _, k, v = self._qkv(h)
        return {"k": _write(cache["k"], k, self.offset, 2),
                "v": _write(cache["v"], v, self.offset, 2)}

    def step(self, cache, h, position):
        q, k, v = self._qkv(h)
        k_cache = _write(cache["k"], k, position + self.offset, 2)
        v_cache = _write(cache["v"], v, position + self.offset, 2)
        # Window of chunk c: positions (c - before) * C ... (c + 1) * C - 1, stored from c * C on.
        start = (position // self.chunk) * self.chunk
        begin = tf.stack([0, 0, start, 0])
        size = [-1, -1, self.window, -1]
        k_win, v_win = tf.slice(k_cache, begin, size), tf.slice(v_cache, begin, size)
        k_pos = start - self.offset + tf.range(self.window, dtype=tf.int32)
        out = self._attend(q, k_win, v_win, k_pos, k_pos >= 0, position)
        return out, {"k": k_cache, "v": v_cache}


class LSHCache(_SelfAttentionCache):
    """`LSHSelfAttention`: cached shared-QK vectors, values, bucket ids and bucket counts.

    Args:
      factors: static tuple of bucket counts per hash factor (their product is NB).
    """

    def __init__(self, layer, factors):
        super().__init__(layer)
        self.chunk = layer.bucket_size
        self.factors = tuple(int(f) for f in factors)
        self.num_buckets = math.prod(self.factors)
        self.num_hashes = layer.num_hashes

    def _hash(self, qk):
        """qk (B, H, L, dh) -> buckets (B, H, n, L) int32 (the layer's inference rotations)."""
        return tf.cast(self.layer.hash_buckets(qk, self.num_hashes, self.factors), tf.int32)

    def init(self, batch, max_length, dtype):
        ints = lambda last: tf.zeros(tf.stack([batch, self.heads, self.num_hashes, last]),
                                     tf.int32)
        return {"qk": self._zeros(batch, max_length, dtype),
                "v": self._zeros(batch, max_length, dtype),
                "buckets": ints(max_length), "ranks": ints(max_length),
                "counts": ints(self.num_buckets)}

    def prefill(self, cache, h):
        qk, _, v = self._qkv(h)
        buckets = self._hash(qk)                                       # (B, H, n, P)
        onehot = tf.one_hot(buckets, self.num_buckets, dtype=tf.int32)  # (B, H, n, P, NB)
        ranks = tf.reduce_sum(tf.cumsum(onehot, axis=3, exclusive=True) * onehot, axis=-1)
        return {"qk": _write(cache["qk"], au.unit_keys(qk), 0, 2),
                "v": _write(cache["v"], v, 0, 2),
                "buckets": _write(cache["buckets"], buckets, 0, 3),
                "ranks": _write(cache["ranks"], ranks, 0, 3),
                "counts": cache["counts"] + tf.reduce_sum(onehot, axis=3)}

    def step(self, cache, h, position):
        layer = self.layer
        qk, _, v = self._qkv(h)                                        # (B, H, 1, dh)
        bucket = self._hash(qk)[..., 0]                                # (B, H, n)
        old = cache["counts"]                                          # (B, H, n, NB), j < t
        ids = tf.range(self.num_buckets, dtype=tf.int32)
        rank = tf.gather(old, bucket[..., None], batch_dims=3)[..., 0]
        q_sorted = tf.reduce_sum(old * tf.cast(ids <= bucket[..., None], tf.int32), axis=-1)
        counts = old + tf.one_hot(bucket, self.num_buckets, dtype=tf.int32)
        new = {"qk": _write(cache["qk"], au.unit_keys(qk), position, 2),
               "v": _write(cache["v"], v, position, 2),
               "buckets": _write(cache["buckets"], bucket[..., None], position, 3),
               "ranks": _write(cache["ranks"], rank[..., None], position, 3),
               "counts": counts}
        # Sorted index of every cached key among the tokens 0..t, then its chunk window test.
        below = tf.cumsum(counts, axis=-1, exclusive=True)              # #{i <= t: b_i < b}
        k_sorted = tf.gather(below, new["buckets"], batch_dims=3) + new["ranks"]  # (B, H, n, M)
        q_chunk = (q_sorted // self.chunk)[..., None]
        k_chunk = k_sorted // self.chunk
        window = tf.logical_and(k_chunk >= q_chunk - layer.num_chunks_before,
                                k_chunk <= q_chunk + layer.num_chunks_after)
        k_pos = tf.range(new["qk"].shape[2], dtype=tf.int32)
        logits = au.attention_logits(qk, _f32(new["qk"]))[:, :, None]  # (B, H, 1, 1, M)
        logits = au.mask_logits(logits, tf.reshape(position, (1, 1, 1, 1)),
                                k_pos[None, None, None], window, True, True)  # (B,H,n,1,M)
        if not layer.allow_duplicate_attention:
            dup = tf.reduce_sum(tf.cast(window, tf.float32), axis=2)       # (B, H, M)
            logits = logits - tf.math.log(tf.maximum(dup, 1.0))[:, :, None, None, :]
        out, lse = au.softmax_attend(logits, _f32(new["v"])[:, :, None])  # (B,H,n,1,dh), (B,H,n,1)
        if self.num_hashes == 1:
            out = out[:, :, 0]
        else:  # combine rounds by their log-normalisers, as the layer does
            out = tf.reduce_sum(out * tf.nn.softmax(lse, axis=2)[..., None], axis=2)
        return project_out(out, layer.output_kernel), new


# Logit of padded context keys, as `CrossAttention` uses (finite: an all-padding row is uniform).
_CROSS_MASK_VALUE = -1e9


def cross_init(layer, context, context_mask, dtype):
    """`CrossAttention`: context (B, Ls, Dc), context_mask (B, Ls) or None ->
    {"k", "v": (B, H, Ls, dh) dtype, "valid": (B, Ls) bool}."""
    context = _f32(context)
    if context_mask is None:
        valid = tf.ones(tf.shape(context)[:2], tf.bool)
    else:
        valid = tf.cast(context_mask, tf.bool)
    return {"k": tf.cast(project(context, layer.k_kernel), dtype),
            "v": tf.cast(project(context, layer.v_kernel), dtype), "valid": valid}


def cross_step(layer, cache, h):
    """One query h (B, 1, D) against the cached keys / values -> (B, 1, D) float32."""
    q = project(h, layer.q_kernel)
    logits = tf.einsum("bhqd,bhkd->bhqk", q * (1.0 / float(layer.head_dim) ** 0.5),
                       _f32(cache["k"]))
    logits = tf.where(cache["valid"][:, None, None, :], logits, _CROSS_MASK_VALUE)  # (B,H,1,Ls)
    out = tf.einsum("bhqk,bhkd->bhqd", tf.nn.softmax(logits, axis=-1), _f32(cache["v"]))
    return project_out(out, layer.output_kernel)
