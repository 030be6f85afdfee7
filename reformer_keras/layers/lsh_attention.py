"""`LSHSelfAttention`: the Reformer's locality-sensitive-hashing attention, O(L log L).

One hash round: shared-QK vectors are hashed by a random rotation (angular LSH), tokens are sorted
by (bucket, position), the sorted sequence is cut into chunks of `bucket_size`, and each query
attends to the keys of its chunk and its neighbouring chunks. Several rounds run in parallel and
are combined with weights proportional to exp(logsumexp of each round's logits), which equals
attending once over the multiset union of the rounds' keys. With
`allow_duplicate_attention=False`, each logit is lowered by log(number of rounds in which that key
is visible to that query), which makes the result exactly softmax attention over the set union.
"""

import math
import random

import keras
import numpy as np
from keras import ops

from reformer_keras.layers import attention_utils as au
from reformer_keras.layers.lsh_utils import (auto_num_buckets, duplicate_counts,
                                             factorise_buckets, hash_by_count, permute_rows,
                                             signed_argmax)
from reformer_keras import input_checks
from reformer_keras.layers.self_attention_base import SelfAttentionBase

@keras.saving.register_keras_serializable(package="reformer_keras")
class LSHSelfAttention(SelfAttentionBase):
    """Reformer LSH self-attention (shared QK).

    Args:
      num_heads, head_dim: heads H and head size dh.
      bucket_size: chunk length C of the sorted sequence (the paper's bucket size).
      num_hashes: hash rounds n (can be raised at evaluation with the `num_hashes` call arg).
      num_buckets: None (about Lp / C, a power of two, factorised when large), 1 (no hashing:
        causal LSH then equals shared-QK local attention), an even int, or a list of even ints
        whose product is the number of buckets (a factorised hash).
      causal: mask keys after the query.
      num_chunks_before, num_chunks_after: neighbouring chunks each chunk attends to.
      attention_dropout, output_dropout: dropout rates.
      allow_duplicate_attention: False applies the paper's correction for a key visible to a
        query in several hash rounds.
      attn_chunks: memory knob: split the H x n (head, round) pairs into about this many equal
        groups (`group_layout`: a divisor of H splits the heads; a multiple of H also splits each
        head's rounds). With the TensorFlow backend the groups run one after another in the
        forward and the backward pass, each head block doing its own projections, and the
        backward recomputes each group's projections, hashing, sort and scores
        (`tf_sequential_attention`): only one group's sorted copies and (Lp, (before + 1 +
        after) * C) scores, and no per-head tensor of all heads, are alive at a time, at the cost
        of one more forward pass of the attention core. Same result as 1 (up to the
        attention-dropout masks, drawn per group).
      query_chunk_len: memory knob: None, or a multiple of `bucket_size`: with the TensorFlow
        backend, the sorted queries of each group are attended in pieces of this many tokens,
        one after another in both passes (`tf_segmented_attention`), so the score-sized
        temporaries exist for one piece at a time. Same result (up to attention-dropout masks,
        drawn per piece).
      seed: int seed. In training, rotations and dropout masks are drawn afresh at each call; at
        inference, rotations come from a fixed seed derived from `seed` (chosen at random when
        None and stored in the config), so inference is deterministic and survives saving.
      rotations_per_example: in training, draw each example its own rotations (as trax does),
        so one step hashes the batch B different ways instead of one: (B, H, dh, n, r) instead
        of (H, dh, n, r) Gaussians, same FLOPs. Inference always uses the shared fixed ones.
      max_len: the longest input (the model's position table). With `num_buckets=None`, a
        graph traced for unknown lengths (a SavedModel signature) then hashes at inference
        exactly as eager does, for every length up to max_len; without it such a graph draws
        its rotations statelessly from `hash_seed` (same in every such graph, not eager's).

    Call: `layer(x, padding_mask=None, training=None, num_hashes=None, buckets=None,
    return_buckets=False)`; x (B, L, d_model) -> (B, L, d_model). Any L works: it is padded
    internally to a multiple of `bucket_size`; padding hashes to an extra last bucket, so it
    changes nothing at real positions. `buckets`: (B, H, n, Lp) int32 from `compute_buckets`,
    used instead of hashing. `return_buckets=True` returns (output, buckets), the buckets
    `compute_buckets` gives (a reversible forward hands them to its recompute); with all heads
    and rounds in one group they come from the call's own projection, with no second one.
    """

    def __init__(self, num_heads, head_dim, bucket_size=64, num_hashes=2, num_buckets=None,
                 causal=False, num_chunks_before=1, num_chunks_after=0,
                 allow_duplicate_attention=True, attn_chunks=1, query_chunk_len=None, seed=None,
                 hash_seed=None, rotations_per_example=False, max_len=None, **kwargs):
        kwargs.pop("shared_qk", None)
        super().__init__(num_heads, head_dim, causal=causal, shared_qk=True, seed=seed, **kwargs)
        self.bucket_size = input_checks.integer("bucket_size", bucket_size)
        self.num_hashes = input_checks.integer("num_hashes", num_hashes)
        self.num_buckets = input_checks.num_buckets("num_buckets", num_buckets)
        self.num_chunks_before = input_checks.integer("num_chunks_before", num_chunks_before, 0)
        self.num_chunks_after = input_checks.integer("num_chunks_after", num_chunks_after, 0)
        self.allow_duplicate_attention = bool(allow_duplicate_attention)
        self.attn_chunks = input_checks.integer("attn_chunks", attn_chunks)
        if num_heads % self.attn_chunks and self.attn_chunks % num_heads:
            raise ValueError(
                f"`attn_chunks` must divide num_heads={num_heads} or be a multiple of it, got "
                f"{attn_chunks!r}.")
        if query_chunk_len is not None and (
                input_checks.integer("query_chunk_len", query_chunk_len) % self.bucket_size):
            raise ValueError(
                f"`query_chunk_len` must be None or a multiple of bucket_size={bucket_size}, got "
                f"{query_chunk_len!r}.")
        self.query_chunk_len = query_chunk_len
        self.rotations_per_example = bool(rotations_per_example)
        self.max_len = None if max_len is None else input_checks.integer("max_len", max_len)
        if hash_seed is None:
            hash_seed = seed if seed is not None else random.randrange(2**31 - 1)
        self.hash_seed = int(hash_seed)

    def call(self, x, padding_mask=None, training=None, rng=None, num_hashes=None,
             buckets=None, return_buckets=False):
        n = self.num_hashes if num_hashes is None else num_hashes
        input_checks.integer("num_hashes", n)
        if buckets is not None:
            want = (None, self.num_heads, n, None)
            if len(buckets.shape) != 4 or any(
                    w is not None and b is not None and w != b
                    for w, b in zip(want, buckets.shape)):
                raise ValueError(
                    f"{self.name}: `buckets` must have shape (batch, {self.num_heads}, {n}, "
                    f"padded length), as `compute_buckets` returns, got {tuple(buckets.shape)}.")
        return super().call(x, padding_mask, training, rng, num_hashes=n, buckets=buckets,
                            return_buckets=return_buckets)

    def compute_buckets(self, x, padding_mask=None, training=None, rng=None, num_hashes=None):
        """The hash buckets `call` with the same arguments hashes x into.

        x (B, L, d_model) -> (B, H, n, Lp) int32, Lp = L padded to a multiple of `bucket_size`.
        `call(..., buckets=b)` then attends with these buckets instead of hashing: a recompute
        (the reversible stack's backward pass, whose inputs are reconstructed up to rounding)
        sorts exactly as the forward pass did, where rehashing could move a token whose rotated
        vector sits on a bucket boundary. In training, pass the same `rng` as to `call`.
        Heads are hashed one block of `attn_chunks` at a time (their projections only).
        """
        del padding_mask  # padding is moved to its own bucket inside `call`
        if not self.built:
            self.build(tuple(x.shape))
        n = self.num_hashes if num_hashes is None else num_hashes
        return self._buckets_of(x, n, self._call_seed(training, rng), training)

    def _buckets_of(self, x, num_hashes, seed, training, qk=None):
        """`compute_buckets` with the call's seed; x (B, L, d_model) -> (B, H, n, Lp) int32.
        Heads are projected one `attn_chunks` block at a time, unless their projection `qk`
        (B, H, L, dh) is given."""
        seed = seed if training else None
        if qk is not None:
            qk, _ = au.pad_length_to_multiple(qk, self.bucket_size, axis=2)
            return self.hash_buckets(qk, num_hashes, self._bucket_factors(ops.shape(qk)[2]),
                                     seed)
        x, _ = au.pad_length_to_multiple(x, self.bucket_size, axis=1)
        factors = self._bucket_factors(ops.shape(x)[1])
        hb = self.group_layout(num_hashes)[0]
        kernel = ops.cast(self.qk_kernel, self.compute_dtype)
        return ops.concatenate([
            self.hash_buckets(ops.einsum("bld,dhk->bhlk", x, kernel[:, h:h + hb]), num_hashes,
                              factors, seed, head_start=h)
            for h in range(0, self.num_heads, hb)], axis=1)

    # -- hashing --------------------------------------------------------------------------------
    def _bucket_factors(self, padded_length):
        """Static tuple of bucket counts per factor ((,) never: at least one entry)."""
        if self.num_buckets is not None:
            return self.num_buckets if isinstance(self.num_buckets, tuple) else (
                self.num_buckets,)
        if isinstance(padded_length, int):
            return auto_num_buckets(padded_length, self.bucket_size)
        chunks = ops.maximum(padded_length // self.bucket_size, 2)
        return (ops.cast(2 ** ops.round(ops.log2(ops.cast(chunks, "float32"))), "int32"),)

    def rotations(self, factor_index, num_hashes, num_buckets, seed, batch=None):
        """Random rotations (H, dh, n, num_buckets // 2) float32 for one hash factor, or
        (batch, H, dh, n, num_buckets // 2) when `batch` (an int or scalar tensor) is given.

        Training (`seed` a tensor): drawn statelessly from the call's seed, so the reversible
        recompute redraws the same ones. Inference (`seed` None): NumPy draws from `hash_seed`,
        baked into the graph as constants, so eager, XLA, other devices and a SavedModel all hash
        identically (TF's stateless kernels differ between XLA and non-XLA).
        """
        shape = (self.num_heads, self.head_dim, num_hashes, num_buckets // 2)
        if batch is not None:
            shape = (batch,) + shape
        if seed is None and isinstance(num_buckets, int):
            rng = np.random.default_rng([self.hash_seed, factor_index, num_hashes, num_buckets])
            return ops.convert_to_tensor(rng.standard_normal(shape).astype("float32"))
        if seed is None:  # dynamic bucket count: fall back to a stateless draw
            seed = ops.convert_to_tensor([self.hash_seed, 0], dtype="int32")
        return keras.random.normal(
            shape, seed=au.SeedTensor(au.fold_seed(seed, 200 + factor_index)))

    def hash_buckets(self, qk, num_hashes, factors, seed=None, head_start=0, round_start=0,
                     num_rounds=None):
        """Angular LSH. qk (B, h, Lp, dh) -> buckets (B, h, n', Lp) int32 in [0, prod(factors)).

        `seed`: the call's stateless seed in training, None at inference (see `rotations`;
        with `rotations_per_example`, training draws them per example of the batch).
        A group of heads and rounds (qk holds heads `head_start` .. + h; the result covers rounds
        `round_start` .. + `num_rounds` of `num_hashes`; starts may be tensors) hashes exactly
        as it does among all.
        """
        if seed is None and self.max_len and not all(isinstance(f, int) for f in factors):
            c = self.bucket_size
            top = math.prod(auto_num_buckets(-(-self.max_len // c) * c, c))
            return hash_by_count(lambda q, count: self.hash_buckets(
                q, num_hashes, factorise_buckets(count), None, head_start, round_start, num_rounds),
                factors[0], top, qk)
        qk = ops.cast(qk, "float32")
        batch, heads, length, dh = ops.shape(qk)
        n_out = num_hashes if num_rounds is None else num_rounds
        buckets = ops.zeros((batch, heads, length, n_out), "int32")
        lead = (batch,) if seed is not None and self.rotations_per_example else ()
        stride = 1
        for i, num in enumerate(factors):
            if isinstance(num, int) and num == 1:
                continue
            rotations = self.rotations(i, num_hashes, num, seed, *lead)  # ([B,] H, dh, n, r)
            rotations = ops.slice(rotations, (0,) * len(lead) + (head_start, 0, round_start, 0),
                                  lead + (heads, dh, n_out, num // 2))  # ([B,] h, dh, n', r)
            rotated = ops.einsum("bhld,bhdm->bhlm" if lead else "bhld,hdm->bhlm", qk,
                                 ops.reshape(rotations, lead + (heads, dh, -1)))
            rotated = ops.reshape(rotated, (batch, heads, length, n_out, num // 2))
            buckets = buckets + signed_argmax(rotated, num // 2) * stride
            stride = stride * num
        return ops.transpose(buckets, (0, 1, 3, 2))

    # -- attention ------------------------------------------------------------------------------
    def _group_attention(self, valid, padded, training, seed, num_hashes, rounds_per_group,
                         buckets=None):
        """attend_group(qk_g, v_g, head_start, round_start, salt) -> (out (B, h, Lp, dh) f32,
        lse (B, h, Lp) f32) for heads head_start .. + h of qk_g, v_g (B, h, Lp, dh) and rounds
        round_start .. + rounds_per_group; valid (B, Lp) bool, padded = Lp. `buckets`
        (B, H, n, Lp) int32 (`compute_buckets`): used instead of hashing."""
        factors = self._bucket_factors(padded)
        total = 1
        for f in factors:
            total = total * f
        hash_seed = seed if training else None

        def attend_group(qk_g, v_g, head_start, round_start, salt):
            if buckets is None:
                group = self.hash_buckets(qk_g, num_hashes, factors, hash_seed, head_start,
                                          round_start, rounds_per_group)
            else:
                group = ops.slice(buckets, (0, head_start, round_start, 0),
                                  (ops.shape(qk_g)[0], qk_g.shape[1], rounds_per_group, padded))
            return self._attend_sorted(qk_g, v_g, group, valid, total, training, seed, salt)

        return attend_group

    def _attend(self, q, k, v, positions, valid, training, seed, num_hashes, buckets=None):
        """All rounds of each head at once; `attn_chunks` groups of heads side by side (the
        TensorFlow backend runs them one after another instead: `_attend_and_project`)."""
        del k  # shared QK: q is also the key projection
        length = ops.shape(q)[2]
        c = self.bucket_size
        qk, _ = au.pad_length_to_multiple(q, c, axis=2)
        v, _ = au.pad_length_to_multiple(v, c, axis=2)
        valid, _ = au.pad_length_to_multiple(valid, c, axis=1, value=False)
        attend_group = self._group_attention(valid, ops.shape(qk)[2], training, seed, num_hashes,
                                             num_hashes, buckets)
        hb = self.group_layout(num_hashes)[0]
        outs = [attend_group(qk[:, h:h + hb], v[:, h:h + hb], h, 0, h)[0]
                for h in range(0, self.num_heads, hb)]
        out = outs[0] if len(outs) == 1 else ops.concatenate(outs, axis=1)
        return au.trim_length(out, length, axis=2)

    def _attend_and_project(self, x, positions, valid, training, seed, num_hashes,
                            buckets=None, return_buckets=False):
        """With `attn_chunks` > 1 on TensorFlow: projections, attention and output projection
        per head block, the (head, round) groups one after another in both passes
        (`tf_sequential_attention`). x (B, L, D) -> (B, L, D), and with `return_buckets` the
        buckets attended with."""
        heads_per_group, rounds_per_group = self.group_layout(num_hashes)
        if keras.backend.backend() != "tensorflow" or (
                heads_per_group == self.num_heads and rounds_per_group == num_hashes):
            qk, _, v = self._project_heads(x)
            if return_buckets and buckets is None:  # hashed here, from this projection
                buckets = self._buckets_of(x, num_hashes, seed, training, qk=qk)
            out = self._project_out(self._attend(qk, qk, v, positions, valid, training, seed,
                                                 num_hashes, buckets))
            return (out, buckets) if return_buckets else out
        if return_buckets and buckets is None:
            buckets = self._buckets_of(x, num_hashes, seed, training)
        from reformer_keras.layers import tf_sequential_attention  # pylint: disable=import-outside-toplevel
        length = ops.shape(x)[1]
        x, _ = au.pad_length_to_multiple(x, self.bucket_size, axis=1)
        valid, _ = au.pad_length_to_multiple(valid, self.bucket_size, axis=1, value=False)
        attend_group = self._group_attention(valid, ops.shape(x)[1], training, seed, num_hashes,
                                             rounds_per_group, buckets)
        kernel = lambda w: ops.cast(w, self.compute_dtype)
        out = tf_sequential_attention.sequential_attention(
            x, kernel(self.qk_kernel), kernel(self.v_kernel), kernel(self.output_kernel),
            heads_per_group, rounds_per_group, num_hashes, attend_group)
        out = ops.cast(au.trim_length(out, length, axis=1), self.compute_dtype)
        return (out, buckets) if return_buckets else out

    def group_layout(self, num_hashes):
        """(heads, rounds) per group of the `attn_chunks` groups: a divisor of H splits the
        heads; a multiple of H also splits each head's rounds into the largest number of equal
        parts <= attn_chunks / H (not without duplicate attention: its counts span all rounds)."""
        if self.attn_chunks <= self.num_heads:
            return self.num_heads // self.attn_chunks, num_hashes
        if not self.allow_duplicate_attention:
            return 1, num_hashes
        parts = max(p for p in range(1, min(self.attn_chunks // self.num_heads, num_hashes) + 1)
                    if num_hashes % p == 0)
        return 1, num_hashes // parts

    def _attend_sorted(self, qk, v, buckets, valid, num_buckets, training, seed, group):
        """Sort, attend within chunk windows, unsort and combine the rounds.

        qk, v (B, h, Lp, dh); buckets (B, h, n, Lp); valid (B, Lp) -> out (B, h, Lp, dh) float32
        and its log-normaliser lse (B, h, Lp) float32 (the logsumexp over the rounds).
        """
        batch, heads, padded, dh = ops.shape(qk)
        n = ops.shape(buckets)[2]
        c = self.bucket_size
        # Padding goes to an extra last bucket: real tokens keep their order and chunks.
        buckets = ops.where(valid[:, None, None, :], buckets, num_buckets)
        big = not (isinstance(padded, int) and isinstance(num_buckets, int)
                   and (num_buckets + 1) * padded < 2**31)
        key_dtype = "int64" if big else "int32"
        pos = ops.arange(padded, dtype=key_dtype)
        keys = ops.cast(buckets, key_dtype) * ops.cast(padded, key_dtype) + pos
        perm = ops.argsort(keys, axis=-1)                       # (B, h, n, Lp) sorted -> token
        undo = ops.argsort(perm, axis=-1)                       # token -> sorted
        s_keys = ops.take_along_axis(keys, perm, axis=-1)
        s_pos = ops.cast(s_keys % ops.cast(padded, key_dtype), "int32")
        s_valid = s_keys < ops.cast(num_buckets, key_dtype) * ops.cast(padded, key_dtype)

        round_offsets = ops.reshape(ops.arange(n, dtype="int32") * padded, (1, 1, -1, 1))
        flat_perm = ops.reshape(ops.cast(perm, "int32"), (batch, heads, -1))
        flat_undo = ops.reshape(ops.cast(undo, "int32") + round_offsets, (batch, heads, -1))
        chunked = lambda t: au.split_chunks(t, c, axis=3)  # (B, h, n, Lp, ...) -> chunks
        sort = lambda t: chunked(ops.reshape(permute_rows(t, flat_perm, flat_undo, n),
                                             (batch, heads, n, padded, dh)))
        s_qk, s_v = sort(qk), sort(v)
        q_pos, s_valid = chunked(s_pos), chunked(s_valid)       # (B, h, n, nc, C)

        window = dict(before=self.num_chunks_before, after=self.num_chunks_after, axis=3)
        bias = None
        if not self.allow_duplicate_attention:
            bias = -ops.log(duplicate_counts(undo, flat_perm, c, **window))
        out, lse = au.fused_attention(  # scores (B, h, n, nc, C, W*C), recomputed in backward
            s_qk, au.unit_keys(s_qk), s_v, q_pos, q_pos, s_valid, self.causal, True, bias=bias,
            dropout_rate=self._attention_dropout_rate(training), seed=seed, salt=13 + group,
            segment_axis=3, window=window,
            segment=None if self.query_chunk_len is None else self.query_chunk_len // c)

        # Back to token order, then combine the rounds by their log-normalisers.
        out = ops.reshape(out, (batch, heads, -1, dh))          # (B, h, n * Lp, dh)
        sorted_rows = ops.reshape(ops.cast(perm, "int32") + round_offsets, (batch, heads, -1))
        out = ops.reshape(permute_rows(out, flat_undo, sorted_rows),
                          (batch, heads, n, padded, dh))
        lse = ops.take_along_axis(ops.reshape(lse, (batch, heads, n, padded)), undo, axis=-1)
        if isinstance(n, int) and n == 1:
            return ops.cast(out[:, :, 0], "float32"), lse[:, :, 0]
        weights = ops.softmax(lse, axis=2)[..., None]  # sums to 1 even where lse ~ -1e5
        return ops.sum(ops.cast(out, "float32") * weights, axis=2), ops.logsumexp(lse, axis=2)

    def _cache_steps(self, hash_length=None, cache=None):
        """With `hash_length`, the hash of that (padded) length; with `cache`, the hash its
        bucket counts (B, H, n, NB) were made with."""
        from reformer_keras.layers import tf_cached_attention  # pylint: disable=import-outside-toplevel
        if self.num_buckets is not None:
            factors = self._bucket_factors(None)
        elif cache is not None:
            factors = factorise_buckets(int(cache["counts"].shape[-1]))
        else:
            c = self.bucket_size
            factors = self._bucket_factors(math.ceil(hash_length / c) * c)
        return tf_cached_attention.LSHCache(self, factors)

    def get_config(self):
        config = super().get_config()
        config.pop("shared_qk")
        num_buckets = list(self.num_buckets) if isinstance(self.num_buckets, tuple) else (
            self.num_buckets)
        config.update(
            bucket_size=self.bucket_size, num_hashes=self.num_hashes, num_buckets=num_buckets,
            num_chunks_before=self.num_chunks_before, num_chunks_after=self.num_chunks_after,
            allow_duplicate_attention=self.allow_duplicate_attention,
            attn_chunks=self.attn_chunks, query_chunk_len=self.query_chunk_len,
            hash_seed=self.hash_seed, rotations_per_example=self.rotations_per_example,
            max_len=self.max_len)
        return config
