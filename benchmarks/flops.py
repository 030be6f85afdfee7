"""Analytic FLOPs of a `ReformerLM` step, and this machine's dense float32 matmul rate.

    python -m benchmarks.flops --seq_len=16384 --num_layers=6 --attention=lsh   # the breakdown
    python -m benchmarks.flops --matmul                                         # GFLOP/s, JSON

Conventions (those of "model FLOPs utilisation"):
  * A FLOP is one multiply or one add: a (M, K) @ (K, N) product costs 2 M K N. Only matrix
    products are counted (projections, attention scores and weighted values, LSH hash rotations,
    feed-forward, logits); element-wise work, softmax, LayerNorm, masks, sorts and gathers are
    not (they are bandwidth-bound and a few % of the products at these sizes).
  * Embedding lookups are gathers: 0 FLOPs. The LM head reads both reversible streams
    (2 * d_model -> vocab).
  * Full attention counts all L x L scores, causal or not: the implementation computes the
    masked half too (it materialises (B, H, L, L) logits). Local attention: each query against
    its chunk and `num_chunks_before` chunks (W = 2 chunks of C). LSH: per hash round, each query
    against its sorted chunk and the previous one (2C keys), plus the hash rotation
    (dh x num_buckets/2 per head, round and factor). Lengths are padded to a multiple of the
    chunk as the layers do.
  * Training = 3 x forward (forward + backward, the backward costing twice the forward).
    Reversible layers recompute each block's forward during the backward: that is NOT a model
    FLOP; `train_hardware` adds it (4 x the stack's forward + 3 x the head's).
"""

import json
import math
import time

from absl import app, flags

FLAGS = flags.FLAGS


def _define_flags():  # only when run as a script: other benchmarks import this module
    flags.DEFINE_boolean("matmul", False, "Measure the float32 matmul rate; print a JSON line.")
    flags.DEFINE_integer("repeats", 5, "--matmul: timed repetitions per shape (best is kept).")
    flags.DEFINE_integer("seq_len", 16384, "Tokens (breakdown mode).")
    flags.DEFINE_integer("num_layers", 6, "Layers (breakdown mode).")
    flags.DEFINE_string("attention", "lsh", "lsh, local or full (breakdown mode).")

# (M, K, N) of the products timed by `matmul_rate`: square, and the shape of a feed-forward /
# projection layer at d_model 256 (16K tokens x 256 @ 256 x 1024).
MATMUL_SHAPES = ((2048, 2048, 2048), (16384, 256, 1024))

_DEFAULTS = dict(head_dim=None, attention_types=("lsh",), bucket_size=64, num_hashes=2,
                 num_buckets=None, local_chunk_size=None, ff_chunk_size=None, reversible=True,
                 num_chunks_before=1, num_chunks_after=0, stored_top_blocks=0)


def _pad(length, multiple):
    return -(-length // multiple) * multiple


def auto_num_buckets(padded_length, bucket_size):
    """Mirror of `reformer_keras.layers.lsh_attention.auto_num_buckets` (checked by a test)."""
    chunks = max(padded_length // bucket_size, 2)
    total = 2 ** int(round(math.log2(chunks)))
    if total <= 256:
        return (total,)
    first = 2 ** int(math.ceil(math.log2(total) / 2))
    return (first, total // first)


def attention_flops(kind, seq_len, heads, head_dim, cfg):
    """Forward FLOPs of one attention core (scores + weighted values, + hashing for LSH), batch 1.

    Returns dict(core=..., hashing=...). Projections are counted by `model_flops`.
    """
    window = cfg["num_chunks_before"] + 1 + cfg["num_chunks_after"]
    if kind == "full":
        return dict(core=2 * 2 * heads * seq_len * seq_len * head_dim, hashing=0)
    if kind == "local":
        chunk = cfg["local_chunk_size"] or cfg["bucket_size"]
        padded = _pad(seq_len, chunk)
        return dict(core=2 * 2 * heads * padded * window * chunk * head_dim, hashing=0)
    if kind == "lsh":
        chunk, rounds = cfg["bucket_size"], cfg["num_hashes"]
        padded = _pad(seq_len, chunk)
        factors = cfg["num_buckets"]
        if factors is None:
            factors = auto_num_buckets(padded, chunk)
        elif isinstance(factors, int):
            factors = (factors,)
        rotated = sum(f // 2 for f in factors if f != 1)  # rotation width per round
        return dict(core=rounds * 2 * 2 * heads * padded * window * chunk * head_dim,
                    hashing=2 * heads * padded * head_dim * rounds * rotated)
    raise ValueError(f"unknown attention type {kind!r}")


def model_flops(config, seq_len, batch=1):
    """FLOPs of a causal `ReformerLM` on (batch, seq_len) tokens.

    Args:
      config: dict with vocab_size, d_model, num_layers, num_heads, d_ff and optionally the
        other `ReformerLM` arguments (attention_types, bucket_size, num_hashes, num_buckets,
        local_chunk_size, ff_chunk_size, head_dim, reversible); e.g. `model.get_config()` or
        `dict(common.PEER_CONFIG, num_layers=6, attention_types=("lsh",))`.
      seq_len: tokens per sequence L.
    Returns: dict of floats: per-part forward FLOPs (`projections`, `attention`, `hashing`,
      `feed_forward`, `logits`), `forward`, `forward_stack` (the reversible stack only),
      `train_model` (3 x forward) and `train_hardware` (+1 x the forward of every block
      recomputed when reversible: all but the `stored_top_blocks` top ones).
    """
    cfg = dict(_DEFAULTS, **config)
    d, heads, ff = cfg["d_model"], cfg["num_heads"], cfg["d_ff"]
    dh = cfg["head_dim"] or d // heads
    kinds = cfg["attention_types"]
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    parts = dict(projections=0, attention=0, hashing=0, feed_forward=0, logits=0)
    recomputed = 0  # forward FLOPs of the blocks the reversible backward recomputes
    ff_len = seq_len if cfg["ff_chunk_size"] is None else _pad(seq_len, cfg["ff_chunk_size"])
    for i in range(cfg["num_layers"]):
        kind = kinds[i % len(kinds)]
        num_proj = 2 if kind == "lsh" else 3  # LSH shares the query / key projection
        parts["projections"] += (num_proj + 1) * 2 * seq_len * d * heads * dh
        att = attention_flops(kind, seq_len, heads, dh, cfg)
        parts["attention"] += att["core"]
        parts["hashing"] += att["hashing"]
        parts["feed_forward"] += 2 * 2 * ff_len * d * ff
        if i == cfg["num_layers"] - cfg["stored_top_blocks"] - 1:
            recomputed = sum(parts.values())
    parts["logits"] = 2 * seq_len * 2 * d * cfg["vocab_size"]
    out = {k: float(v * batch) for k, v in parts.items()}
    out["forward"] = sum(out.values())
    out["forward_stack"] = out["forward"] - out["logits"]
    out["train_model"] = 3 * out["forward"]
    out["train_hardware"] = out["train_model"] + (recomputed * batch if cfg["reversible"] else 0)
    return out


def matmul_rate(repeats=5):
    """Best-of-`repeats` float32 GFLOP/s of `tf.linalg.matmul` for each of `MATMUL_SHAPES`.

    Returns dict(shapes={"MxKxN": GFLOP/s}, best_gflops=max, threads=TF intra-op threads).
    Each timing covers 4 independent products inside one `tf.function` (dispatch amortised).
    """
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    rates = {}
    for m, k, n in MATMUL_SHAPES:
        a = tf.random.normal((m, k), seed=1)
        bs = [tf.random.normal((k, n), seed=2 + i) for i in range(4)]

        @tf.function
        def four(a, bs):  # four independent products; one element of each is fetched
            return tf.stack([tf.linalg.matmul(a, b)[0, 0] for b in bs])

        four(a, bs).numpy()  # trace and warm up
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            four(a, bs).numpy()
            best = min(best, time.perf_counter() - start)
        rates[f"{m}x{k}x{n}"] = round(4 * 2 * m * k * n / best / 1e9, 1)
    return dict(shapes=rates, best_gflops=max(rates.values()),
                threads=tf.config.threading.get_intra_op_parallelism_threads())


def main(argv):
    del argv
    if FLAGS.matmul:
        print(json.dumps(dict(kind="matmul", status="ok", **matmul_rate(FLAGS.repeats))),
              flush=True)
        return
    from benchmarks.common import PEER_CONFIG  # pylint: disable=import-outside-toplevel
    config = dict(PEER_CONFIG, num_layers=FLAGS.num_layers, attention_types=(FLAGS.attention,))
    for key, value in model_flops(config, FLAGS.seq_len).items():
        print(f"{key:>15}: {value / 1e9:12.2f} GFLOP  ({value / FLAGS.seq_len / 1e6:.2f} "
              f"MFLOP/token)")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
