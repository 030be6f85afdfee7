"""Token sampling for generation: temperature, top-k, top-p (nucleus), stateless randomness.

All functions are graph-safe (no Python branching on tensors). Randomness is Gumbel-max over
`tf.random.stateless_uniform`, keyed by the seed folded with the absolute position of the token
being sampled, so the same seed gives the same tokens eagerly and inside `tf.function` (TF's
stateless kernels differ under XLA, so a `jit_compile=True` function samples differently). The
noise is drawn for the whole (B, V) batch at once, so a row's samples also depend on the batch
size and its row index.
"""

import math
import numbers

import numpy as np
import tensorflow as tf


def check_sampling_args(temperature, top_k, top_p):
    """Raises ValueError naming the bad argument. Returns (temperature float, top_k, top_p)."""
    if (isinstance(temperature, bool) or not isinstance(temperature, numbers.Real)
            or not math.isfinite(temperature) or temperature < 0):
        raise ValueError(f"`temperature` must be a finite number >= 0 (0 means greedy), got "
                         f"{temperature!r}.")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)
                              or top_k < 1):
        raise ValueError(f"`top_k` must be None or an integer >= 1, got {top_k!r}.")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real)
                              or not 0.0 < top_p <= 1.0):
        raise ValueError(f"`top_p` must be None or a number in (0, 1], got {top_p!r}.")
    return float(temperature), (None if top_k is None else int(top_k)), (
        None if top_p is None else float(top_p))


def make_seed(seed):
    """A stateless seed tensor (2,) int64 from None (a fresh random draw at each run, also
    inside a traced function), a non-negative int, or an int tensor / array of shape (2,)."""
    if seed is None:
        return tf.random.uniform([2], maxval=2**62, dtype=tf.int64)
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        if not 0 <= seed < 2**63:
            raise ValueError(f"`seed` must be in [0, 2**63), got {seed!r}.")
        return tf.constant([int(seed), 0], tf.int64)
    if isinstance(seed, (tf.Tensor, tf.Variable, np.ndarray)):
        is_int = (seed.dtype.is_integer if isinstance(seed.dtype, tf.DType)
                  else np.issubdtype(seed.dtype, np.integer))
        if not is_int or tuple(seed.shape) != (2,):
            raise ValueError(f"A tensor `seed` must be an integer tensor of shape (2,), got "
                             f"dtype {seed.dtype} and shape {tuple(seed.shape)}.")
        return tf.cast(seed, tf.int64)
    raise ValueError(f"`seed` must be None, an int, or an int tensor of shape (2,), got "
                     f"{seed!r}.")


def filter_logits(logits, top_k=None, top_p=None):
    """Sets to -inf the logits outside the top-k and outside the nucleus.

    Args:
      logits: (B, V) float32, already divided by the temperature.
      top_k: keep the k largest (ties at the k-th value are all kept).
      top_p: keep the smallest set of most likely tokens whose probability mass is >= top_p
        (the most likely token is always kept). Applied after top-k, on the renormalised
        distribution.
    Returns: (B, V) float32.
    """
    logits = tf.cast(logits, tf.float32)
    neg_inf = tf.constant(-math.inf, tf.float32)
    if top_k is not None:
        k = min(int(top_k), logits.shape[-1])
        kth = tf.math.top_k(logits, k=k).values[:, -1:]
        logits = tf.where(logits < kth, neg_inf, logits)
    if top_p is not None and top_p < 1.0:
        order = tf.argsort(logits, axis=-1, direction="DESCENDING", stable=True)
        sorted_logits = tf.gather(logits, order, batch_dims=1)
        probs = tf.nn.softmax(sorted_logits, axis=-1)
        mass_before = tf.cumsum(probs, axis=-1, exclusive=True)
        keep_sorted = mass_before < top_p                  # the first one is always kept
        keep = tf.gather(keep_sorted, tf.argsort(order, axis=-1), batch_dims=1)
        logits = tf.where(keep, logits, neg_inf)
    return logits


def sample_logits(logits, temperature, top_k, top_p, seed, position):
    """Draws one token per row.

    Args:
      logits: (B, V) float32 next-token logits.
      temperature: Python float; 0 is greedy (argmax, filters irrelevant).
      top_k, top_p: see `filter_logits`.
      seed: (2,) int64 stateless seed (`make_seed`).
      position: scalar int, the absolute position of the sampled token (folded into the seed).
    Returns: (B,) int32.
    """
    logits = tf.cast(logits, tf.float32)
    if temperature == 0.0:
        return tf.argmax(logits, axis=-1, output_type=tf.int32)
    logits = filter_logits(logits / temperature, top_k, top_p)
    step_seed = tf.random.experimental.stateless_fold_in(seed, tf.cast(position, tf.int64))
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed=step_seed,
                                          minval=np.finfo(np.float32).tiny, maxval=1.0)
    gumbel = -tf.math.log(-tf.math.log(uniform))
    return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)
