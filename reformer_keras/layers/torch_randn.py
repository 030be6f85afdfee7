"""PyTorch's CPU `torch.manual_seed(seed); torch.randn(shape)` for float32, in NumPy.

Hugging Face's Reformer draws its LSH rotations this way (with `hash_seed` set), so a converted
model reproduces its buckets without PyTorch. The generator is the 32-bit Mersenne Twister
(MT19937, seeded like NumPy's legacy `RandomState(seed)`); each float32 uniform is
`(word & 0xFFFFFF) * 2**-24`. Tensors of at least 16 values are filled in blocks of 16 by the
Box-Muller transform: u1 = 1 - a[j], u2 = a[j + 8], a[j] = r cos(2 pi u2), a[j + 8] =
r sin(2 pi u2) with r = sqrt(-2 log u1), j < 8; when the size is not a multiple of 16 the last
16 values are redrawn from 16 fresh uniforms and transformed again. Smaller tensors use double
precision Box-Muller per value (53-bit uniforms from two words, one cached sine per pair).
`tests/convert` checks it against PyTorch's own draws (recorded in the fixtures).
"""

import math

import numpy as np


def _words(seed, count):
    """`count` consecutive 32-bit outputs of MT19937 seeded with `seed` (uint64 array)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not (
            0 <= int(seed) < 2**32):
        raise ValueError(f"`seed` must be an int in [0, 2**32), got {seed!r}.")
    state = np.random.RandomState(int(seed)).get_state(legacy=False)
    bit_generator = np.random.MT19937()
    bit_generator.state = state
    return bit_generator.random_raw(count)


def _normal_fill(uniform):
    """Box-Muller on blocks of 16 float32 uniforms (in place); len(uniform) % 16 == 0."""
    blocks = uniform.reshape(-1, 16)
    u1 = np.float32(1.0) - blocks[:, :8]
    u2 = blocks[:, 8:]
    radius = np.sqrt(np.float32(-2.0) * np.log(u1))
    theta = np.float32(2.0 * math.pi) * u2
    return np.concatenate([radius * np.cos(theta), radius * np.sin(theta)], axis=1).reshape(-1)


def randn(seed, shape):
    """float32 array of `shape`, equal to `torch.manual_seed(seed); torch.randn(shape)` on CPU."""
    shape = tuple(int(s) for s in shape)
    size = math.prod(shape)
    if size >= 16:
        extra = 16 if size % 16 else 0
        words = _words(seed, size + extra)
        uniform = ((words[:size] & 0xFFFFFF).astype(np.float32) * np.float32(2.0**-24))
        out = np.empty(size, np.float32)
        whole = size - size % 16
        out[:whole] = _normal_fill(uniform[:whole])
        if extra:
            tail = (words[size:] & 0xFFFFFF).astype(np.float32) * np.float32(2.0**-24)
            out[size - 16:] = _normal_fill(tail)
        return out.reshape(shape)
    words = _words(seed, 4 * size + 4).astype(np.uint64)
    out, cached, w = [], None, 0
    for _ in range(size):
        if cached is not None:
            out.append(cached)
            cached = None
            continue
        pair = []
        for _ in range(2):
            bits = (words[w] << np.uint64(32)) | words[w + 1]
            w += 2
            pair.append(float(bits & np.uint64((1 << 53) - 1)) * 2.0**-53)
        u1, u2 = pair
        radius = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        cached = radius * math.sin(theta)
        out.append(radius * math.cos(theta))
    return np.asarray(out, np.float32).reshape(shape)
