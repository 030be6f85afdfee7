"""GFLOP/s of the matrix products a training step of the peer LM is made of, per form.

    python -m benchmarks.gemm_shapes                 # TensorFlow (oneDNN), this process's threads
    python -m benchmarks.gemm_shapes --threads=1 --torch_python=/tmp/peers/venv/bin/python

The same (M, K, N) product can run at very different rates depending on which operand is
transposed in memory. The rows are the feed-forward's products for a 128-token chunk and for a
whole 4K sequence (d_model 256, d_ff 1024): the forward against the kernel as stored (256, 1024)
and transposed (1024, 256), and the two weight gradients (x^T @ dh: the long axis is the
reduction), also as the library's feed-forward computes them (a 1x1-convolution filter
gradient, TensorFlow only). With `--torch_python`, the same products are timed with PyTorch in a
child process (the peers' library), for comparison on this machine. One JSON line per form and
library.
"""

import json
import subprocess
import sys
import time

from absl import app, flags

from reformer_keras import runtime

runtime.configure_cpu()  # oneDNN, the BFC CPU allocator: before TensorFlow loads
from benchmarks import ledger  # noqa: E402

FLAGS = flags.FLAGS

# name -> (M, K, N, transpose_a, transpose_b): C (M, N) = op(A) @ op(B).
FORMS = {
    "ff_inner_chunk (x @ W)": (128, 256, 1024, False, False),
    "ff_inner_chunk (x @ Wt^T)": (128, 256, 1024, False, True),
    "ff_inner_whole (x @ W)": (4096, 256, 1024, False, False),
    "ff_outer_chunk (h @ W2)": (128, 1024, 256, False, False),
    "ff_weight_grad (x^T @ dh)": (256, 4096, 1024, True, False),
    "ff_weight_grad (h^T @ dy)": (1024, 4096, 256, True, False),
    "projection (x @ Wqk)": (4096, 256, 256, False, False),
}

_TORCH_CHILD = r"""
import json, sys, time, torch
threads, repeats, forms = json.loads(sys.argv[1])
if threads: torch.set_num_threads(threads)
for name, (m, k, n, ta, tb) in forms.items():
    a = torch.randn(k, m) if ta else torch.randn(m, k)
    b = torch.randn(n, k) if tb else torch.randn(k, n)
    f = lambda: (a.t() if ta else a) @ (b.t() if tb else b)
    for _ in range(3): f()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(8): f()
        best = min(best, (time.perf_counter() - start) / 8)
    print(json.dumps(dict(library="torch " + torch.__version__, form=name, shape=[m, k, n],
                          gflops=round(2 * m * k * n / best / 1e9, 1))), flush=True)
"""


def _define_flags():
    flags.DEFINE_integer("threads", 0, "Intra-op threads (0: the library's default).")
    flags.DEFINE_integer("repeats", 5, "Timed repetitions per form (best kept), 8 products each.")
    flags.DEFINE_string("torch_python", "", "Python with torch: time the same forms there too.")
    flags.DEFINE_string("output", "", "Optional JSON-lines ledger to append the printed rows to.")


def _gflops(product, a, b, flops, repeats):
    """GFLOP/s of `product(a[i], b)` (flops each), best of `repeats` timings of 8 independent
    products (distinct inputs, so grappler cannot merge them) inside one tf.function."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    @tf.function
    def eight(a, b):
        return tf.stack([product(a[i], b)[0, 0] for i in range(8)])

    eight(a, b).numpy()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        eight(a, b).numpy()
        best = min(best, (time.perf_counter() - start) / 8)
    return round(flops / best / 1e9, 1)


def tf_rates(repeats=5, forms=None):
    """{form: GFLOP/s} with tf.linalg.matmul (`_gflops`)."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    rates = {}
    for name, (m, k, n, ta, tb) in (forms or FORMS).items():
        a = tf.random.normal((8,) + ((k, m) if ta else (m, k)), seed=1)
        b = tf.random.normal((n, k) if tb else (k, n), seed=2)
        product = lambda a, b, ta=ta, tb=tb: tf.linalg.matmul(a, b, transpose_a=ta,
                                                               transpose_b=tb)
        rates[name] = _gflops(product, a, b, 2 * m * k * n, repeats)
    return rates


FILTER_GRAD = " as conv filter grad"  # suffix of the forms `weight_gradient_rates` times


def weight_gradient_rates(repeats=5, forms=None):
    """{form + FILTER_GRAD: GFLOP/s} of the weight-gradient forms (transpose_a) computed the way
    the library's feed-forward does (`tf_feed_forward.weight_gradient`: a 1x1-convolution filter
    gradient), timed as `tf_rates` does."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from reformer_keras.layers import tf_feed_forward  # pylint: disable=import-outside-toplevel
    forms = forms or {k: v for k, v in FORMS.items() if v[3] and not v[4]}
    return {name + FILTER_GRAD: _gflops(tf_feed_forward.weight_gradient,
                                        tf.random.normal((8, k, m), seed=1),
                                        tf.random.normal((k, n), seed=2), 2 * m * k * n, repeats)
            for name, (m, k, n, _, _) in forms.items()}


def main(argv):
    del argv
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    if FLAGS.threads:
        tf.config.threading.set_intra_op_parallelism_threads(FLAGS.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    rates = dict(tf_rates(FLAGS.repeats), **weight_gradient_rates(FLAGS.repeats))
    rows = []
    for name, rate in rates.items():
        m, k, n, _, _ = FORMS[name.removesuffix(FILTER_GRAD)]
        rows.append(dict(library="tensorflow " + tf.__version__, form=name, shape=[m, k, n],
                         gflops=rate, threads=FLAGS.threads))
        print(json.dumps(rows[-1]), flush=True)
    if FLAGS.torch_python:
        proc = subprocess.run([FLAGS.torch_python, "-c", _TORCH_CHILD,
                               json.dumps([FLAGS.threads, FLAGS.repeats, FORMS])],
                              capture_output=True, text=True, check=False)
        sys.stdout.write(proc.stdout if proc.returncode == 0 else json.dumps(dict(
            library="torch", status="failed", error=proc.stderr.strip()[-300:])) + "\n")
        if proc.returncode == 0:
            rows += [dict(json.loads(line), threads=FLAGS.threads)
                     for line in proc.stdout.splitlines() if line.strip()]
    if FLAGS.output:
        ledger.append(FLAGS.output, rows)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
