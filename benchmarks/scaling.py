"""Speed and memory scaling of `ReformerLM` (and the PyTorch peers) with length, depth, attention.

    python -m benchmarks.scaling --quick                   # a few minutes: 1K/4K, 2 layers
    python -m benchmarks.scaling --output=/tmp/scaling.jsonl            # the default sweep
    python -m benchmarks.scaling --grid=product --lengths=1024,4096 --depths=2,6 \
        --attention=lsh,full --modes=train,infer --reversible=true,false
    python -m benchmarks.scaling --malloc_tuned --jit_compile --output=/tmp/tuned.jsonl
    python -m benchmarks.scaling --plot_only=/tmp/scaling.jsonl       # tables, targets, plots
    python -m benchmarks.scaling --dry_run                     # list the configurations only
(on the shared machine, prefix runs with `flock /tmp/cpu.lock`).

Every configuration runs in a fresh process (`scaling_run.run_guarded`), batch 1, float32, the
peer configuration (`common.PEER_CONFIG`: byte LM, d_model 256, 4 heads, d_ff 1024 in chunks of
128, bucket 64, 2 hash rounds, axial positions). Modes:
  * train: one Adam step, `model.train_on_batch` on (1, L) random bytes (forward + backward +
    update; the library's FusedAdam, as the trainers use, or Keras's Adam with
    --optimizer=adam); tokens/s = L / median step seconds.
  * infer: `model(x, training=False)` inside a `tf.function` (all L logits); tokens/s likewise.
  * generate: cached sampling (`reformer_keras.generation.generate` in a `tf.function`, top-k
    40) of --gen_tokens tokens after a --gen_prompt-token prompt, with a cache sized for L
    tokens (`max_length=L`); tokens/s = new tokens / seconds (prefill included, tracing not).
Each process, ours and the peers alike, does --warmup_steps untimed steps (the first traces our
graph; the first ones grow the allocators' pools), then timed steps until --steps and
--min_time_s are both met (at most --max_steps); a step predicted (or seen in warm-up) to take
longer than --long_step_s is timed once (predicted: without warm-up, so that time includes
tracing).
Peak memory is the process's VmHWM (GiB): imports, weights, optimizer state, graphs and
activations; ours also report `tf_peak_gib`, the BFC allocator's own peak in use (live
tensors), which the process exceeds by its floor and by pages the allocator touched once and
keeps. `--tf_cpu_pool_gib` caps that allocator's pool, as an accelerator's memory caps its
own (TF_CPU_BFC_MEM_LIMIT_IN_MB). A configuration whose predicted peak exceeds --mem_limit_gib or whose predicted
run exceeds --time_budget_s is skipped (status skipped_memory / skipped_time, with the
reason); a running one is killed at those limits (killed_memory / timeout); longer lengths of a
series that failed are skipped (skipped_after_failure). Peers (`benchmarks/peers.py`) run with
--peer_python. FLOP rates use `benchmarks.flops.model_flops` and the matmul rate measured by a
child at the start of the run. Results: one JSON line per configuration in --output.

Grids: `star` (default): every length x attention x mode at --main_depth with reversible layers,
plus every depth x reversible setting at --depth_len (LSH, train); `product`: the full product
(inference and generation only with reversible layers, which change nothing there).
"""

import json
import os
import statistics
import sys
import time

from absl import app, flags

from benchmarks import common, ledger, scaling_report, scaling_run

FLAGS = flags.FLAGS
flags.DEFINE_list("lengths", ["1024", "4096", "16384", "65536", "262144", "1048576"],
                  "Sequence lengths (tokens).")
flags.DEFINE_list("depths", ["2", "6", "12"], "Numbers of layers.")
flags.DEFINE_list("attention", ["lsh", "local", "full"], "Attention types.")
flags.DEFINE_list("modes", ["train", "infer", "generate"], "What to time.")
flags.DEFINE_list("reversible", ["true", "false"], "Reversible settings (depth axis / product).")
flags.DEFINE_enum("grid", "star", ["star", "product"], "Which combinations to run (see above).")
flags.DEFINE_integer("main_depth", 6, "star grid: depth of the length axis.")
flags.DEFINE_integer("depth_len", 16384, "star grid: length of the depth axis.")
flags.DEFINE_list("gen_lengths", None, "Lengths (cache sizes) for generate (default --lengths).")
flags.DEFINE_integer("gen_prompt", 64, "generate: prompt tokens.")
flags.DEFINE_integer("gen_tokens", 192, "generate: new tokens per timed call.")
flags.DEFINE_boolean("jit_compile", False, "XLA for train and infer (ours).")
flags.DEFINE_integer("attn_chunks", 1, "Ours: LSHSelfAttention(attn_chunks=...): the (head, "
                     "hash round) groups attended one after another, recomputed in backward "
                     "(8 = every pair of the peer configuration's 4 heads x 2 rounds).")
flags.DEFINE_integer("query_chunk_len", None, "Ours: LSHSelfAttention(query_chunk_len=...): "
                     "each group's sorted queries attended in pieces of this many tokens.")
flags.DEFINE_boolean("ff_chunked_backward", False, "Ours: the feed-forward's backward pass "
                     "chunk by chunk too (ChunkedFeedForward(chunked_backward=True)).")
flags.DEFINE_integer("stored_top_blocks", 0, "Ours: ReformerBackbone(stored_top_blocks=...): "
                     "the top blocks that keep their activations instead of being recomputed.")
flags.DEFINE_enum("optimizer", "fused_adam", ["fused_adam", "adam"], "Ours, train: the "
                  "library's FusedAdam (reformer_keras.training.FusedAdam, what the trainers "
                  "use) or keras.optimizers.Adam.")
flags.DEFINE_boolean("malloc_tuned", False, "Children (ours and peers) run with "
                     "MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736.")
flags.DEFINE_float("tf_cpu_pool_gib", 0.0, "Ours: cap TensorFlow's CPU (BFC) allocator pool at "
                   "this many GiB (TF_CPU_BFC_MEM_LIMIT_IN_MB in the child), as an "
                   "accelerator's fixed memory caps its pool; an allocation that does not fit "
                   "fails the configuration. 0: TensorFlow's default (64 GiB, i.e. none).")
flags.DEFINE_float("reserve_pool_gib", 0.0, "Ours: reserve this many GiB in TensorFlow's CPU "
                   "pool before the model is built (`runtime.reserve_cpu_pool`; one region "
                   "instead of regions of doubling size). 0: none.")
flags.DEFINE_float("memory_budget_gib", 0.0, "Ours, train: a peak-memory budget (GiB) for "
                   "each training step; `reformer_keras.memory_planner` chooses --attn_chunks, "
                   "--query_chunk_len, --ff_chunked_backward, --stored_top_blocks, "
                   "--reserve_pool_gib and --tf_cpu_pool_gib per length (set none of them); a "
                   "length it cannot fit is a usage error before anything runs. 0: no planner.")
MEMORY_FLAGS = ("attn_chunks", "query_chunk_len", "ff_chunked_backward", "stored_top_blocks",
                "reserve_pool_gib", "tf_cpu_pool_gib")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps before the timed ones, ours and the "
                     "peers alike (fewer when one takes longer than --long_step_s).")
flags.DEFINE_integer("steps", 2, "Minimum timed steps.")
flags.DEFINE_integer("max_steps", 8, "Maximum timed steps.")
flags.DEFINE_float("min_time_s", 10.0, "Keep stepping until this many seconds are timed.")
flags.DEFINE_float("long_step_s", 120.0, "Steps longer than this are timed once.")
flags.DEFINE_float("time_budget_s", 1800.0, "Per configuration: skip when predicted longer; "
                   "kill (status timeout) when running longer.")
flags.DEFINE_float("mem_limit_gib", 0.0, "Skip when the predicted peak RSS is larger; kill "
                   "a child whose RSS passes it. 0: min(20, 0.9 x MemAvailable at the start).")
flags.DEFINE_boolean("skip_predicted_memory", True, "Skip a configuration whose predicted peak "
                     "exceeds --mem_limit_gib (false: run it; the limit still kills a child "
                     "whose RSS passes it). The prediction is linear in length from the series' "
                     "longest measured run and overestimates when the process floor is large.")
flags.DEFINE_string("peer_python", "/tmp/peers/venv/bin/python",
                    "Python of the peer virtualenv; peers are skipped when it does not exist.")
flags.DEFINE_list("peers", ["torch_full", "hf", "reformer_pytorch"], "Peer implementations "
                  "(benchmarks/peers.py): torch_full (PyTorch SDPA full attention), hf, "
                  "reformer_pytorch.")
flags.DEFINE_list("peer_malloc", ["default", "tuned"], "Allocator settings each peer runs "
                  "with: default (glibc's) and/or tuned (MALLOC_MMAP_MAX_=0 "
                  "MALLOC_TRIM_THRESHOLD_=68719476736).")
flags.DEFINE_list("peer_lengths", None, "Lengths for the peers (default --lengths).")
flags.DEFINE_list("peer_reversible", ["true"], "Peer reversible settings; false runs "
                  "reformer_pytorch with its ordinary-backprop blocks (reverse_thres), the "
                  "counterpart of ours with --reversible=false (hf has no such option).")
flags.DEFINE_list("peer_depths", None, "Depths for the peers (default: --main_depth for the "
                  "star grid, --depths for product).")
flags.DEFINE_string("output", "", "JSON-lines file to append every row to.")
flags.DEFINE_string("plots_dir", os.path.join(scaling_run.REPO, "docs", "img"),
                    "Where the PNG plots go ('' = no plots).")
flags.DEFINE_string("plot_only", "", "Read this JSON-lines file: tables, targets, plots; no runs.")
flags.DEFINE_boolean("dry_run", False, "Print the configurations the flags select; run nothing.")
flags.DEFINE_boolean("quick", False, "Lengths 1K and 4K, 2 layers, lsh vs full, generation and "
                     "peers at 1K, >= 2 s timed; plots to /tmp/scaling/quick_img unless "
                     "--plots_dir is set.")
# Internal: one configuration in this process.
flags.DEFINE_boolean("child", False, "Internal: measure one configuration here.")
flags.DEFINE_string("c_mode", "train", "Internal (--child).")
flags.DEFINE_integer("c_seq_len", 1024, "Internal (--child).")
flags.DEFINE_integer("c_layers", 2, "Internal (--child).")
flags.DEFINE_string("c_attention", "lsh", "Internal (--child).")
flags.DEFINE_boolean("c_reversible", True, "Internal (--child).")
flags.DEFINE_boolean("c_single", False, "Internal (--child): no warm-up, one timed step.")

MODES = ("train", "infer", "generate")
ATTENTION = ("lsh", "local", "full")


def _bool(text):
    if text.lower() not in ("true", "false", "1", "0"):
        raise app.UsageError(f"--reversible takes true/false values, got {text!r}")
    return text.lower() in ("true", "1")


def measure_child():
    """One configuration in this process; prints a JSON line after the build and every step."""
    import keras  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    tf.config.threading.set_inter_op_parallelism_threads(2)
    length, mode = FLAGS.c_seq_len, FLAGS.c_mode
    jit = FLAGS.jit_compile and mode != "generate"
    rec = dict(impl="ours", mode=mode, seq_len=length, num_layers=FLAGS.c_layers,
               attention=FLAGS.c_attention, reversible=FLAGS.c_reversible, jit_compile=jit,
               attn_chunks=FLAGS.attn_chunks, query_chunk_len=FLAGS.query_chunk_len,
               ff_chunked_backward=FLAGS.ff_chunked_backward,
               stored_top_blocks=FLAGS.stored_top_blocks, batch=1,
               optimizer=FLAGS.optimizer if mode == "train" else None,
               reserve_pool_gib=FLAGS.reserve_pool_gib or None,
               memory_budget_gib=FLAGS.memory_budget_gib or None,
               versions=dict(tensorflow=tf.__version__, keras=keras.__version__),
               env={k: v for k, v in os.environ.items()
                    if k.startswith("MALLOC_") or k.startswith("TF_CPU_")})

    def emit(status, **extra):
        rec.update(extra, status=status, peak_rss_gib=round(common.peak_rss_gib(), 3))
        try:  # the BFC allocator's peak in use (live tensors, in its chunk sizes)
            rec["tf_peak_gib"] = round(
                tf.config.experimental.get_memory_info("CPU:0")["peak"] / 2**30, 3)
        except ValueError:  # not the BFC allocator
            pass
        print(json.dumps(rec), flush=True)

    if FLAGS.reserve_pool_gib:
        from reformer_keras import runtime  # pylint: disable=import-outside-toplevel
        runtime.reserve_cpu_pool(FLAGS.reserve_pool_gib)
    model = common.build_lm(length, FLAGS.c_layers, FLAGS.c_attention, FLAGS.c_reversible,
                            attn_chunks=FLAGS.attn_chunks, query_chunk_len=FLAGS.query_chunk_len,
                            ff_chunked_backward=FLAGS.ff_chunked_backward,
                            stored_top_blocks=FLAGS.stored_top_blocks)
    model.build((1, length))
    emit("running", params=int(model.count_params()),
         rss_after_build_gib=round(common.current_rss_gib(), 3))
    rng = np.random.default_rng(0)
    tokens = length
    if mode == "train":
        from reformer_keras.training.tf_fused_adam import FusedAdam  # pylint: disable=import-outside-toplevel
        adam = FusedAdam if FLAGS.optimizer == "fused_adam" else keras.optimizers.Adam
        model.compile(optimizer=adam(1e-4), jit_compile=jit,
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        data = rng.integers(0, 256, size=(1, length + 1), dtype="int32")

        def step():
            return float(np.asarray(model.train_on_batch(data[:, :-1], data[:, 1:])))
    elif mode == "infer":
        forward = tf.function(lambda ids: model(ids, training=False), jit_compile=jit)
        ids = tf.constant(rng.integers(0, 256, size=(1, length), dtype="int32"))

        def step():
            return float(forward(ids)[0, -1, 0])
    else:
        from reformer_keras.generation import generate  # pylint: disable=import-outside-toplevel
        tokens = FLAGS.gen_tokens
        prompt = tf.constant(rng.integers(0, 256, size=(1, FLAGS.gen_prompt), dtype="int32"))
        fn = tf.function(lambda p, s: generate(model, p, tokens, temperature=1.0, top_k=40,
                                               seed=s, max_length=length))
        start = time.perf_counter()
        sample = fn.get_concrete_function(tf.TensorSpec(prompt.shape, tf.int32),
                                          tf.TensorSpec((2,), tf.int64))
        seed = tf.constant([0, 1], tf.int64)
        emit("running", trace_s=round(time.perf_counter() - start, 2),
             gen_prompt=FLAGS.gen_prompt, gen_tokens=tokens, cache_len=length)

        def step():
            return int(sample(prompt, seed)[0, -1])

    warm = []
    while len(warm) < (0 if FLAGS.c_single else FLAGS.warmup_steps) and not (
            warm and max(warm) > FLAGS.long_step_s):
        start = time.perf_counter()
        step()
        warm.append(round(time.perf_counter() - start, 3))
        emit("running", warmup_s=warm)
    max_steps = 1 if FLAGS.c_single or (warm and max(warm) > FLAGS.long_step_s) else (
        FLAGS.max_steps)
    times, cpu0, wall0 = [], time.process_time(), time.perf_counter()
    while len(times) < min(FLAGS.steps, max_steps) or (
            sum(times) < FLAGS.min_time_s and len(times) < max_steps):
        start = time.perf_counter()
        value = step()
        times.append(round(time.perf_counter() - start, 3))
        emit("running", step_times_s=times, last_value=value)
    median = statistics.median(times)
    emit("ok", median_step_s=round(median, 4), min_step_s=min(times),
         tokens_per_s=round(tokens / median, 1), includes_trace=bool(FLAGS.c_single),
         cpu_util=round((time.process_time() - cpu0) / (time.perf_counter() - wall0), 2))


def build_grid():
    """The configurations to run (dicts: impl, mode, seq_len, num_layers, attention,
    reversible), ordered by length so that shorter lengths of a series come first."""
    lengths = [int(x) for x in FLAGS.lengths]
    depths = [int(x) for x in FLAGS.depths]
    revs = [_bool(x) for x in FLAGS.reversible]
    modes = [m for m in MODES if m in FLAGS.modes]
    attns = [a for a in ATTENTION if a in FLAGS.attention]
    gen_lengths = [int(x) for x in (FLAGS.gen_lengths or lengths)]
    grid = []

    def add(impl, mode, length, depth, attn, rev, tuned=FLAGS.malloc_tuned):
        if mode != "generate" or length in gen_lengths:
            grid.append(dict(impl=impl, mode=mode, seq_len=length, num_layers=depth,
                             attention=attn, reversible=rev, malloc_tuned=tuned))

    if FLAGS.grid == "product":
        for length in lengths:
            for depth in depths:
                for attn in attns:
                    for rev in revs:
                        for mode in modes:
                            if mode == "train" or rev or len(revs) == 1:
                                add("ours", mode, length, depth, attn, rev)
        peer_depths = depths
    else:
        main_rev = True if True in revs else revs[0]
        for length in lengths:
            for attn in attns:
                for mode in modes:
                    add("ours", mode, length, FLAGS.main_depth, attn, main_rev)
        if "train" in modes:
            for depth in depths:
                for rev in revs:
                    add("ours", "train", FLAGS.depth_len, depth,
                        "lsh" if "lsh" in attns else attns[0], rev)
        peer_depths = [FLAGS.main_depth]
    peer_depths = [int(x) for x in FLAGS.peer_depths] if FLAGS.peer_depths else peer_depths
    if FLAGS.peers and os.path.exists(FLAGS.peer_python):
        bad = sorted(set(FLAGS.peer_malloc) - {"default", "tuned"})
        if bad:
            usage_error(f"--peer_malloc takes default and/or tuned, got {bad}")
        for length in [int(x) for x in (FLAGS.peer_lengths or lengths)]:
            for depth in peer_depths:
                for impl in FLAGS.peers:
                    for mode in ("train", "infer"):
                        for tuned in [m == "tuned" for m in FLAGS.peer_malloc]:
                            if mode not in modes:
                                continue
                            if impl == "torch_full":  # one plain model, no reversible option
                                add(impl, mode, length, depth, "full", False, tuned)
                                continue
                            for rev in [_bool(x) for x in FLAGS.peer_reversible]:
                                if rev or impl == "reformer_pytorch":
                                    add(impl, mode, length, depth, "lsh", rev, tuned)
    elif FLAGS.peers:
        print(f"peers skipped: no peer Python at {FLAGS.peer_python} (see benchmarks/peers.py "
              "for the virtualenv set-up)", flush=True)
    unique = {json.dumps(g, sort_keys=True): g for g in grid}
    order = lambda g: (g["seq_len"], g["impl"] != "ours", MODES.index(g["mode"]),
                       ATTENTION.index(g["attention"]), g["num_layers"], not g["reversible"],
                       g["impl"], g["malloc_tuned"])
    return sorted(unique.values(), key=order)


def memory_options(cfg):
    """The memory flags of `cfg`'s child: the planner's choice for ours in training under
    --memory_budget_gib, else the flags as given. Returns (options dict, plan or None)."""
    chosen = dict(attn_chunks=FLAGS.attn_chunks, query_chunk_len=FLAGS.query_chunk_len,
                  ff_chunked_backward=FLAGS.ff_chunked_backward,
                  stored_top_blocks=FLAGS.stored_top_blocks,
                  reserve_pool_gib=FLAGS.reserve_pool_gib, tf_cpu_pool_gib=FLAGS.tf_cpu_pool_gib)
    if not FLAGS.memory_budget_gib or cfg["impl"] != "ours" or cfg["mode"] != "train":
        return chosen, None
    from reformer_keras import memory_planner  # pylint: disable=import-outside-toplevel
    model = dict(common.PEER_CONFIG, num_layers=cfg["num_layers"],
                 attention_types=(cfg["attention"],), reversible=cfg["reversible"])
    plan = memory_planner.plan(model, cfg["seq_len"], 1, FLAGS.memory_budget_gib)
    chosen.update(plan.options, reserve_pool_gib=plan.reserve_pool_gib,
                  tf_cpu_pool_gib=plan.tf_cpu_pool_gib)
    return chosen, plan


def usage_error(message):
    """Exits with status 2 and `scaling: error: message` on stderr (one line)."""
    sys.stderr.write(f"scaling: error: {' '.join(str(message).split())}\n")
    sys.exit(2)


def check_memory_flags(grid):
    """Usage errors: --memory_budget_gib with a memory flag, or a length it cannot fit."""
    if not FLAGS.memory_budget_gib:
        return
    given = [f"--{name}" for name in MEMORY_FLAGS if FLAGS[name].present]
    if given:
        usage_error(f"--memory_budget_gib chooses {', '.join(given)}: set one or the other")
    from reformer_keras import memory_planner  # pylint: disable=import-outside-toplevel
    for cfg in grid:
        try:
            memory_options(cfg)
        except memory_planner.MemoryBudgetError as err:
            usage_error(str(err))


def _command(cfg, single):
    common_args = [f"--steps={FLAGS.steps}", f"--max_steps={FLAGS.max_steps}",
                   f"--min_time_s={FLAGS.min_time_s}", f"--long_step_s={FLAGS.long_step_s}"]
    if cfg["impl"] != "ours":
        return [FLAGS.peer_python, os.path.join(scaling_run.REPO, "benchmarks", "peers.py"),
                f"--impl={cfg['impl']}", f"--seq_len={cfg['seq_len']}",
                f"--depth={cfg['num_layers']}", f"--mode={cfg['mode']}",
                f"--reversible={int(cfg['reversible'])}",
                f"--warmup={0 if single else FLAGS.warmup_steps}"] + common_args
    opts = memory_options(cfg)[0]
    return [sys.executable, "-m", "benchmarks.scaling", "--child", f"--c_mode={cfg['mode']}",
            f"--c_seq_len={cfg['seq_len']}", f"--c_layers={cfg['num_layers']}",
            f"--c_attention={cfg['attention']}", f"--c_reversible={cfg['reversible']}",
            f"--c_single={single}", f"--jit_compile={FLAGS.jit_compile}",
            f"--attn_chunks={opts['attn_chunks']}",
            *([f"--query_chunk_len={opts['query_chunk_len']}"] if opts["query_chunk_len"] else []),
            f"--ff_chunked_backward={opts['ff_chunked_backward']}",
            f"--stored_top_blocks={opts['stored_top_blocks']}", f"--optimizer={FLAGS.optimizer}",
            f"--reserve_pool_gib={opts['reserve_pool_gib']}",
            f"--memory_budget_gib={FLAGS.memory_budget_gib}",
            f"--gen_prompt={FLAGS.gen_prompt}", f"--gen_tokens={FLAGS.gen_tokens}"] + common_args


def child_env(cfg, pool_gib=0.0):
    """The child's extra environment: the malloc settings of `cfg["malloc_tuned"]`, and for
    ours the allocator pool cap of `pool_gib` GiB (0: none)."""
    env = dict(scaling_run.MALLOC_TUNED) if cfg.get("malloc_tuned") else {}
    if cfg["impl"] == "ours" and pool_gib > 0:
        return dict(env, TF_CPU_BFC_MEM_LIMIT_IN_MB=str(int(pool_gib * 1024)))
    return env


def _write(row):
    if FLAGS.output:
        ledger.append(FLAGS.output, [row])


def run_all():
    run_id = time.strftime("%Y%m%d-%H%M%S")
    env = dict(scaling_run.MALLOC_TUNED) if FLAGS.malloc_tuned else {}
    setting = dict(run_id=run_id)
    grid = build_grid()
    check_memory_flags(grid)
    if not FLAGS.mem_limit_gib:
        FLAGS.mem_limit_gib = round(min(20.0, 0.9 * (scaling_run.available_gib() or 20.0)), 1)
        if FLAGS.memory_budget_gib:  # the budget is the limit, with a margin for the guard
            FLAGS.mem_limit_gib = round(1.1 * FLAGS.memory_budget_gib, 1)
    print(f"run {run_id}: {len(grid)} configurations, malloc_tuned={FLAGS.malloc_tuned}, "
          f"jit_compile={FLAGS.jit_compile}, limits {FLAGS.mem_limit_gib} GiB / "
          f"{FLAGS.time_budget_s:.0f} s per configuration", flush=True)
    matmul = scaling_run.run_guarded(
        [sys.executable, "-m", "benchmarks.flops", "--matmul"], env=env, timeout_s=600)
    matmul.update(setting, kind="matmul", malloc_tuned=FLAGS.malloc_tuned)
    _write(matmul)
    print(f"dense float32 matmul rate: {matmul.get('shapes')} GFLOP/s -> best "
          f"{matmul.get('best_gflops')} GFLOP/s", flush=True)
    rows = [matmul]
    print(scaling_report.HEADER, flush=True)
    for cfg in grid:
        done = [r for r in rows if r.get("kind") != "matmul"]
        mem, step, wall, why = scaling_run.predict(cfg, done, FLAGS.steps, FLAGS.long_step_s,
                                                      FLAGS.warmup_steps)
        opts, plan = memory_options(cfg)
        if plan is not None:
            print(f"  {plan.describe()}", flush=True)
            mem = plan.predicted_peak_gib
        row = dict(cfg, **setting, kind="step",
                   jit_compile=FLAGS.jit_compile and cfg["impl"] == "ours" and
                   cfg["mode"] != "generate",
                   predicted_peak_gib=None if mem is None else round(mem, 2),
                   predicted_step_s=None if step is None else round(step, 2))
        if plan is not None:
            row.update(memory_budget_gib=plan.budget_gib, plan_peak_gib=plan.predicted_peak_gib,
                       plan_pool_gib=plan.predicted_pool_gib, tf_cpu_pool_gib=opts[
                           "tf_cpu_pool_gib"] or None)
        if why:
            row.update(status="skipped_after_failure", reason=why)
        elif FLAGS.skip_predicted_memory and mem is not None and mem > FLAGS.mem_limit_gib:
            row.update(status="skipped_memory", reason=f"predicted peak {mem:.1f} GiB > "
                       f"--mem_limit_gib {FLAGS.mem_limit_gib}")
        elif wall is not None and wall > FLAGS.time_budget_s:
            row.update(status="skipped_time", reason=f"predicted {wall:.0f} s (step "
                       f"{step:.0f} s) > --time_budget_s {FLAGS.time_budget_s:.0f}")
        else:
            single = step is not None and step > FLAGS.long_step_s
            result = scaling_run.run_guarded(_command(cfg, single),
                                             env=child_env(cfg, opts["tf_cpu_pool_gib"]),
                                             timeout_s=FLAGS.time_budget_s,
                                             mem_limit_gib=FLAGS.mem_limit_gib)
            result.pop("jit_compile", None)
            row.update({k: v for k, v in result.items() if k not in cfg})
        if row["status"].startswith("skipped"):
            print(f"  skip {cfg['impl']} {cfg['mode']} {cfg['attention']} L={cfg['seq_len']} "
                  f"{cfg['num_layers']} layers: {row['reason']}", flush=True)
        scaling_report.add_flops(row, matmul.get("best_gflops"))
        rows.append(row)
        _write(row)
        print(scaling_report.format_row(row), flush=True)
    return rows


def main(argv):
    del argv
    if FLAGS.child:
        measure_child()
        return
    if FLAGS.quick:
        FLAGS.lengths, FLAGS.depths, FLAGS.attention = ["1024", "4096"], ["2"], ["lsh", "full"]
        FLAGS.reversible, FLAGS.grid, FLAGS.gen_lengths = ["true"], "product", ["1024"]
        FLAGS.peer_lengths, FLAGS.steps, FLAGS.min_time_s = ["1024"], 1, 2.0
        FLAGS.gen_tokens, FLAGS.time_budget_s = 64, min(FLAGS.time_budget_s, 300.0)
        if not FLAGS["plots_dir"].present:
            FLAGS.plots_dir = "/tmp/scaling/quick_img"
    if FLAGS.dry_run:
        grid = build_grid()
        check_memory_flags(grid)
        for cfg in grid:
            plan = memory_options(cfg)[1]
            print(" ".join(f"{k}={v}" for k, v in cfg.items()) +
                  (f" | {plan.describe()}" if plan else ""))
        print(f"{len(grid)} configurations")
        return
    if FLAGS.plot_only:
        with open(FLAGS.plot_only) as f:
            rows = [json.loads(l) for l in f if l.strip().startswith("{")]
        rows = scaling_report.latest(rows)
    else:
        rows = run_all()
    scaling_report.report(rows, FLAGS.plots_dir)


if __name__ == "__main__":
    app.run(main)
