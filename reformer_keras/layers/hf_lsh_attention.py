"""`HFLSHSelfAttention`: Hugging Face's (Trax's) Reformer LSH attention, exactly."""

import functools
import math

import keras
import numpy as np
from keras import ops

from reformer_keras.layers import hf_attention_utils as hu
from reformer_keras.layers import torch_randn
from reformer_keras.layers.hf_local_attention import check_chunk_options
from reformer_keras import input_checks
from reformer_keras.layers.self_attention_base import SelfAttentionBase


def check_num_buckets(num_buckets):
    """An even int, or a list of even ints (factorised buckets) -> int or tuple."""
    factors = list(num_buckets) if isinstance(num_buckets, (list, tuple)) else [num_buckets]
    if not factors or any(isinstance(f, bool) or not isinstance(f, int) or f < 2 or f % 2
                          for f in factors):
        raise ValueError("`num_buckets` must be an even int >= 2 or a list of them, got "
                         f"{num_buckets!r}.")
    return tuple(factors) if isinstance(num_buckets, (list, tuple)) else factors[0]


@functools.lru_cache(maxsize=64)
def rotations(hash_seed, num_heads, head_dim, num_hashes, half_rotation):
    """(H, dh, n, R/2) float32: `torch.manual_seed(hash_seed); torch.randn(...)`."""
    return torch_randn.randn(hash_seed, (num_heads, head_dim, num_hashes, half_rotation))


@keras.saving.register_keras_serializable(package="reformer_keras")
class HFLSHSelfAttention(SelfAttentionBase):
    """Shared-QK LSH attention as Hugging Face's `LSHSelfAttention` computes it.

    Hashing: rotations R (H, dh, n, sum(factors) / 2) drawn as PyTorch's CPU
    `torch.manual_seed(hash_seed); torch.randn` (`torch_randn`; the same for every layer and call);
    bucket = argmax([xR, -xR]) per factor, combined as b0 + f0 * b1 + ...; when any position is
    masked (padding), masked positions get an extra last bucket. Rounds are offset by the bucket
    count, positions sorted stably by bucket, cut into chunks of `chunk_length`, each attending to
    num_chunks_before / after neighbours cyclically (across round boundaries). Keys are
    x * rsqrt(mean(x^2) + 1e-6) / sqrt(dh); masked logits -1e9, then the own position -1e5; rounds
    combined by softmax of their logsumexps (no correction for keys seen twice). A padded length
    of at most `chunk_length` attends over the whole sequence (one "round").

    Args:
      chunk_length, num_chunks_before, num_chunks_after, pad_multiple, pad_min_length: as in
        `HFLocalSelfAttention`.
      num_buckets: an even int or a list of even ints (factorised).
      num_hashes: hash rounds n.
      hash_seed: int seed of the rotations.
      Other args as in `SelfAttentionBase` (shared_qk is always True).

    Call: x (B, L, d_model) -> (B, L, d_model).
    """

    def __init__(self, num_heads, head_dim, num_buckets=2, num_hashes=1, hash_seed=0,
                 chunk_length=64, num_chunks_before=1, num_chunks_after=0, pad_multiple=None,
                 pad_min_length=None, **kwargs):
        kwargs["shared_qk"] = True
        super().__init__(num_heads, head_dim, **kwargs)
        self.num_buckets = check_num_buckets(num_buckets)
        self.num_hashes = input_checks.integer("num_hashes", num_hashes)
        if isinstance(hash_seed, bool) or not isinstance(hash_seed, int) or not (
                0 <= hash_seed < 2**32):
            raise ValueError(f"`hash_seed` must be an int in [0, 2**32), got {hash_seed!r}.")
        self.hash_seed = hash_seed
        (self.chunk_length, self.num_chunks_before, self.num_chunks_after, self.pad_multiple,
         self.pad_min_length) = check_chunk_options(chunk_length, num_chunks_before,
                                                    num_chunks_after, pad_multiple,
                                                    pad_min_length)

    @property
    def factors(self):
        return self.num_buckets if isinstance(self.num_buckets, tuple) else (self.num_buckets,)

    def hash(self, qk, valid):
        """qk (B, H, Lp, dh), valid (B, Lp) bool -> (B, H, n * Lp) int32 buckets offset by round
        (round r holds r * nb' .. (r + 1) * nb' - 1, nb' = prod(factors) (+1 with padding))."""
        half = sum(self.factors) // 2
        rot = ops.convert_to_tensor(rotations(self.hash_seed, self.num_heads, self.head_dim,
                                              self.num_hashes, half), qk.dtype)
        rotated = ops.einsum("bhtd,hdnr->bhntr", qk, rot)  # (B, H, n, Lp, R/2)
        buckets, start, product = None, 0, 1
        for factor in self.factors:
            part = rotated[..., start:start + factor // 2]
            start += factor // 2
            index = ops.cast(ops.argmax(ops.concatenate([part, -part], axis=-1), axis=-1),
                             "int32")
            buckets = index if buckets is None else buckets + product * index
            product *= factor
        has_padding = ops.logical_not(ops.all(valid))
        count = product + ops.cast(has_padding, "int32")
        buckets = ops.where(valid[:, None, None, :], buckets, count - 1)
        offsets = ops.arange(self.num_hashes, dtype="int32")[:, None] * count
        buckets = buckets + offsets
        shape = ops.shape(buckets)
        return ops.reshape(buckets, (shape[0], shape[1], -1))

    def _attend(self, q, k, v, positions, valid, training, seed):
        length = ops.shape(q)[2]
        static = q.shape[2]
        padded = hu.padded_length(static if isinstance(static, int) else length,
                                  self.pad_multiple, self.pad_min_length)
        qk, v = (hu.pad_axis(t, padded, axis=2) for t in (q, v))
        valid = hu.pad_axis(valid, padded, axis=1, value=False)
        scale = ops.cast(math.sqrt(self.head_dim), qk.dtype)

        def norm_keys(x):
            return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + 1e-6) / scale

        def standard():
            index = ops.arange(padded, dtype="int32")
            allowed = valid[:, None, None, :]
            if self.causal:
                allowed = ops.logical_and(allowed, index[:, None] >= index[None, :])
            out, _ = hu.masked_softmax_attend(qk, norm_keys(qk), v, allowed,
                                              self_key=index[:, None] == index[None, :])
            return out

        def hashed():
            buckets = self.hash(qk, valid)  # (B, H, N), N = n * Lp
            total = ops.shape(buckets)[-1]
            flat = ops.arange(total, dtype="int32")
            key = ops.cast(buckets, "int64") * ops.cast(total, "int64") + ops.cast(flat, "int64")
            order = ops.cast(ops.argsort(key, axis=-1), "int32")  # stable by construction
            undo = ops.cast(ops.argsort(order, axis=-1), "int32")
            pos = order % padded  # (B, H, N)
            gather = lambda t: ops.take_along_axis(t, ops.repeat(  # noqa: E731
                pos[..., None], self.head_dim, axis=-1), axis=2)
            sq, sv = gather(qk), gather(v)  # (B, H, N, dh) in sorted order
            c, before, after = self.chunk_length, self.num_chunks_before, self.num_chunks_after
            q_idx = hu.split_chunks(pos, c)
            k_idx = hu.look_adjacent(q_idx, before, after)
            key_valid = ops.take_along_axis(
                ops.broadcast_to(valid[:, None, :], ops.shape(qk)[:3]), k_idx_flat(k_idx), axis=2)
            key_valid = ops.reshape(key_valid, ops.shape(k_idx))
            allowed = key_valid[..., None, :]
            if self.causal:
                allowed = ops.logical_and(allowed, q_idx[..., :, None] >= k_idx[..., None, :])
            out, lse = hu.masked_softmax_attend(
                hu.split_chunks(sq, c), hu.look_adjacent(hu.split_chunks(norm_keys(sq), c),
                                                         before, after),
                hu.look_adjacent(hu.split_chunks(sv, c), before, after), allowed,
                self_key=q_idx[..., :, None] == k_idx[..., None, :])
            out, lse = hu.merge_chunks(out), hu.merge_chunks(lse)  # (B, H, N, dh), (B, H, N)
            out = ops.take_along_axis(out, ops.repeat(undo[..., None], self.head_dim, axis=-1),
                                      axis=2)
            lse = ops.take_along_axis(lse, undo, axis=2)
            if self.num_hashes == 1:
                return out
            shape = ops.shape(qk)
            out = ops.reshape(out, (shape[0], shape[1], self.num_hashes, -1, self.head_dim))
            lse = ops.reshape(lse, (shape[0], shape[1], self.num_hashes, -1, 1))
            weights = ops.exp(lse - ops.logsumexp(lse, axis=2, keepdims=True))
            return ops.sum(out * weights, axis=2)

        def k_idx_flat(k_idx):
            shape = ops.shape(k_idx)
            return ops.reshape(k_idx, (shape[0], shape[1], -1))

        use_standard = padded <= self.chunk_length
        if not isinstance(use_standard, bool):
            use_standard = ops.convert_to_tensor(use_standard)
        out = hu.static_or_cond(use_standard, standard, hashed)
        return out[:, :, :length]

    def get_config(self):
        config = super().get_config()
        config.pop("shared_qk", None)
        config.update(num_buckets=list(self.num_buckets) if isinstance(self.num_buckets, tuple)
                      else self.num_buckets, num_hashes=self.num_hashes,
                      hash_seed=self.hash_seed, chunk_length=self.chunk_length,
                      num_chunks_before=self.num_chunks_before,
                      num_chunks_after=self.num_chunks_after, pad_multiple=self.pad_multiple,
                      pad_min_length=self.pad_min_length)
        return config
