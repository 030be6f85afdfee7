"""Seeds of initial weights: one independent stream per weight, derived from a layer's `seed`.

A Keras initializer given an int seed draws the same values at every call. Layers that pass
their one `seed` to several weights of the same shape therefore start with copies (q, k and v
projections equal, so a separate-QK attention layer began as shared-QK with values = keys), and
two tables of the same scale with different lengths share their first rows (a learned position
table started as the token table's first rows). `derive_seed` names each weight's stream
instead: a hash of (seed, name), so streams neither repeat nor overlap as `seed + i` offsets
between layers would.
"""

import hashlib

import keras


def derive_seed(seed, name):
    """int seed, weight name -> an int seed in [0, 2**31) for that weight; None -> None
    (unseeded, Keras draws a fresh seed)."""
    if seed is None:
        return None
    digest = hashlib.sha256(f"{int(seed)}/{name}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def glorot_uniform(seed, name):
    """Glorot-uniform initializer for weight `name` of a layer seeded with `seed`."""
    return keras.initializers.GlorotUniform(seed=derive_seed(seed, name))
