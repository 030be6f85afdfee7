"""TensorFlow CPU runtime settings, applied when `reformer_keras` is imported.

TensorFlow reads two switches from the environment that change Reformer training speed on x86
CPUs a lot, and are off by default on AMD CPUs:

  TF_ENABLE_ONEDNN_OPTS=1      oneDNN kernels for MatMul / BatchMatMul (the feed-forward and
                               attention matmuls) and fused element-wise ops.
  TF_CPU_ALLOCATOR_USE_BFC=true  a caching (BFC) allocator for host tensors instead of
                               malloc/free per tensor: glibc returns large buffers to the kernel,
                               and every step faults them in again.

Measured on the project's 2-core AMD EPYC machine (docs/benchmarks.md, 6 reversible LSH layers,
16,384 tokens, one Adam step): 17.6 s default, 13.3 s with BFC, 10.6 s with oneDNN.

TensorFlow reads the oneDNN switch when it is imported and the allocator switch when it first
creates the CPU device, so they only take effect if `reformer_keras` is imported before
TensorFlow (or Keras). Values already in the environment are never overwritten: set
`TF_ENABLE_ONEDNN_OPTS=0` or `TF_CPU_ALLOCATOR_USE_BFC=false` to opt out, or
`REFORMER_KERAS_TF_DEFAULTS=0` to leave the environment alone entirely.

One graph-optimizer option is set when `reformer_keras.layers` is first imported (TensorFlow
backend), unless the user set it before or opted out with `REFORMER_KERAS_TF_DEFAULTS=0`:

  constant_folding=False       grappler's memory optimizer rewrites big gradient sums (AddN)
                               into an accumulator initialised from `zeros_like(first input)`,
                               and constant folding then turns that `zeros_like` of static shape
                               into a constant that each traced function keeps materialised for
                               its whole life. For a reversible stack these are (B, L, d_model)
                               float32 tensors. Peer LM, `attn_chunks=8`, chunked feed-forward
                               backward, one process each: 6 layers at 16K tokens held 136 MiB
                               after a step with it, 62 without (peak RSS 1.63 vs 1.55 GiB); 1
                               layer at 64K held 334 vs 18 MiB (allocator peak 1,685 vs 1,439 MiB).
                               Training speed unchanged within run-to-run noise at 4K
                               (docs/benchmarks.md).
"""

import os
import sys
import warnings

CPU_SETTINGS = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPU_ALLOCATOR_USE_BFC": "true"}
GRAPH_SETTINGS = {"constant_folding": False}


def _opted_out():
    return os.environ.get("REFORMER_KERAS_TF_DEFAULTS", "1") == "0"


def apply_cpu_settings(settings=None):
    """Sets `settings` (default `CPU_SETTINGS`) in `os.environ` where not already set.

    Returns the dict of variables this call set. Warns when TensorFlow was imported first
    (the settings may then not take effect in this process; child processes still inherit them).
    """
    if _opted_out():
        return {}
    applied = {}
    for name, value in (settings or CPU_SETTINGS).items():
        if name not in os.environ:
            os.environ[name] = value
            applied[name] = value
    if applied and "tensorflow" in sys.modules:
        warnings.warn(
            "reformer_keras was imported after TensorFlow, so TensorFlow may not use "
            f"{', '.join(f'{k}={v}' for k, v in applied.items())} in this process (about 1.6x "
            "slower training on CPU). Import reformer_keras first, or set these environment "
            "variables before starting Python.", RuntimeWarning, stacklevel=3)
    return applied


def apply_graph_settings(settings=None):
    """Sets TensorFlow graph-optimizer options (default `GRAPH_SETTINGS`) the user has not set.

    Returns the dict of options this call set. Options already set in this process
    (`tf.config.optimizer.set_experimental_options`) are left as they are.
    """
    if _opted_out():
        return {}
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    already = tf.config.optimizer.get_experimental_options()
    applied = {k: v for k, v in (settings or GRAPH_SETTINGS).items() if k not in already}
    if applied:
        tf.config.optimizer.set_experimental_options(applied)
    return applied
