"""Tokens/s of cached generation vs re-running the whole prefix for every new token.

    python -m benchmarks.generation_speed                    # 2048 tokens, 4 mixed layers
    python -m benchmarks.generation_speed --total_len=1024 --baseline_points=8

Cached: `reformer_keras.generation.generate` inside one `tf.function` (prefill of the prompt,
then a `tf.while_loop` of single-token steps). Baseline: `model(prefix)` (a `tf.function` traced
once for any length) plus sampling of the last position, for every new token. The baseline is
measured at `--baseline_points` prefix lengths spread evenly over [prompt_len, total_len) and its
total time extrapolated as (mean time per token) x (number of new tokens); the output says so.
Tracing time is excluded from both and printed separately.
"""

import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from reformer_keras import runtime  # noqa: E402

runtime.configure_cpu()  # before TensorFlow loads

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("total_len", 2048, "Prompt + generated tokens.")
flags.DEFINE_integer("prompt_len", 128, "Prompt tokens (processed by one prefill pass).")
flags.DEFINE_integer("batch", 1, "Sequences generated in parallel.")
flags.DEFINE_integer("d_model", 128, "Model width.")
flags.DEFINE_integer("num_heads", 4, "Attention heads.")
flags.DEFINE_integer("d_ff", 256, "Feed-forward width.")
flags.DEFINE_list("attention_types", ["local", "lsh", "full", "lsh"],
                  "Attention type per layer (cycled over num_layers).")
flags.DEFINE_integer("num_layers", 4, "Layers.")
flags.DEFINE_integer("bucket_size", 64, "LSH bucket size and local chunk size.")
flags.DEFINE_integer("num_buckets", 32, "LSH buckets (explicit, so that decoding hashes as "
                     "a forward pass does).")
flags.DEFINE_integer("num_hashes", 2, "LSH hash rounds.")
flags.DEFINE_integer("vocab_size", 256, "Vocabulary size.")
flags.DEFINE_integer("baseline_points", 12, "Prefix lengths at which the baseline is timed.")
flags.DEFINE_integer("seed", 0, "Model and sampling seed.")


def build_model():
    from reformer_keras.models import ReformerLM  # pylint: disable=import-outside-toplevel
    model = ReformerLM(
        vocab_size=FLAGS.vocab_size, d_model=FLAGS.d_model, num_layers=FLAGS.num_layers,
        num_heads=FLAGS.num_heads, d_ff=FLAGS.d_ff, attention_types=tuple(FLAGS.attention_types),
        bucket_size=FLAGS.bucket_size, num_buckets=FLAGS.num_buckets,
        num_hashes=FLAGS.num_hashes, max_len=FLAGS.total_len, seed=FLAGS.seed)
    model(np.zeros((1, FLAGS.bucket_size), "int32"))
    return model


def time_cached(model, prompt, new_tokens):
    """Returns (trace seconds, run seconds, output ids)."""
    from reformer_keras.generation import generate  # pylint: disable=import-outside-toplevel
    fn = tf.function(lambda p, s: generate(model, p, new_tokens, temperature=1.0, top_k=40,
                                           seed=s))
    seed = tf.constant([FLAGS.seed, 1], tf.int64)
    start = time.perf_counter()
    concrete = fn.get_concrete_function(tf.TensorSpec(prompt.shape, tf.int32),
                                        tf.TensorSpec((2,), tf.int64))
    trace = time.perf_counter() - start
    start = time.perf_counter()
    ids = concrete(tf.constant(prompt), seed)
    ids = np.asarray(ids)
    return trace, time.perf_counter() - start, ids


def time_rerun(model, ids, lengths):
    """Seconds per new token of the uncached loop at each prefix length in `lengths`."""
    @tf.function(input_signature=[tf.TensorSpec((ids.shape[0], None), tf.int32)])
    def next_token(prefix):
        logits = model(prefix)[:, -1]
        return tf.random.categorical(logits, 1, dtype=tf.int32)[:, 0]

    start = time.perf_counter()
    next_token(tf.constant(ids[:, :lengths[0]]))  # trace (and warm up)
    trace = time.perf_counter() - start
    times = []
    for length in lengths:
        prefix = tf.constant(ids[:, :length])
        start = time.perf_counter()
        np.asarray(next_token(prefix))
        times.append(time.perf_counter() - start)
    return trace, np.asarray(times)


def main(argv):
    del argv
    total, prompt_len = FLAGS.total_len, FLAGS.prompt_len
    new_tokens = total - prompt_len
    model = build_model()
    rng = np.random.default_rng(FLAGS.seed)
    prompt = rng.integers(0, FLAGS.vocab_size, size=(FLAGS.batch, prompt_len)).astype("int32")
    types = [FLAGS.attention_types[i % len(FLAGS.attention_types)]
             for i in range(FLAGS.num_layers)]
    print(f"model: d_model {FLAGS.d_model}, {FLAGS.num_layers} layers {types}, heads "
          f"{FLAGS.num_heads}, d_ff {FLAGS.d_ff}, bucket/chunk {FLAGS.bucket_size}, "
          f"{FLAGS.num_buckets} buckets x {FLAGS.num_hashes} rounds, vocab {FLAGS.vocab_size}, "
          f"{model.count_params()} params; batch {FLAGS.batch}, prompt {prompt_len} + "
          f"{new_tokens} new = {total} tokens", flush=True)

    trace, seconds, ids = time_cached(model, prompt, new_tokens)
    cached_tps = FLAGS.batch * new_tokens / seconds
    print(f"cached  : {new_tokens} tokens generated in {seconds:.2f} s (prefill included) -> "
          f"{cached_tps:.1f} tokens/s, {1e3 * seconds / new_tokens:.2f} ms/token "
          f"[trace {trace:.1f} s, excluded]", flush=True)

    lengths = np.linspace(prompt_len, total - 1, FLAGS.baseline_points).round().astype(int)
    trace, times = time_rerun(model, ids, lengths)
    per_token = times.mean()
    rerun_tps = FLAGS.batch / per_token
    print(f"re-run  : model(prefix) timed at {len(lengths)} prefix lengths "
          f"{lengths.min()}..{lengths.max()} ({1e3 * times.min():.0f}..{1e3 * times.max():.0f} "
          f"ms each); mean {1e3 * per_token:.1f} ms/token EXTRAPOLATED to all {new_tokens} "
          f"tokens: {per_token * new_tokens:.1f} s -> {rerun_tps:.2f} tokens/s "
          f"[trace {trace:.1f} s, excluded]", flush=True)
    print(f"speed-up: {cached_tps / rerun_tps:.1f}x (cached vs re-run, tokens/s)", flush=True)


if __name__ == "__main__":
    app.run(main)
