"""Autoregressive sampling for the generator tasks.

`sample_tokens` runs the cached `reformer_keras.generation.generate`; `use_cache=False` runs
`uncached_generate`, a reference loop that re-runs the model on the growing prefix (O(n)
forwards for n new tokens; tests compare the cached path with it).
"""

import numpy as np

from reformer_keras.input_checks import check_prompt  # noqa: F401  (the models' prompt check)


def sample_from_logits(logits, rng, temperature, top_k, top_p):
    """logits (B, V) float -> ids (B,) int32 (temperature 0 = greedy)."""
    logits = np.asarray(logits, np.float64)
    if temperature == 0:
        return logits.argmax(-1).astype(np.int32)
    logits = logits / temperature
    if top_k is not None:
        kth = np.sort(logits, axis=-1)[:, -int(top_k)][:, None]
        logits = np.where(logits < kth, -np.inf, logits)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    if top_p is not None:
        order = np.argsort(-probs, axis=-1)
        sorted_p = np.take_along_axis(probs, order, -1)
        keep_sorted = np.cumsum(sorted_p, -1) - sorted_p < top_p      # always keeps the top one
        keep = np.zeros_like(keep_sorted)
        np.put_along_axis(keep, order, keep_sorted, -1)
        probs = np.where(keep, probs, 0.0)
        probs /= probs.sum(-1, keepdims=True)
    return np.array([rng.choice(probs.shape[1], p=p) for p in probs], np.int32)


def uncached_generate(model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None,
                      top_p=None, seed=None):
    """Reference sampler: model(prefix)[:, -1] for each new token. Returns int32 (B, P + n)."""
    ids = np.asarray(prompt_ids, np.int32)
    rng = np.random.default_rng(seed)
    for _ in range(int(max_new_tokens)):
        logits = np.asarray(model(ids))[:, -1]
        ids = np.concatenate([ids, sample_from_logits(logits, rng, temperature, top_k,
                                                       top_p)[:, None]], axis=1)
    return ids


def sample_tokens(model, prompt_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
                  seed=None, use_cache=True):
    """int32 (B, P + max_new_tokens): cached `generation.generate`, or with `use_cache=False`
    the uncached loop (different random streams: the same seed gives different samples)."""
    if max_new_tokens < 0:
        raise ValueError(f"`max_new_tokens` must be >= 0, got {max_new_tokens}.")
    if temperature < 0:
        raise ValueError(f"`temperature` must be >= 0, got {temperature}.")
    if not use_cache:
        return uncached_generate(model, prompt_ids, max_new_tokens, temperature, top_k, top_p,
                                 seed)
    from reformer_keras.generation import generate  # pylint: disable=import-outside-toplevel
    out = generate(model, prompt_ids, max_new_tokens, temperature=temperature, top_k=top_k,
                   top_p=top_p, seed=seed)
    return np.asarray(out).astype(np.int32)
