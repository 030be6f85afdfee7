"""Helpers of the Hugging Face (Trax) Reformer attention layers, in `keras.ops`.

Notation: B batch, H heads, L length, Lp padded length, C chunk length, nc chunks, dh head dim.
The conventions reproduced here (checked against Hugging Face's PyTorch model by
`tests/convert`):
  * the model pads its input, when L > the smallest chunk length and L is not a multiple of the
    least common multiple of the chunk lengths, to the next such multiple; the padded positions
    are masked keys (`padded_length`);
  * a layer whose (padded) length is at most its chunk length attends over the whole sequence;
  * chunk i looks at chunks i - before .. i + after, cyclically (chunk 0 looks back at the last
    chunk: `look_adjacent`);
  * masked logits are -1e9, a token's own key (shared-QK LSH) -1e5; softmax via logsumexp.
"""

from keras import ops

from reformer_keras.layers.attention_utils import MASK_VALUE, SELF_MASK_VALUE  # -1e9, -1e5


def static_or_cond(pred, true_fn, false_fn):
    """`true_fn()` / `false_fn()` by a Python bool, or `ops.cond` on a boolean tensor."""
    if isinstance(pred, bool):
        return true_fn() if pred else false_fn()
    return ops.cond(pred, true_fn, false_fn)


def padded_length(length, pad_multiple, pad_min_length):
    """The model-level padded length: L rounded up to a multiple of `pad_multiple` when
    L > `pad_min_length` and L % `pad_multiple` != 0, else L. Python int or int32 tensor."""
    if isinstance(length, int):
        if length > pad_min_length and length % pad_multiple:
            return length + pad_multiple - length % pad_multiple
        return length
    rest = length % pad_multiple
    return ops.where(ops.logical_and(length > pad_min_length, rest > 0),
                     length + pad_multiple - rest, length)


def pad_axis(x, length, axis, value=0):
    """Pads axis `axis` of `x` at the end to `length` (>= its size) with `value`."""
    extra = length - ops.shape(x)[axis]
    widths = [[0, 0] for _ in x.shape]
    widths[axis] = [0, extra]
    return ops.pad(x, widths, constant_values=value)


def split_chunks(x, chunk, axis=2):
    """(..., Lp, ...) -> (..., Lp // chunk, chunk, ...) along `axis`."""
    shape = ops.shape(x)
    new = list(shape[:axis]) + [-1, chunk] + list(shape[axis + 1:])
    return ops.reshape(x, new)


def merge_chunks(x, axis=2):
    """(..., nc, C, ...) -> (..., nc * C, ...) along `axis` (the chunk axis)."""
    shape = ops.shape(x)
    return ops.reshape(x, list(shape[:axis]) + [-1] + list(shape[axis + 2:]))


def look_adjacent(x, before, after):
    """(B, H, nc, C, ...) -> (B, H, nc, (before + 1 + after) * C, ...): for chunk i, the chunks
    i - before .. i + after concatenated (indices modulo nc: the window wraps around)."""
    if before == 0 and after == 0:
        return x
    parts = [x if i == 0 else ops.roll(x, shift=-i, axis=2) for i in range(-before, after + 1)]
    return ops.concatenate(parts, axis=3)


def masked_softmax_attend(q, k, v, allowed, self_key=None):
    """Attention with Hugging Face's masking.

    q (..., Q, dh), k / v (..., K, dh), allowed (..., Q, K) bool (broadcastable) -> out
    (..., Q, dh) and logsumexp (..., Q). Disallowed logits are -1e9; with `self_key` (a bool
    (..., Q, K), True where the key is the query's own position) those become -1e5 afterwards.
    """
    dots = ops.matmul(q, ops.swapaxes(k, -1, -2))
    dots = ops.where(allowed, dots, MASK_VALUE)
    if self_key is not None:
        dots = ops.where(self_key, SELF_MASK_VALUE, dots)
    lse = ops.logsumexp(dots, axis=-1, keepdims=True)
    probs = ops.exp(dots - lse)
    return ops.matmul(probs, v), ops.squeeze(lse, -1)
