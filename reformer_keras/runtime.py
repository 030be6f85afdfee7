"""TensorFlow CPU runtime settings: applied only when asked, never on import.

`configure_cpu()` is the one call a program makes, first thing, before TensorFlow or Keras is
imported (the trainers, exporters, benchmarks and the test suite make it):

    from reformer_keras import runtime
    runtime.configure_cpu()       # before `import keras` / `import tensorflow`
    import keras

It sets two environment switches that TensorFlow reads once, and one graph-optimizer option:

  TF_ENABLE_ONEDNN_OPTS=1      oneDNN kernels for MatMul / BatchMatMul (the feed-forward and
                               attention matmuls) and fused element-wise ops. Read when
                               TensorFlow is imported.
  TF_CPU_ALLOCATOR_USE_BFC=true  a caching (BFC) allocator for host tensors instead of
                               malloc/free per tensor: glibc returns large buffers to the kernel,
                               and every step faults them in again. Read when TensorFlow creates
                               the CPU device.
  constant_folding=False       grappler's memory optimizer rewrites big gradient sums (AddN)
    (tf.config.optimizer)      into an accumulator initialised from `zeros_like(first input)`,
                               and constant folding then turns that `zeros_like` of static shape
                               into a constant that each traced function keeps materialised for
                               its whole life: (B, L, d_model) float32 tensors in a reversible
                               stack. Process-wide: it applies to every `tf.function` of the
                               process, the caller's own included.

Measured on the project's 2-core AMD EPYC machine (docs/design.md, 6 reversible LSH layers,
16,384 tokens, one Adam step): 17.6 s default, 13.3 s with BFC, 10.6 s with oneDNN. Constant
folding off, peer LM, `attn_chunks=8`, one process each: 6 layers at 16K tokens held 136 MiB after
a step with it, 62 without (peak RSS 1.63 vs 1.55 GiB); 1 layer at 64K held 334 vs 18 MiB;
training speed unchanged within run-to-run noise at 4K (docs/design.md).

Values the user set (environment variables, `tf.config.optimizer.set_experimental_options`) are
never overwritten; `REFORMER_KERAS_TF_DEFAULTS=0` makes `configure_cpu` (and
`apply_malloc_settings`) leave everything alone. When TensorFlow is already imported and an
environment switch is still unset, `configure_cpu` raises `RuntimeError` naming the switches
(they could no longer take effect) and changes nothing.

Opt-in extras, each its own call:

`apply_malloc_settings()` (Linux with glibc) sets two malloc options with `mallopt`, unless the
user set them in the environment (`MALLOC_MMAP_MAX_`, `MALLOC_TRIM_THRESHOLD_`):

  M_MMAP_MAX=0                 large blocks come from the heap, not from a fresh mmap each time
  M_TRIM_THRESHOLD=2 GiB - 1   freed memory stays in the process below that much free heap top.
  With the traced train step and FusedAdam the step does not fault with glibc's defaults (0
  minor faults per step after the second, 16K tokens), and these options do not change its
  time. Not the default because the 1M-token memory-mode step (TensorFlow's pool capped at
  13.5 GiB) failed with an out-of-memory error at 13.6 GiB of process memory under them, twice,
  where it passes with glibc's defaults (15.2 GiB).

`reserve_cpu_pool(gib)` (or the trainers' `--reserve_cpu_pool_gib`) gives TensorFlow's CPU
allocator pool one region of `gib` GiB of address space up front. The pool (BFC) otherwise grows
in regions of doubling size (2 MiB, 4, 8, ... 512 MiB), and a tensor cannot span two regions:
over a deep reversible stack's step the freed space is scattered over regions too small for the
next large tensor, so the pool touches fresh pages while it holds far less. A reserved region
costs resident memory only for the pages used, plus the allocator's bookkeeping (1/32 of the
region: 48 MiB for 1.5 GiB). Peer LM at 16K tokens (docs/benchmarks.md): the 12-layer process
peaks at 1.80-1.85 GiB with 1.5 GiB reserved against 1.97-1.99 without, the 2-layer one at
1.66-1.72 against 1.63-1.65. Reserving less than the step's pool peak plus slack (1.0 GiB here)
does not help.

See docs/runtime.md.
"""

import ctypes
import os
import sys
import warnings

CPU_SETTINGS = {"TF_ENABLE_ONEDNN_OPTS": "1", "TF_CPU_ALLOCATOR_USE_BFC": "true"}
GRAPH_SETTINGS = {"constant_folding": False}
MALLOC_SETTINGS = {"M_MMAP_MAX": 0, "M_TRIM_THRESHOLD": 2**31 - 1}
# glibc's mallopt parameter numbers (malloc.h) and the environment variables that set the same.
_MALLOPT = {"M_TRIM_THRESHOLD": (-1, "MALLOC_TRIM_THRESHOLD_"),
            "M_MMAP_MAX": (-4, "MALLOC_MMAP_MAX_")}


def _opted_out():
    return os.environ.get("REFORMER_KERAS_TF_DEFAULTS", "1") == "0"


def configure_cpu(graph=True):
    """Applies `CPU_SETTINGS` (environment) and `GRAPH_SETTINGS` (grappler) where not yet set.

    Call it once, before TensorFlow or Keras is imported; with `graph` (the default) it imports
    TensorFlow itself after setting the environment and applies `GRAPH_SETTINGS`; with
    `graph=False` it only sets the environment (TensorFlow stays unimported: front ends that
    validate their flags first call `apply_graph_settings()` once TensorFlow is needed). Returns a dict of what this call set (environment names and graph
    option names to values); {} with `REFORMER_KERAS_TF_DEFAULTS=0`. Calling it again is a no-op.

    Raises:
      RuntimeError: TensorFlow was imported before this call and a switch of `CPU_SETTINGS` is
        not in the environment (TensorFlow has read it already). Nothing is changed then.
    """
    if _opted_out():
        return {}
    missing = {k: v for k, v in CPU_SETTINGS.items() if k not in os.environ}
    if missing and "tensorflow" in sys.modules:
        switches = " ".join(f"{k}={v}" for k, v in missing.items())
        raise RuntimeError(
            f"reformer_keras.runtime.configure_cpu() was called after TensorFlow was imported, so "
            f"{switches} can no longer take effect: call it before importing TensorFlow or "
            f"Keras, or export {switches} before starting Python.")
    os.environ.update(missing)
    return {**missing, **(apply_graph_settings() if graph else {})}


def apply_graph_settings(settings=None):
    """Sets TensorFlow graph-optimizer options (default `GRAPH_SETTINGS`) the user has not set.

    Returns the dict of options this call set. Options already set in this process
    (`tf.config.optimizer.set_experimental_options`) are left as they are. Imports TensorFlow.
    """
    if _opted_out():
        return {}
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    already = tf.config.optimizer.get_experimental_options()
    applied = {k: v for k, v in (settings or GRAPH_SETTINGS).items() if k not in already}
    if applied:
        tf.config.optimizer.set_experimental_options(applied)
    return applied


def _glibc():
    """The C library of this process if it is glibc, else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # pylint: disable=pointless-statement  (glibc only)
        return libc
    except (OSError, AttributeError):
        return None


def apply_malloc_settings(settings=None):
    """Sets glibc malloc options (default `MALLOC_SETTINGS`) with `mallopt`, except those the
    user set through their environment variables. Returns the dict of options this call set
    (empty off glibc or with `REFORMER_KERAS_TF_DEFAULTS=0`)."""
    libc = None if _opted_out() else _glibc()
    if libc is None:
        return {}
    applied = {}
    for name, value in (settings or MALLOC_SETTINGS).items():
        param, env_name = _MALLOPT[name]
        if env_name not in os.environ and libc.mallopt(param, value) == 1:
            applied[name] = value
    return applied


def reserve_cpu_pool(gib):
    """Reserves `gib` GiB (a number > 0) in TensorFlow's CPU allocator pool as one region.

    Allocates an uninitialised float32 tensor of that size (no page is touched) and frees it;
    the pool keeps the region, and later tensors are carved from it. Resets the pool's peak
    statistics afterwards (`tf.config.experimental.get_memory_info("CPU:0")`). Returns True, or
    False with a warning when the BFC pool is switched off (`TF_CPU_ALLOCATOR_USE_BFC` false
    or 0): malloc returns a freed block to the system, so there is nothing to reserve.
    """
    if isinstance(gib, bool) or not isinstance(gib, (int, float)) or not 0 < gib < 2**20:
        raise ValueError(f"`gib` must be a number of GiB > 0, got {gib!r}.")
    if os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "").strip().lower() in ("false", "0"):
        warnings.warn("reserve_cpu_pool: TensorFlow's CPU allocator is malloc, not the BFC pool "
                      "(TF_CPU_ALLOCATOR_USE_BFC=false), so nothing was reserved.",
                      RuntimeWarning, stacklevel=2)
        return False
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    row = 2**20  # floats per row: Empty's shape is int32, so a region over 8 GiB takes rows
    rows = -(-int(gib * 2**30) // (4 * row))
    try:
        with tf.device("/CPU:0"):
            tensor = tf.raw_ops.Empty(shape=[rows, row], dtype=tf.float32, init=False)
    except tf.errors.ResourceExhaustedError as err:
        raise MemoryError(f"reserve_cpu_pool: could not reserve {gib} GiB in TensorFlow's CPU "
                          f"pool (its cap, TF_CPU_BFC_MEM_LIMIT_IN_MB, or the system's "
                          f"address space): {err.message.splitlines()[0]}") from None
    del tensor
    tf.config.experimental.reset_memory_stats("CPU:0")
    return True


def apply_memory_plan(plan):
    """Applies a `memory_planner.Plan`'s runtime settings in this process: the pool cap
    (`TF_CPU_BFC_MEM_LIMIT_IN_MB`, only if neither the user nor an earlier call set it and
    TensorFlow has not created its CPU device yet, when it would be ignored) and the pool
    reservation (`reserve_cpu_pool`; skipped, with `reserve_cpu_pool`'s warning, without the
    BFC pool). Returns the dict of what was applied."""
    applied = {}
    cap = plan.env()
    if cap and "TF_CPU_BFC_MEM_LIMIT_IN_MB" not in os.environ and not _tf_device_created():
        os.environ.update(cap)
        applied.update(cap)
    if plan.reserve_pool_gib and reserve_cpu_pool(plan.reserve_pool_gib):
        applied["reserve_pool_gib"] = plan.reserve_pool_gib
    return applied


def _tf_device_created():
    """Whether TensorFlow's eager context (and with it the CPU device) exists already."""
    if "tensorflow" not in sys.modules:
        return False
    from tensorflow.python.eager import context  # pylint: disable=import-outside-toplevel,g-direct-tensorflow-import
    return context.context()._context_handle is not None  # pylint: disable=protected-access
