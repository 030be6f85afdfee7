"""Shared helpers for chunked attention, written with `keras.ops` (backend-portable).

Notation used in shapes: B batch, H heads, n hash rounds, L length, Lp length padded to a
multiple of the chunk length C, nc = Lp // C chunks, W = before + 1 + after window chunks, dh head
dim.
"""

import math

import keras
from keras import ops

# Logit given to masked keys (padding, future, outside the sequence). Finite, so a query with
# nothing to attend to gives a uniform (and later discarded) distribution instead of NaN.
MASK_VALUE = -1e9
# Logit given to a query's own key under shared QK: q.k is largest for k = q, so self-attention is
# only used when nothing else is visible (the Reformer paper, section 2).
SELF_MASK_VALUE = -1e5


def custom_gradient(f):
    """`keras.ops.custom_gradient`; on TensorFlow the variant that records only f's results on the
    tape (`tf_custom_gradient`: no zero gradients made for f's inputs in every backward pass)."""
    if keras.backend.backend() == "tensorflow":
        from reformer_keras.layers import tf_custom_gradient  # pylint: disable=import-outside-toplevel
        return tf_custom_gradient.custom_gradient(f)
    return ops.custom_gradient(f)


class SeedTensor(keras.random.SeedGenerator):
    """Presents an already drawn seed tensor (shape (2,)) to `keras.random` ops.

    `keras.random.*(seed=...)` accepts an int or a `SeedGenerator`; a tensor seed is what lets the
    reversible backward pass redraw exactly the forward's dropout masks and hash rotations.
    """

    def __init__(self, seed):  # pylint: disable=super-init-not-called
        self._seed_tensor = seed

    def next(self, ordered=True):
        del ordered
        return self._seed_tensor


def fold_seed(seed, salt):
    """A new stateless seed derived from `seed` (int tensor (2,)) and an int `salt` (Python int
    or scalar tensor)."""
    seed = ops.convert_to_tensor(seed)
    salt = ops.cast(salt, seed.dtype)
    return seed + ops.stack([salt * 1_000_003 + 17, salt])


def dropout(x, rate, seed, salt):
    """Stateless dropout of `x` keyed by (`seed`, `salt`); identity when `rate` is 0."""
    if not rate:
        return x
    return keras.random.dropout(x, rate, seed=SeedTensor(fold_seed(seed, salt)))


def pad_length_to_multiple(x, multiple, axis, value=0):
    """Pads `x` along `axis` at the end to a multiple of `multiple`. Returns (padded, pad).

    No op when the length is statically a multiple already (`trim_length` likewise): a pad and
    the slice that undoes it each cost a copy of the whole tensor in the backward pass.
    """
    length = ops.shape(x)[axis]
    pad = (-length) % multiple
    if isinstance(pad, int) and pad == 0:
        return x, 0
    widths = [[0, 0] for _ in range(len(x.shape))]
    widths[axis] = [0, pad]
    return ops.pad(x, widths, constant_values=value), pad


def trim_length(x, length, axis):
    """The first `length` entries of `x` along `axis` (undoes `pad_length_to_multiple`); x
    itself when that is its static length."""
    if isinstance(length, int) and x.shape[axis] == length:
        return x
    index = [slice(None)] * axis + [slice(0, length)]
    return x[tuple(index)]


def split_chunks(x, chunk, axis):
    """(..., Lp, ...) -> (..., Lp // chunk, chunk, ...), splitting `axis` (non-negative)."""
    shape = list(ops.shape(x))
    new_shape = shape[:axis] + [-1, chunk] + shape[axis + 1:]
    return ops.reshape(x, new_shape)


def merge_chunks(x, axis):
    """Inverse of `split_chunks`: merges axes `axis` and `axis + 1`."""
    shape = list(ops.shape(x))
    new_shape = shape[:axis] + [-1] + shape[axis + 2:]
    return ops.reshape(x, new_shape)


def _in_range(x, shift, axis):
    """Bool mask broadcastable to `x`: chunk c + shift exists (chunk axis `axis`)."""
    num = ops.shape(x)[axis]
    index = ops.arange(num, dtype="int32") + shift
    inside = ops.logical_and(index >= 0, index < num)
    return ops.reshape(inside, [-1 if i == axis else 1 for i in range(len(x.shape))])


def look_adjacent(x, before, after, axis, fill=None):
    """Each chunk together with its neighbours.

    Args:
      x: (..., nc, C, ...) with the chunk axis at `axis` and the within-chunk axis at `axis + 1`.
      before, after: number of neighbouring chunks to include on each side.
      fill: None: neighbours beyond the ends wrap around (rolls are cheap to differentiate, unlike
        slices); callers must mask those keys, which they do through their validity flags, the
        one input given a `fill`. Otherwise such neighbours are replaced by `fill`.
    Returns:
      (..., nc, (before + 1 + after) * C, ...): chunk c followed by its window, ordered
      c - before, ..., c + after.
    """
    parts = []
    for shift in range(-before, after + 1):
        part = x if shift == 0 else ops.roll(x, -shift, axis=axis)
        if fill is not None and shift != 0:
            part = ops.where(_in_range(x, shift, axis), part, fill)
        parts.append(part)
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=axis + 1)


def unit_keys(k):
    """Shared-QK keys: the query vectors length-normalised, so a query's logit against itself is
    never smaller than against another key. (..., dh) -> (..., dh) float32.

    The keys get norm sqrt(dh) (root-mean-square 1), so after the usual 1/sqrt(dh) of
    `attention_logits` a logit is q . k/|k|, as in trax (`length_normalized`, then / sqrt(dh))
    and HF transformers (`_len_and_dim_norm`). Unit-norm keys with the 1/sqrt(dh) on top (as in
    reformer-pytorch) make logits sqrt(dh) times flatter: at dh = 64 a Shakespeare byte LM
    trained to 3.47 bits/char with full shared-QK attention instead of 2.76 at equal steps.
    """
    k = ops.cast(k, "float32")
    return k * ops.rsqrt(ops.mean(ops.square(k), axis=-1, keepdims=True) + 1e-6)


def attention_logits(q, k):
    """Scaled dot products in float32. q (..., Lq, dh), k (..., Lk, dh) -> (..., Lq, Lk)."""
    scale = 1.0 / float(q.shape[-1]) ** 0.5
    q = ops.cast(q, "float32") * scale
    return ops.einsum("...qd,...kd->...qk", q, ops.cast(k, "float32"))


# Position given to invalid keys under causal masking: "in the future" of every query.
_NEVER = 2**30


def visible_keys(q_pos, k_pos, k_valid, causal, shared_qk):
    """Which keys each query may use. Returns (visible, is_self), bool (..., Lq, Lk).

    Args:
      q_pos: (..., Lq) int positions of the queries in the original sequence.
      k_pos: (..., Lk) int positions of the keys.
      k_valid: (..., Lk) bool, False for padding and for keys outside the sequence.
    `is_self` is None unless `shared_qk` (the query's own key, used only as a last resort).
    """
    q_pos = q_pos[..., :, None]
    if causal:  # an invalid key is moved to the future, so one comparison masks both
        k_pos = ops.where(k_valid, k_pos, _NEVER)[..., None, :]
        visible = k_pos <= q_pos
    else:
        k_pos = k_pos[..., None, :]
        visible = k_valid[..., None, :]
    is_self = ops.equal(k_pos, q_pos) if shared_qk else None
    return visible, is_self


def mask_logits(logits, q_pos, k_pos, k_valid, causal, shared_qk):
    """Applies padding, causal and self masks (see `visible_keys`) to logits (..., Lq, Lk)."""
    visible, is_self = visible_keys(q_pos, k_pos, k_valid, causal, shared_qk)
    if shared_qk:
        logits = ops.where(is_self, SELF_MASK_VALUE, logits)
    return ops.where(visible, logits, MASK_VALUE)


def softmax_attend(logits, v, dropout_rate=0.0, seed=None, salt=0):
    """Softmax-weighted values and the log-normaliser.

    Args:
      logits: (..., Lq, Lk) float32, already masked.
      v: (..., Lk, dh).
    Returns:
      out (..., Lq, dh) in v's dtype and lse (..., Lq) float32, the logsumexp of the logits (hash
      rounds are combined with these).
    """
    lse = ops.logsumexp(logits, axis=-1, keepdims=True)
    probs = ops.exp(logits - lse)
    if dropout_rate:
        probs = dropout(probs, dropout_rate, seed, salt)
    out = ops.einsum("...qk,...kd->...qd", ops.cast(probs, v.dtype), v)
    return out, ops.squeeze(lse, -1)


def attention_masks(q_pos, k_pos, k_valid, causal, shared_qk):
    """(visible, is_self, used) bool (..., Lq, Lk): `visible_keys` and the keys that get
    gradient (visible and, under shared QK, not the query itself)."""
    visible, is_self = visible_keys(q_pos, k_pos, k_valid, causal, shared_qk)
    used = visible if is_self is None else ops.logical_and(visible, ops.logical_not(is_self))
    return visible, is_self, used


def _masked_logits(q, k, masks, bias):
    visible, is_self, _ = masks
    scale = 1.0 / float(q.shape[-1]) ** 0.5
    logits = ops.einsum("...qd,...kd->...qk", ops.cast(q, "float32") * scale,
                        ops.cast(k, "float32"))
    if is_self is not None:
        logits = ops.where(is_self, SELF_MASK_VALUE, logits)
    logits = ops.where(visible, logits, MASK_VALUE)
    return logits if bias is None else logits + bias


def attention_forward(q, k, v, masks, bias=None, drop=None, return_probs=False):
    """The forward of `fused_attention`: out (..., Lq, dh) in v's dtype, lse (..., Lq, 1) f32
    (and with `return_probs` the float32 probabilities (..., Lq, Lk) before dropout).
    `masks` from `attention_masks`; `drop` an optional dropout function on probabilities."""
    logits = _masked_logits(q, k, masks, bias)
    top = ops.max(logits, axis=-1, keepdims=True)  # finite: masked logits are finite
    probs = _softmax_rows(logits)
    out = ops.einsum("...qk,...kd->...qd", ops.cast(probs if drop is None else drop(probs),
                                                    v.dtype), v)
    # The largest probability is exp(top - lse): the log-normaliser without another pass of
    # exp over the scores (it is >= 1 / Lk, so its log is well conditioned).
    lse = top - ops.log(ops.max(probs, axis=-1, keepdims=True))
    return (out, lse, probs) if return_probs else (out, lse)


def _softmax_rows(logits):
    """Softmax over the last axis as one fused kernel: the rows are flattened first (oneDNN's
    softmax takes rank <= 5; the composition max, exp, sum, divide makes four passes over the
    score tensor)."""
    if logits.shape[-1] == 1:  # one key (a first decoding step): every weight is 1
        return ops.ones_like(logits)
    shape = ops.shape(logits)
    flat = ops.softmax(ops.reshape(logits, (-1, shape[-1])), axis=-1)
    return ops.reshape(flat, shape)


def attention_backward(q, k, v, out, lse, d_out, d_lse, masks, bias=None, drop=None,
                       probs=None):
    """The backward of `fused_attention`: (d_q, d_k, d_v) in the dtypes of q, k, v.
    lse (..., Lq, 1); d_lse (..., Lq) or None. The probabilities are recomputed from (q, k, lse)
    unless the forward's are passed as `probs`."""
    keep = (lambda t: t) if drop is None else drop
    scale = 1.0 / float(q.shape[-1]) ** 0.5
    d_out = ops.cast(d_out, "float32")
    d_out_v = d_out
    if probs is None:
        probs = ops.exp(_masked_logits(q, k, masks, bias) - lse)   # (..., Lq, Lk)
        # A row without a visible key has all logits at MASK_VALUE, and lse = MASK_VALUE +
        # log(Lk) rounds to MASK_VALUE in float32: its recomputed probabilities come out as 1
        # where the forward used 1 / Lk. Its logits get no gradient (`masks[2]`), so scaling
        # its row of d_out for d_v makes the gradient exact again.
        k_len = ops.cast(ops.shape(k)[-2], "float32")
        d_out_v = d_out * ops.where(lse > MASK_VALUE / 2, 1.0, 1.0 / k_len)
    d_v = ops.einsum("...qk,...qd->...kd", keep(probs), d_out_v)
    d_probs = keep(ops.einsum("...qd,...kd->...qk", d_out, ops.cast(v, "float32")))
    row = ops.sum(d_out * ops.cast(out, "float32"), axis=-1, keepdims=True)
    if d_lse is not None:
        row = row - ops.cast(d_lse, "float32")[..., None]
    d_logits = ops.where(masks[2], probs * (d_probs - row), 0.0)  # unscaled: scale d_q, d_k
    d_q = ops.einsum("...qk,...kd->...qd", d_logits, ops.cast(k, "float32")) * scale
    d_k = ops.einsum("...qk,...qd->...kd", d_logits, ops.cast(q, "float32")) * scale
    return ops.cast(d_q, q.dtype), ops.cast(d_k, k.dtype), ops.cast(d_v, v.dtype)


# Score tensors up to this many entries (128 MiB in float32) are kept from the forward pass to
# the backward pass of `fused_attention` instead of being recomputed.
KEEP_SCORES_MAX_ENTRIES = 2**25


def _small_scores(q, k):
    """Whether the (..., Lq, Lk) scores of q (..., Lq, dh), k (..., Lk, dh) have a static size
    of at most `KEEP_SCORES_MAX_ENTRIES` entries."""
    shape = [*q.shape[:-1], k.shape[-2]]
    return None not in shape and math.prod(shape) <= KEEP_SCORES_MAX_ENTRIES


def fused_attention(q, k, v, q_pos, k_pos, k_valid, causal, shared_qk, bias=None,
                    dropout_rate=0.0, seed=None, salt=0, segment_axis=None, segment=None,
                    window=None):
    """Masked softmax attention whose backward pass recomputes the scores.

    Same result as `attention_logits` -> `mask_logits` (+ `bias`) -> `softmax_attend`, but the
    gradient is written out (as in FlashAttention): the forward keeps only its inputs, `out` and
    the log-normaliser, and the backward recomputes the probabilities with one matmul and one
    exp. Nothing of size (..., Lq, Lk) lives from the forward to the backward pass, and the
    backward makes fewer full-size passes than automatic differentiation of the composition.
    Exception: scores of at most `KEEP_SCORES_MAX_ENTRIES` entries (static shapes, unsegmented)
    are kept for the backward instead of recomputed, which saves a matmul and the masking; in
    a reversible stack they live only from a block's recompute to its backward.

    Args:
      q: (..., Lq, dh); k: (..., Lk, dh) (already unit-normalised for shared QK);
      v: (..., Lk, dh).
      q_pos, k_pos, k_valid, causal, shared_qk: the masks (`visible_keys`).
      bias: optional float32 (..., Lq, Lk) added to the masked logits (not differentiated; the
        LSH duplicate-attention correction).
      dropout_rate, seed, salt: stateless attention dropout (the same mask in both passes).
      segment_axis, segment: with the TensorFlow backend, attend in pieces of `segment` entries
        of the batch axis `segment_axis` (one that every input has, e.g. the chunks of chunked
        attention), one piece after another in both passes (`tf_segmented_attention`): the
        (..., Lq, Lk) temporaries then exist for one piece at a time. Dropout masks are drawn
        per piece.
      window: None, or dict(before, after, axis) for chunked attention: k, v (..., nc, C, dh),
        k_pos, k_valid (..., nc, C) are per chunk (chunk axis `axis`, the one of q) and each
        chunk of queries sees `look_adjacent(..., before, after)` of them (keys beyond the ends
        invalid). Segmented, the windows are built piece by piece (none for the whole length).
    Returns:
      out (..., Lq, dh) in v's dtype and lse (..., Lq) float32.
    """
    if segment is not None and keras.backend.backend() == "tensorflow":
        from reformer_keras.layers import tf_segmented_attention  # pylint: disable=import-outside-toplevel
        if window is not None and window["axis"] != segment_axis:
            raise ValueError(f"window axis {window['axis']} must be the segment axis "
                             f"{segment_axis}")
        return tf_segmented_attention.segmented_attention(
            q, k, v, q_pos, k_pos, k_valid, causal, shared_qk, segment_axis, segment, bias,
            dropout_rate, seed, salt,
            window=None if window is None else (window["before"], window["after"]))
    if window is not None:
        k, v, k_pos = (look_adjacent(t, **window) for t in (k, v, k_pos))
        k_valid = look_adjacent(k_valid, **window, fill=False)
    masks = attention_masks(q_pos, k_pos, k_valid, causal, shared_qk)
    keep_probs = _small_scores(q, k)

    def drop(x):
        return dropout(x, dropout_rate, seed, salt)

    @custom_gradient
    def attend(q_, k_, v_):
        out, lse, *probs = attention_forward(q_, k_, v_, masks, bias, drop, keep_probs)

        def grad(*args, upstream=None):
            d_out, d_lse = upstream if upstream is not None else args
            return attention_backward(q_, k_, v_, out, lse, d_out, d_lse, masks, bias, drop,
                                      *probs)

        return (out, ops.squeeze(lse, -1)), grad

    return attend(q, k, v)
