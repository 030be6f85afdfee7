"""Sorting and hashing helpers of `LSHSelfAttention`: the automatic bucket count, row gathers
by per-head index, a permutation whose gradient is a gather, the angular hash's signed argmax,
and the duplicate-attention counts."""

import math

from keras import ops

from reformer_keras.layers import attention_utils as au


# Above this many buckets, `num_buckets=None` factorises the hash into two rotations, so that
# the rotated vectors need O(sqrt(num_buckets)) instead of O(num_buckets) memory per token.
_FACTORISE_ABOVE = 256


def auto_num_buckets(padded_length, bucket_size):
    """Buckets for `num_buckets=None`: about one bucket per chunk, a power of two (>= 2),
    factorised into two near-equal powers of two above `_FACTORISE_ABOVE`."""
    chunks = max(padded_length // bucket_size, 2)
    return factorise_buckets(2 ** int(round(math.log2(chunks))))


def factorise_buckets(total):
    """`auto_num_buckets`' factors of a power-of-two bucket count."""
    if total <= _FACTORISE_ABOVE:
        return (total,)
    first = 2 ** int(math.ceil(math.log2(total) / 2))
    return (first, total // first)


def gather_rows(x, index):
    """x (B, H, N, d), index (B, H, M) int in [0, N) -> (B, H, M, d), as one flat gather."""
    b, h, n, d = ops.shape(x)
    flat = ops.reshape(x, (-1, d))
    offsets = ops.reshape(ops.arange(b * h, dtype="int32") * n, (b, h, 1))
    index = ops.cast(index, "int32") + offsets
    return ops.reshape(ops.take(flat, ops.reshape(index, (-1,)), axis=0),
                       (b, h, -1, d))


def permute_rows(x, index, inverse, rounds=1):
    """`gather_rows(x, index)` whose gradient is a gather too, not a scatter-add.

    x (B, H, N, d); index (B, H, rounds * N) holds, for each of `rounds` rounds, a permutation
    of [0, N); inverse (B, H, rounds * N) the inverse permutations, offset into the output's
    rows (round r's entries + r * N). Returns (B, H, rounds * N, d). The gradient of a gather
    is a scatter-add (TensorFlow: UnsortedSegmentSum, one thread); for permutations it is the
    gather by the inverse, summed over the rounds.
    """
    @au.custom_gradient
    def permute(x):
        def grad(*d_out, upstream=None):
            d_y = upstream if upstream is not None else d_out[0]
            d_x = gather_rows(d_y, inverse)                     # (B, H, rounds * N, d)
            if isinstance(rounds, int) and rounds == 1:
                return d_x
            b, h, _, d = ops.shape(d_x)
            return ops.sum(ops.reshape(d_x, (b, h, rounds, -1, d)), axis=2)

        return gather_rows(x, index), grad

    return permute(x)


def signed_argmax(rotated, half):
    """argmax over the last axis of [rotated, -rotated] (first index on ties), without the
    concatenation and without ArgMax/ArgMin, whose CPU kernels take ~2.5x as long as these five
    vectorised passes. rotated (..., half) -> (...,) int32 in [0, 2 * half)."""
    top = ops.max(rotated, axis=-1, keepdims=True)
    bottom = ops.min(rotated, axis=-1, keepdims=True)
    positive = top >= -bottom
    # The smallest integer type that holds `half` keeps the rotation-sized temporary small.
    dtype = "int32" if not isinstance(half, int) else next(
        t for t, top_value in (("int8", 127), ("int16", 32767), ("int32", 2**31 - 1))
        if half <= top_value)
    first = ops.min(ops.where(rotated == ops.where(positive, top, bottom),
                              ops.cast(ops.arange(half, dtype="int32"), dtype),
                              ops.cast(half, dtype)), axis=-1)
    # NaN rows match nothing: keep the index in range.
    first = ops.minimum(ops.cast(first, "int32"), half - 1)
    return ops.where(positive[..., 0], first, first + half)


def hash_by_count(hash_with, count, max_count, qk):
    """Runs `hash_with(qk, c)` for the power-of-two bucket count c == `count` (a scalar int
    tensor, known only when the graph runs), one branch per count 2, 4, .., `max_count`, so
    that each branch hashes with the constants eager code uses for that count. Counts outside
    that range are clamped into it."""
    counts = [2 ** j for j in range(1, max(int(max_count), 2).bit_length())]
    index = ops.cast(ops.round(ops.log2(ops.cast(count, "float32"))), "int32") - 1
    return ops.switch(index, [lambda q, c=c: hash_with(q, c) for c in counts], qk)


def duplicate_counts(undo, flat_perm, chunk, before, after, axis):
    """For each (query, key) logit of chunked LSH attention: in how many hash rounds that key is
    in the query's window of `before` and `after` neighbouring chunks of `chunk` tokens.

    undo (B, h, n, Lp) each token's sorted position per round; flat_perm (B, h, n * Lp) the
    sorting permutations (sorted -> token), concatenated; axis: the chunk axis of the result (3).
    Returns (B, h, n, nc, C, W*C) float32 >= 1.
    """
    batch, heads, n, _ = ops.shape(undo)
    locs = ops.cast(undo // chunk, "int32")                 # chunk of each token per round
    locs = ops.transpose(locs, (0, 1, 3, 2))                # (B, h, Lp, n)
    q_locs = ops.reshape(gather_rows(locs, flat_perm), (batch, heads, n, -1, chunk, n))
    k_locs = au.look_adjacent(q_locs, before, after, axis)  # (B, h, n, nc, W*C, n)
    diff = k_locs[..., None, :, :] - q_locs[..., :, None, :]
    visible = ops.logical_and(diff >= -before, diff <= after)
    counts = ops.sum(ops.cast(visible, "float32"), axis=-1)
    return ops.maximum(counts, 1.0)
