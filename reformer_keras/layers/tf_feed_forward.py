"""TensorFlow-only pieces of `ChunkedFeedForward`'s fast path.

- `matmul_transposed`: the inner product against the kernel transposed to (d_ff, d_model).
  x (B, 128, 256) @ W (256, 1024) is a slow GEMM shape for this machine's oneDNN (36-40 GFLOP/s
  per core); against the transposed kernel the same product runs at 60-83 GFLOP/s
  (`docs/benchmarks.md`, session 8). `keras.ops.einsum` rewrites that subscript into an
  explicit transpose and a broadcast batch matmul, which loses most of the gain, hence tf.einsum.
- `tape_is_recording`: whether the layer is being run for a gradient. Then automatic
  differentiation of the chunk loop would stack every chunk's activations anyway, so the
  chunking bounds nothing; the layer runs the whole sequence at once instead (bigger GEMMs,
  and no while-loop gradient, which ran the loop's forward a second time).
"""

import tensorflow as tf
from tensorflow.python.eager import record  # pylint: disable=g-direct-tensorflow-import


def matmul_transposed(x, kernel_t):
    """x (B, L, d_in) @ kernel_t (d_out, d_in)^T -> (B, L, d_out)."""
    return tf.einsum("bld,fd->blf", x, kernel_t)


def tape_is_recording():
    """True while a gradient tape records (also while tracing a function under one)."""
    return record.could_possibly_record()
