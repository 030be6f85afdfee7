"""`reformer_keras.runtime`: importing the package changes nothing in the process;
`configure_cpu()` turns on oneDNN and the BFC CPU allocator in TensorFlow and grappler's constant
folding off, never overrides what the user set, and refuses loudly when it comes too late."""

import functools
import os
import subprocess
import sys

import pytest

_PROBE = """
from reformer_keras import runtime
print(sorted(runtime.configure_cpu()))
from tensorflow.python.util import _pywrap_util_port as port
import os
import tensorflow as tf
print(port.IsMklEnabled(), os.environ["TF_CPU_ALLOCATOR_USE_BFC"],
      tf.config.optimizer.get_experimental_options().get("constant_folding", "unset"))
"""


def _run(code, check=True, **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("TF_ENABLE_ONEDNN_OPTS", "TF_CPU_ALLOCATOR_USE_BFC",
                          "REFORMER_KERAS_TF_DEFAULTS", "MALLOC_MMAP_MAX_",
                          "MALLOC_TRIM_THRESHOLD_")}
    proc = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True,
                          text=True, env=dict(clean, TF_CPP_MIN_LOG_LEVEL="3", **env),
                          timeout=300, check=check)
    return proc.stdout.split(), proc.stderr


# What a process that imports only TensorFlow sees: oneDNN as TensorFlow picks it on this CPU (on
# where it finds AVX-512 VNNI / BF16, off elsewhere), no allocator switch, no grappler option.
_STATE = """
import os
from tensorflow.python.util import _pywrap_util_port as port
import tensorflow as tf
print(port.IsMklEnabled(), os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset"),
      os.environ.get("TF_CPU_ALLOCATOR_USE_BFC", "unset"),
      tf.config.optimizer.get_experimental_options().get("constant_folding", "unset"))
"""


@functools.lru_cache(maxsize=None)
def _tf_only():
    return _run(_STATE)[0]


def test_importing_the_library_changes_nothing():
    """Importing every library package (layers, models, generation, training, export) leaves
    TensorFlow exactly as a process that imports only TensorFlow."""
    tf_only = _tf_only()
    ours, _ = _run("import reformer_keras, reformer_keras.layers, reformer_keras.models\n"
                   "import reformer_keras.generation, reformer_keras.training\n"
                   "import reformer_keras.export\n" + _STATE)
    assert ours == tf_only
    assert tf_only[1:] == ["unset", "unset", "unset"]


@pytest.mark.parametrize("env,expected", [
    ({}, ["['TF_CPU_ALLOCATOR_USE_BFC',", "'TF_ENABLE_ONEDNN_OPTS',", "'constant_folding']",
          "True", "true", "False"]),
    ({"TF_ENABLE_ONEDNN_OPTS": "0"}, ["['TF_CPU_ALLOCATOR_USE_BFC',", "'constant_folding']",
                                      "False", "true", "False"]),
    ({"TF_CPU_ALLOCATOR_USE_BFC": "false"}, ["['TF_ENABLE_ONEDNN_OPTS',", "'constant_folding']",
                                             "True", "false", "False"]),
])
def test_configure_cpu_reaches_tensorflow_unless_the_user_set_it(env, expected):
    out, _ = _run(_PROBE, **env)
    assert out == expected


def test_opt_out_leaves_the_environment_alone():
    tf_only = _tf_only()
    out, _ = _run("from reformer_keras import runtime\nprint(runtime.configure_cpu())\n" + _STATE,
                  REFORMER_KERAS_TF_DEFAULTS="0")
    assert out == ["{}"] + tf_only


def test_configure_cpu_after_tensorflow_raises_and_changes_nothing():
    out, err = _run("import tensorflow\nfrom reformer_keras import runtime\n"
                    "runtime.configure_cpu()", check=False)
    last = err.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: reformer_keras.runtime.configure_cpu() was called "
                           "after TensorFlow was imported"), err[-2000:]
    assert "TF_ENABLE_ONEDNN_OPTS=1 TF_CPU_ALLOCATOR_USE_BFC=true" in last
    out, _ = _run("import tensorflow\nfrom reformer_keras import runtime\ntry:\n"
                  "    runtime.configure_cpu()\nexcept RuntimeError:\n    pass\n" + _STATE)
    tf_only = _tf_only()
    assert out == tf_only
    # With the switches exported before Python started, calling it late is fine (graph option).
    out, _ = _run("import tensorflow\nfrom reformer_keras import runtime\n"
                  "print(sorted(runtime.configure_cpu()))",
                  TF_ENABLE_ONEDNN_OPTS="1", TF_CPU_ALLOCATOR_USE_BFC="true")
    assert out == ["['constant_folding']"]


_GRAPH_PROBE = """
import tensorflow as tf
{before}
from reformer_keras import runtime
runtime.configure_cpu()
runtime.configure_cpu()
print(tf.config.optimizer.get_experimental_options().get("constant_folding", "unset"))
"""


@pytest.mark.parametrize("before,expected", [
    ("", "False"),
    ("tf.config.optimizer.set_experimental_options({'constant_folding': True})", "True"),
])
def test_constant_folding_is_switched_off_unless_the_user_decided(before, expected):
    out, _ = _run(_GRAPH_PROBE.format(before=before), TF_ENABLE_ONEDNN_OPTS="1",
                  TF_CPU_ALLOCATOR_USE_BFC="true")
    assert out == [expected]


# A 256 MiB malloc: from the heap (the program break moves by at least that much) when mmap is
# off, from its own mapping otherwise. First after importing the package, then after
# `apply_malloc_settings` (printing what it set).
_MALLOC_PROBE = """
import ctypes
import reformer_keras
from reformer_keras import runtime
libc = ctypes.CDLL(None)
libc.sbrk.restype = libc.malloc.restype = ctypes.c_void_p
libc.sbrk.argtypes = [ctypes.c_long]
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
def on_heap():  # is a 256 MiB block served from the heap (brk) rather than its own mmap?
    before = libc.sbrk(0)
    block = libc.malloc(256 << 20)
    grown = libc.sbrk(0) - before >= 256 << 20
    libc.free(block)  # (a block left mapped could sit where the heap must grow)
    return grown
print(on_heap())
applied = runtime.apply_malloc_settings()
print(on_heap(), sorted(applied))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc options")
@pytest.mark.parametrize("env,expected", [
    ({}, ["False", "True", "['M_MMAP_MAX',", "'M_TRIM_THRESHOLD']"]),
    ({"MALLOC_MMAP_MAX_": "65536"}, ["False", "False", "['M_TRIM_THRESHOLD']"]),
    ({"REFORMER_KERAS_TF_DEFAULTS": "0"}, ["False", "False", "[]"]),
])
def test_malloc_options_only_when_asked(env, expected):
    """Importing the package leaves glibc's malloc alone; `apply_malloc_settings` turns its mmap
    for large blocks off (so freed buffers are reused instead of faulted in again), except
    where the user set the option in the environment or opted out."""
    out, _ = _run(_MALLOC_PROBE, **env)
    assert out == expected


_RESERVE_PROBE = """
import os, warnings
from reformer_keras import runtime
runtime.configure_cpu()
import tensorflow as tf
def rss():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**30
tf.zeros((4, 4)).numpy()  # the CPU device and its allocator exist
before = rss()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    done = runtime.reserve_cpu_pool(float(os.environ.get("PROBE_GIB", "1")))
print(done, len(caught), round(rss() - before, 3))
if done:
    x = tf.ones((1024, 1024))  # 4 MiB, carved from the reserved region
    info = tf.config.experimental.get_memory_info("CPU:0")
    print(info["current"], info["peak"])
"""


@pytest.mark.parametrize("gib", [1, 9])
def test_reserve_cpu_pool_takes_address_space_not_memory(gib):
    """One region of `gib` GiB in TensorFlow's CPU pool (9 GiB: more floats than an int32
    shape holds): resident memory grows by the allocator's bookkeeping only (1/32 of the
    region), and the pool's statistics are reset afterwards."""
    out, _ = _run(_RESERVE_PROBE, PROBE_GIB=str(gib))
    assert out[:2] == ["True", "0"], out
    assert 0.0 < float(out[2]) < 0.08 * gib, out  # not `gib` GiB
    current, peak = map(int, out[3:])             # reservation not counted as in use
    assert 2**22 <= current <= peak < 2**23


def test_reserve_cpu_pool_without_bfc_warns_and_bad_sizes_raise():
    out, _ = _run(_RESERVE_PROBE, TF_CPU_ALLOCATOR_USE_BFC="false")
    assert out[:2] == ["False", "1"]
    out, _ = _run(
        "from reformer_keras import runtime\nruntime.configure_cpu()\n"
        "for bad in (0, -1.5, True, '1', float('nan')):\n"
        "    try:\n        runtime.reserve_cpu_pool(bad)\n    except ValueError as e:\n"
        "        print('ValueError')\n"
        "try:\n    runtime.reserve_cpu_pool(0.5)\nexcept MemoryError as e:\n"
        "    print('MemoryError', 'TF_CPU_BFC_MEM_LIMIT_IN_MB' in str(e))\n",
        TF_CPU_BFC_MEM_LIMIT_IN_MB="100")
    assert out == ["ValueError"] * 5 + ["MemoryError", "True"]
