"""Tokens/s of cached generation: ours against Hugging Face's `generate`, and against re-running
the whole prefix for every new token.

    python -m benchmarks.generation_speed       # 2048 tokens, 4 layers local/LSH, + HF peer
    python -m benchmarks.generation_speed --total_len=1024 --baseline_points=0 --peer=false

Cached (ours): `reformer_keras.generation.generate` inside one `tf.function` (prefill of the
prompt, then a `tf.while_loop` of single-token steps), sampling with top_k 40; with XLA under
`--jit_compile`. The first call (tracing, graph optimisation) is excluded: the second is timed.

Hugging Face (`--peer`, default on when `--peer_python` exists): `benchmarks/peer_generation.py`
in a child process with the PyTorch virtualenv: `ReformerModelWithLMHead.generate(prompt,
do_sample=True, top_k=40, use_cache=True, max_length=total_len)` of the same configuration
(attn_layers = attention_types, hidden_size d_model, heads, d_ff, chunk = bucket_size, buckets x
hash rounds, axial positions, vocabulary, no dropout) from the same prompt, 2 torch threads,
after one short warm-up generation; run once per `--peer_malloc` setting (glibc's defaults, and
tuned: MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736), the faster one is the best peer.
Weights are random on both sides (each seeded): a converted Hugging Face checkpoint uses the
`hf_local` / `hf_lsh` layers, whose generation re-runs the prefix (`recompute_decoding`), not the
cached step timed here. The peer's config.json is checked field by field against our model
(`check_same_configuration`). Only local and LSH layers exist in Hugging Face's Reformer.

Baseline (`--baseline_points` > 0): `model(prefix)` (a `tf.function` traced once for any length)
plus sampling of the last position, for every new token, timed at `--baseline_points` prefix
lengths spread evenly over [prompt_len, total_len); its total time is extrapolated as (mean time
per token) x (number of new tokens); the output says so.

Result line: `generation P+N tokens: ours X tok/s, HF (best: malloc M) Y tok/s, ours / HF R.RRx`;
`--output` appends one JSON row (stamped by `benchmarks.ledger`).
"""

import json
import os
import subprocess
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
flags.DEFINE_list("attention_types", ["local", "lsh"],
                  "Attention type per layer (cycled over num_layers).")
flags.DEFINE_integer("num_layers", 4, "Layers.")
flags.DEFINE_integer("bucket_size", 64, "LSH bucket size and local chunk size.")
flags.DEFINE_integer("num_buckets", 32, "LSH buckets (explicit, so that decoding hashes as "
                     "a forward pass does).")
flags.DEFINE_integer("num_hashes", 2, "LSH hash rounds.")
flags.DEFINE_integer("vocab_size", 256, "Vocabulary size.")
flags.DEFINE_integer("baseline_points", 12, "Prefix lengths at which the baseline is timed.")
flags.DEFINE_integer("seed", 0, "Model and sampling seed.")
flags.DEFINE_bool("axial", True, "Axial positions (a, b), a * b = total_len, as the peer; "
                  "false: a learned position table.")
flags.DEFINE_bool("peer", True, "Also time Hugging Face's generate (needs --peer_python).")
flags.DEFINE_string("peer_python", "/tmp/peers/venv/bin/python",
                    "Python of the PyTorch peer virtualenv (set-up in benchmarks/peers.py).")
flags.DEFINE_list("peer_malloc", ["default", "tuned"], "glibc malloc settings of the peer "
                  "runs: default and/or tuned (MALLOC_MMAP_MAX_=0 "
                  "MALLOC_TRIM_THRESHOLD_=68719476736).")
flags.DEFINE_bool("jit_compile", False, "Compile our generate function with XLA.")
flags.DEFINE_string("output", None, "JSON-lines ledger to append the result row to.")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MALLOC_TUNED = dict(MALLOC_MMAP_MAX_="0", MALLOC_TRIM_THRESHOLD_="68719476736")


def axial_shape(length):
    """(a, b), a * b == length: as `benchmarks/peer_generation.py` (no TensorFlow there)."""
    a = 2 ** (max(length.bit_length() - 1, 1) // 2)
    while length % a:
        a //= 2
    return a, length // a


def build_model():
    from reformer_keras.models import ReformerLM  # pylint: disable=import-outside-toplevel
    model = ReformerLM(
        vocab_size=FLAGS.vocab_size, d_model=FLAGS.d_model, num_layers=FLAGS.num_layers,
        num_heads=FLAGS.num_heads, d_ff=FLAGS.d_ff, attention_types=tuple(FLAGS.attention_types),
        bucket_size=FLAGS.bucket_size, num_buckets=FLAGS.num_buckets,
        num_hashes=FLAGS.num_hashes, max_len=FLAGS.total_len, seed=FLAGS.seed,
        axial_shape=axial_shape(FLAGS.total_len) if FLAGS.axial else None)
    model(np.zeros((1, FLAGS.bucket_size), "int32"))
    return model


def time_cached(model, prompt, new_tokens):
    """Returns (seconds of the first call: tracing and graph optimisation included, seconds of
    the second call, its CPU seconds (all threads), its output ids (B, P + N))."""
    from reformer_keras.generation import generate  # pylint: disable=import-outside-toplevel
    fn = tf.function(lambda p, s: generate(model, p, new_tokens, temperature=1.0, top_k=40,
                                           seed=s), jit_compile=FLAGS.jit_compile)
    seed = tf.constant([FLAGS.seed, 1], tf.int64)
    start = time.perf_counter()
    concrete = fn.get_concrete_function(tf.TensorSpec(prompt.shape, tf.int32),
                                        tf.TensorSpec((2,), tf.int64))
    np.asarray(concrete(tf.constant(prompt), seed))
    first = time.perf_counter() - start
    start, cpu = time.perf_counter(), time.process_time()
    ids = np.asarray(concrete(tf.constant(prompt), seed))
    return first, time.perf_counter() - start, time.process_time() - cpu, ids


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


def peer_skip_reason():
    """Why the Hugging Face peer cannot run with these flags (None: it can)."""
    if not FLAGS.peer:
        return "--peer=false"
    if not os.path.exists(FLAGS.peer_python):
        return (f"no peer Python at {FLAGS.peer_python} (set-up in benchmarks/peers.py)")
    if set(FLAGS.attention_types) - {"local", "lsh"}:
        return (f"Hugging Face's Reformer has local and lsh layers only, got attention_types "
                f"{FLAGS.attention_types}")
    if FLAGS.batch != 1 or not FLAGS.axial:
        return "the peer runs batch 1 with axial positions only"
    bad = sorted(set(FLAGS.peer_malloc) - {"default", "tuned"})
    if bad:
        raise app.UsageError(f"--peer_malloc takes default and/or tuned, got {bad}")
    return None


def run_peer(prompt_row, tuned, save_dir=None, greedy_tokens=0, timeout=1800):
    """One `benchmarks/peer_generation.py` run on prompt_row (P,) ints -> its JSON record."""
    command = [FLAGS.peer_python, os.path.join(REPO, "benchmarks", "peer_generation.py"),
               "--prompt=" + ",".join(str(int(t)) for t in prompt_row),
               f"--total_len={FLAGS.total_len}",
               f"--attention_types={','.join(FLAGS.attention_types)}",
               f"--num_layers={FLAGS.num_layers}", f"--d_model={FLAGS.d_model}",
               f"--num_heads={FLAGS.num_heads}", f"--d_ff={FLAGS.d_ff}",
               f"--chunk={FLAGS.bucket_size}", f"--num_buckets={FLAGS.num_buckets}",
               f"--num_hashes={FLAGS.num_hashes}", f"--vocab_size={FLAGS.vocab_size}",
               f"--seed={FLAGS.seed}", f"--greedy_tokens={greedy_tokens}"]
    if save_dir:
        command.append(f"--save_dir={save_dir}")
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update(MALLOC_TUNED if tuned else {})
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)
    lines = [l for l in proc.stdout.splitlines() if l.startswith("{")]
    if proc.returncode or not lines:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"peer run failed (exit {proc.returncode}): {tail}")
    record = json.loads(lines[-1])
    record["malloc"] = "tuned" if tuned else "default"
    return record


def check_same_configuration(model, peer_config):
    """Raises ValueError unless the peer's `ReformerConfig` (dict) has our model's sizes:
    vocabulary, width, layers and their attention types, heads and head size, d_ff, chunk
    lengths, buckets, hash rounds and axial positions. Returns the checked field names."""
    from reformer_keras.convert import hf_config  # pylint: disable=import-outside-toplevel
    theirs = hf_config.lm_arguments(dict(peer_config, model_type="reformer"))
    ours = model.backbone.config
    lsh = theirs["attention_options"].get("hf_lsh", {})
    local = theirs["attention_options"].get("hf_local", {})
    pairs = dict(
        vocab_size=(model.vocab_size, theirs["vocab_size"]),
        d_model=(ours.d_model, theirs["d_model"]),
        attention_types=([model.backbone.attention_types[i % len(model.backbone.attention_types)]
                          for i in range(ours.num_layers)],
                         [t.removeprefix("hf_") for t in theirs["attention_types"]]),
        num_heads=(ours.num_heads, theirs["num_heads"]),
        head_dim=(ours.head_dim or ours.d_model // ours.num_heads, theirs["head_dim"]),
        d_ff=(ours.d_ff, theirs["d_ff"]),
        ff_activation=(ours.ff_activation, theirs["ff_activation"]),
        lsh_chunk=(ours.bucket_size, lsh.get("chunk_length", ours.bucket_size)),
        local_chunk=(ours.local_chunk_size or ours.bucket_size,
                     local.get("chunk_length", ours.bucket_size)),
        num_buckets=(ours.num_buckets, lsh.get("num_buckets", ours.num_buckets)),
        num_hashes=(ours.num_hashes, lsh.get("num_hashes", ours.num_hashes)),
        axial_shape=(list(ours.axial_shape or []), theirs.get("axial_shape")))
    wrong = {k: v for k, v in pairs.items() if v[0] != v[1]}
    if wrong:
        raise ValueError(f"ours and the peer differ (ours, theirs): {wrong}")
    return sorted(pairs)


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
          f"{'axial ' + str(axial_shape(total)) if FLAGS.axial else 'learned'} positions, "
          f"{model.count_params()} params; batch {FLAGS.batch}, prompt {prompt_len} + "
          f"{new_tokens} new = {total} tokens", flush=True)
    row = dict(benchmark="generation_speed", load_avg_start=round(os.getloadavg()[0], 2),
               d_model=FLAGS.d_model, num_layers=FLAGS.num_layers,
               attention_types=types, num_heads=FLAGS.num_heads, d_ff=FLAGS.d_ff,
               chunk=FLAGS.bucket_size, num_buckets=FLAGS.num_buckets,
               num_hashes=FLAGS.num_hashes, vocab_size=FLAGS.vocab_size,
               axial=FLAGS.axial, batch=FLAGS.batch, prompt_len=prompt_len,
               new_tokens=new_tokens, top_k=40, jit_compile=FLAGS.jit_compile,
               tf_version=tf.__version__)

    first, seconds, cpu, ids = time_cached(model, prompt, new_tokens)
    cached_tps = FLAGS.batch * new_tokens / seconds
    row.update(ours_seconds=round(seconds, 3), ours_tokens_per_s=round(cached_tps, 1),
               ours_cpu_s=round(cpu, 3), ours_first_call_s=round(first, 1), ours_generated=int(ids.shape[1]) - prompt_len)
    print(f"ours    : {new_tokens} tokens generated in {seconds:.2f} s (prefill included) -> "
          f"{cached_tps:.1f} tokens/s, {1e3 * seconds / new_tokens:.2f} ms/token, "
          f"{1e3 * cpu / new_tokens:.2f} ms CPU/token [first call {first:.1f} s with tracing, excluded]", flush=True)

    reason = peer_skip_reason()
    if reason:
        print(f"HF peer skipped: {reason}", flush=True)
    else:
        peers = []
        for setting in FLAGS.peer_malloc:
            rec = run_peer(prompt[0], setting == "tuned")
            if len(rec["ids"]) != total or rec["ids"][:prompt_len] != prompt[0].tolist():
                raise RuntimeError(f"peer returned {len(rec['ids'])} ids, expected the "
                                   f"prompt + {new_tokens}")
            peers.append(rec)
            cpu_note = (f", {1e3 * rec['cpu_s'] / new_tokens:.2f} ms CPU/token"
                        if "cpu_s" in rec else "")
            print(f"HF      : malloc {rec['malloc']}: {new_tokens} tokens in "
                  f"{rec['seconds']:.2f} s -> {rec['tokens_per_s']:.1f} tokens/s{cpu_note}",
                  flush=True)
        fields = check_same_configuration(model, peers[0]["config"])
        print(f"same configuration on both sides (peer's config.json): {', '.join(fields)}",
              flush=True)
        best = max(peers, key=lambda r: r["tokens_per_s"])
        ratio = cached_tps / best["tokens_per_s"]
        row.update(hf=[dict(malloc=r["malloc"], seconds=r["seconds"], cpu_s=r.get("cpu_s"),
                            tokens_per_s=r["tokens_per_s"]) for r in peers],
                   hf_generated=len(best["ids"]) - prompt_len, hf_best_malloc=best["malloc"],
                   hf_best_tokens_per_s=best["tokens_per_s"],
                   ours_over_hf=round(ratio, 3), peer_versions=best["versions"])
        print(f"generation {prompt_len}+{new_tokens} tokens: ours {cached_tps:.1f} tok/s, HF "
              f"(best: malloc {best['malloc']}) {best['tokens_per_s']:.1f} tok/s, ours / HF "
              f"{ratio:.2f}x", flush=True)

    if FLAGS.baseline_points > 0:
        lengths = np.linspace(prompt_len, total - 1, FLAGS.baseline_points).round().astype(int)
        trace, times = time_rerun(model, ids, lengths)
        per_token = times.mean()
        rerun_tps = FLAGS.batch / per_token
        row.update(rerun_tokens_per_s=round(rerun_tps, 2), rerun_points=len(lengths))
        print(f"re-run  : model(prefix) timed at {len(lengths)} prefix lengths "
              f"{lengths.min()}..{lengths.max()} ({1e3 * times.min():.0f}..{1e3 * times.max():.0f}"
              f" ms each); mean {1e3 * per_token:.1f} ms/token EXTRAPOLATED to all {new_tokens} "
              f"tokens: {per_token * new_tokens:.1f} s -> {rerun_tps:.2f} tokens/s "
              f"[trace {trace:.1f} s, excluded]", flush=True)
        print(f"speed-up: {cached_tps / rerun_tps:.1f}x (cached vs re-run, tokens/s)",
              flush=True)
    row["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(f"load average (1 min): {row['load_avg_start']} at the start, "
          f"{row['load_avg_end']} at the end (2 would be this machine's cores busy)", flush=True)
    if FLAGS.output:
        from benchmarks import ledger  # pylint: disable=import-outside-toplevel
        ledger.append(FLAGS.output, [row])


if __name__ == "__main__":
    app.run(main)
