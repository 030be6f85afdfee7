"""Memory planner: the fastest training-step options that fit a memory budget.

`plan(model_options, seq_len, batch_size, budget_gib)` chooses, for one training step of a
Reformer language model (forward, backward, Adam update; float32), the memory options of the
reversible stack and LSH attention:

  attn_chunks          LSH (head, round) groups attended one after another (1 = all at once)
  query_chunk_len      sorted queries attended in pieces of this many tokens (None = whole)
  ff_chunked_backward  the feed-forward's backward chunk by chunk
  stored_top_blocks    top blocks that keep their activations (no recompute)

and TensorFlow's CPU allocator pool: a reservation of one region
(`reformer_keras.runtime.reserve_cpu_pool`) and, when the plan is tight, a cap on the pool
(`TF_CPU_BFC_MEM_LIMIT_IN_MB`, read when TensorFlow creates its CPU device). It predicts the
process's peak resident memory from a count of the step's live tensors and returns the
candidate with the smallest predicted step time whose predicted peak fits the budget, or raises
`MemoryBudgetError` (a `ValueError`) with a one-line reason.

The cost model (bytes per token of a (batch, padded length) step, f = 4 bytes per float32):
  persistent, whole step:  the two reversible streams, their gradients and the recomputed
      inputs (STREAM_COPIES x d_model x f), the LM head's logits and their gradient
      (HEAD_COPIES x vocab x f), each LSH layer's hash buckets (heads x rounds x 4);
  stored top blocks:       each keeps one block's activations (BLOCK_STORE_COPIES of its
      attention and feed-forward widths);
  the largest transient:   max over the block's two halves:
      attention: a group of p = heads x rounds / groups (head, round) pairs holds
        SCORE_COPIES score-sized tensors of W x bucket floats per pair and token (W = the
        query's chunk and the one before), or with query pieces those for one piece only; the
        scores of small groups are kept from the forward to the backward pass
        (`attention_utils.KEEP_SCORES_MAX_ENTRIES`); plus SORTED_COPIES sorted per-pair copies
        of head_dim floats and, with all pairs in one group, JOINT_COPIES per-head tensors of all
        heads (projections, output, their gradients);
      feed-forward: FF_COPIES (L, d_ff) tensors when differentiated as a whole, or one chunk's
        with `ff_chunked_backward`;
  fixed:  weights, gradients and Adam's two moments (4 x parameters x f).
The process peak is FLOOR_GIB (interpreter, TensorFlow, traced graphs) plus the pool's touched
pages, POOL_TOUCHED x the pool's in-use peak, plus the reservation's bookkeeping (1/32 of it).
The copy counts are those of the layers' code (tf_reversible, tf_sequential_attention,
tf_segmented_attention, tf_chunked_recompute, tf_norm_head) as measured: fitted to the
allocator's in-use peaks of the peer LM at 4K-1M tokens (docs/memory_planner.md), which the
tests check against the recorded measurements.

Step time is ranked, not predicted: relative costs of one more attention pass (groups), one
more feed-forward pass (chunked backward), query-piece loop overhead and a stored block's
saved recompute (docs/memory_planner.md). No TensorFlow import: plans are made before it loads.
"""

import dataclasses
import math

GIB = 2.0**30
F32 = 4

# Live-tensor counts (see the module docstring; fitted on the peer LM, docs/memory_planner.md).
STREAM_COPIES = 7.0        # x d_model floats per token: streams, gradients, recomputed inputs
HEAD_COPIES = 0.0          # x vocab floats per token (the head's backward is not the peak)
BLOCK_STORE_COPIES = 2.75  # x d_ff floats per token per stored block
JOINT_SCORE_COPIES = 3.5   # score-sized tensors per pair, all pairs in one group
JOINT_COPIES = 5.0         # x head_dim floats per head, all heads at once (attn_chunks=1)
SCORE_COPIES = 8.0         # score-sized tensors per pair of a group run one after another
SORTED_COPIES = 7.0        # x head_dim floats per pair of a group: sorted q/k/v, windows, grads
GROUP_INPUT_COPIES = 2.0   # x d_model floats per token: a sequential group's input and grads
KEPT_SCORE_COPIES = 1.0    # scores kept from the forward to the backward (small groups)
FF_COPIES = 6.0            # x d_ff floats per token, feed-forward differentiated whole
FIXED_BYTES = 0            # the pool's fixed share besides parameters and optimizer state
FLOOR_GIB = 0.88           # process floor: interpreter, TensorFlow, model build
FLOOR_LAYER_GIB = 0.02     # per layer, growing pool only: regions too small to reuse
OUTSIDE_BYTES = 2.2 * 2**10  # per token, resident outside the pool (host buffers)
POOL_TOUCHED = 1.1         # growing pool: touched pages per byte of in-use peak
RESERVED_TOUCHED = 1.0     # reserved pool (one region): the same
KEEP_SCORES_MAX_ENTRIES = 2**25  # attention_utils.KEEP_SCORES_MAX_ENTRIES
RESERVE_WANT = 1.25        # pool reservation: this x the predicted in-use peak
RESERVE_SLACK = 1.1        # a plan needs at least this x the in-use peak reserved
TIGHT = 0.8                # a plan predicted above this x the budget caps the pool
MAX_STORED_BLOCKS = 1      # stored top blocks the planner considers (see `candidates`)

# Relative step-time costs (fractions of the default step; docs/memory_planner.md).
TIME_ATTENTION_PASS = 0.18     # one more attention forward (attn_chunks > 1)
TIME_GROUP = 0.01              # per group beyond the first (loop and launch overhead)
TIME_FF_PASS = 0.15            # one more feed-forward forward (ff_chunked_backward)
TIME_QUERY_PIECES = 0.04       # query pieces, plus this x (4096 / query_chunk_len)
TIME_STORED_BLOCK = 0.25       # x stored blocks / layers: the recompute saved

REQUIRED = ("vocab_size", "d_model", "num_layers", "num_heads", "d_ff")


class MemoryBudgetError(ValueError):
    """No plan fits the budget (or the inputs are invalid); the message is one line."""


@dataclasses.dataclass(frozen=True)
class Plan:
    """A planned training step.

    options: the model options to use (attn_chunks, query_chunk_len, ff_chunked_backward,
      stored_top_blocks). reserve_pool_gib: GiB to reserve in TensorFlow's CPU pool before the
      model is built (0: none). tf_cpu_pool_gib: cap of that pool (0: none). predicted_peak_gib:
      predicted peak resident memory of the process; predicted_pool_gib: predicted in-use peak
      of TensorFlow's pool; relative_time: the ranking's step-time estimate (1 = default).
    """
    options: dict
    reserve_pool_gib: float
    tf_cpu_pool_gib: float
    predicted_peak_gib: float
    predicted_pool_gib: float
    relative_time: float
    budget_gib: float
    seq_len: int
    batch_size: int

    def describe(self):
        """The plan in one line."""
        o = self.options
        return (f"memory plan for {self.batch_size} x {self.seq_len} tokens within "
                f"{self.budget_gib:g} GiB: attn_chunks={o['attn_chunks']} "
                f"query_chunk_len={o['query_chunk_len']} "
                f"ff_chunked_backward={o['ff_chunked_backward']} "
                f"stored_top_blocks={o['stored_top_blocks']} "
                f"reserve_pool_gib={self.reserve_pool_gib:g} "
                f"tf_cpu_pool_gib={self.tf_cpu_pool_gib:g}; predicted peak "
                f"{self.predicted_peak_gib:.2f} GiB (pool {self.predicted_pool_gib:.2f} GiB), "
                f"relative step time {self.relative_time:.2f}")

    def env(self):
        """Environment variables the plan needs before TensorFlow creates its CPU device."""
        if not self.tf_cpu_pool_gib:
            return {}
        return {"TF_CPU_BFC_MEM_LIMIT_IN_MB": str(int(self.tf_cpu_pool_gib * 1024))}


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MemoryBudgetError(f"{name} must be a positive int, got {value!r}.")
    return value


def check_budget(budget_gib):
    """Validates a budget in GiB (a number > 0); returns it as a float."""
    if isinstance(budget_gib, bool) or not isinstance(budget_gib, (int, float)) or not (
            0 < budget_gib < 2**20) or math.isnan(budget_gib):
        raise MemoryBudgetError(f"memory_budget_gib must be a number of GiB > 0, got "
                                f"{budget_gib!r}.")
    return float(budget_gib)


def _shape(options):
    """The sizes the model's memory depends on, with the backbone's defaults."""
    missing = [k for k in REQUIRED if options.get(k) is None]
    if missing:
        raise MemoryBudgetError(f"memory planner: model options lack {', '.join(missing)}.")
    s = {k: _positive_int(k, options[k]) for k in REQUIRED}
    s["head_dim"] = _positive_int("head_dim", options.get("head_dim") or
                                  s["d_model"] // s["num_heads"])
    types = options.get("attention_types") or ("lsh",)
    types = (types,) if isinstance(types, str) else tuple(types)
    s["types"] = [types[i % len(types)] for i in range(s["num_layers"])]
    s["bucket_size"] = _positive_int("bucket_size", options.get("bucket_size") or 64)
    s["num_hashes"] = _positive_int("num_hashes", options.get("num_hashes") or 2)
    s["ff_chunk_size"] = options.get("ff_chunk_size")
    s["local_chunk_size"] = options.get("local_chunk_size") or s["bucket_size"]
    s["reversible"] = options.get("reversible", True)
    return s


def _params(s):
    d, h, dh, ff, v = s["d_model"], s["num_heads"], s["head_dim"], s["d_ff"], s["vocab_size"]
    per_layer = 3 * d * h * dh + 2 * d * ff + ff + d + 4 * d
    return s["num_layers"] * per_layer + 2 * v * d + v + 4 * d


def attention_layouts(num_heads, num_hashes):
    """Valid `attn_chunks` values and their (heads, rounds) per group, as
    `LSHSelfAttention.group_layout` splits them: divisors of the heads, then multiples of
    the heads that split each head's rounds."""
    out = {}
    for g in range(1, num_heads + 1):
        if num_heads % g == 0:
            out[g] = (num_heads // g, num_hashes)
    for parts in range(2, num_hashes + 1):
        if num_hashes % parts == 0:
            out[num_heads * parts] = (1, num_hashes // parts)
    return out


def pool_bytes(options, seq_len, batch_size, attn_chunks=1, query_chunk_len=None,
               ff_chunked_backward=False, stored_top_blocks=0):
    """Predicted in-use peak of TensorFlow's pool (bytes) for one training step."""
    s = _shape(options)
    c, n, heads, dh = s["bucket_size"], s["num_hashes"], s["num_heads"], s["head_dim"]
    length = -(-seq_len // c) * c
    if s["ff_chunk_size"]:
        length = math.lcm(c, s["ff_chunk_size"]) * -(-seq_len // math.lcm(c, s["ff_chunk_size"]))
    tokens = batch_size * length
    window = 2 * c  # the query's chunk and the one before (keys per query)
    n_lsh = s["types"].count("lsh")
    per_token = (STREAM_COPIES * s["d_model"] + HEAD_COPIES * s["vocab_size"]) * F32
    per_token += n_lsh * heads * n * 4
    layouts = attention_layouts(heads, n)
    hb, rb = layouts[attn_chunks] if "lsh" in s["types"] else (heads, n)
    pairs = hb * rb
    # Attention transient, per token and as a constant (query pieces).
    score = window * F32  # one pair's scores per query token
    if attn_chunks == 1:
        attn_tok = JOINT_COPIES * heads * dh * F32 + SORTED_COPIES * pairs * dh * F32 + (
            JOINT_SCORE_COPIES * pairs * score if query_chunk_len is None else 0.0)
        scores_per_piece = JOINT_SCORE_COPIES
    else:
        attn_tok = GROUP_INPUT_COPIES * s["d_model"] * F32 + SORTED_COPIES * pairs * dh * F32 + (
            SCORE_COPIES * pairs * score if query_chunk_len is None else 0.0)
        scores_per_piece = SCORE_COPIES
    attn_const = 0.0
    if query_chunk_len is not None:
        attn_const = scores_per_piece * batch_size * pairs * min(query_chunk_len, length) * score
    elif batch_size * pairs * length * window <= KEEP_SCORES_MAX_ENTRIES:
        attn_tok += KEPT_SCORE_COPIES * pairs * score
    if "lsh" not in s["types"]:  # local / full layers: all heads at once
        keys = length if "full" in s["types"] else 2 * s["local_chunk_size"]
        attn_tok = JOINT_COPIES * heads * dh * F32 + JOINT_SCORE_COPIES * heads * keys * F32
        attn_const = 0.0
    chunk = s["ff_chunk_size"] or length
    if ff_chunked_backward and s["ff_chunk_size"]:
        ff_tok, ff_const = 0.0, FF_COPIES * batch_size * chunk * s["d_ff"] * F32
    else:
        ff_tok, ff_const = FF_COPIES * s["d_ff"] * F32, 0.0
    transient = max(attn_tok * tokens + attn_const, ff_tok * tokens + ff_const)
    blocks = s["num_layers"] if not s["reversible"] else min(stored_top_blocks, s["num_layers"])
    stored = blocks * BLOCK_STORE_COPIES * s["d_ff"] * F32 * tokens
    return FIXED_BYTES + 4 * _params(s) * F32 + per_token * tokens + transient + stored


def peak_gib(pool_gib, tokens, num_layers, reserve_pool_gib=0.0):
    """Predicted peak resident memory (GiB) of a process whose pool peaks at `pool_gib` in use
    in a step of `tokens` (batch x length) tokens of a `num_layers`-layer model."""
    if reserve_pool_gib:
        return (FLOOR_GIB + OUTSIDE_BYTES * tokens / GIB + RESERVED_TOUCHED * pool_gib +
                reserve_pool_gib / 32)
    return (FLOOR_GIB + FLOOR_LAYER_GIB * num_layers + OUTSIDE_BYTES * tokens / GIB +
            POOL_TOUCHED * pool_gib)


def relative_time(options, attn_chunks=1, query_chunk_len=None, ff_chunked_backward=False,
                  stored_top_blocks=0):
    """Ranking estimate of a step's time relative to the default options (1.0)."""
    layers = options["num_layers"]
    t = 1.0
    if attn_chunks > 1:
        t += TIME_ATTENTION_PASS + TIME_GROUP * (attn_chunks - 1)
    if query_chunk_len is not None:
        t += TIME_QUERY_PIECES * (1 + 4096 / query_chunk_len)
    if ff_chunked_backward:
        t += TIME_FF_PASS
    return t - TIME_STORED_BLOCK * min(stored_top_blocks, layers) / layers


def candidates(options, seq_len):
    """Every option combination the planner considers: dicts of the four options."""
    s = _shape(options)
    c = s["bucket_size"]
    lsh = "lsh" in s["types"]
    groups = sorted(attention_layouts(s["num_heads"], s["num_hashes"])) if lsh else [1]
    pieces = [None]
    if lsh:
        q = 64 * c
        while q >= 4 * c:
            if q < seq_len:
                pieces.append(q)
            q //= 2
    ffb = [False, True] if s["ff_chunk_size"] else [False]
    # One stored block at most: its activations are freed before the recompute below it peaks,
    # but a second one's live through the first's backward (a 6-layer 16K step with two ran out
    # of a 1.5 GiB pool cap, against 0.91 GiB in use with one).
    stored = range(0, min(MAX_STORED_BLOCKS, s["num_layers"]) + 1) if s["reversible"] else [0]
    return [dict(attn_chunks=g, query_chunk_len=q, ff_chunked_backward=f, stored_top_blocks=k)
            for g in groups for q in pieces for f in ffb for k in stored]


def plan(model_options, seq_len, batch_size, budget_gib, bfc_pool=True):
    """The fastest-ranked step options whose predicted peak fits `budget_gib`.

    Args:
      model_options: the model's constructor options (vocab_size, d_model, num_layers,
        num_heads, d_ff required; head_dim, attention_types, bucket_size, num_hashes,
        ff_chunk_size, local_chunk_size, reversible as in `ReformerBackbone`).
      seq_len, batch_size: the training step's shape.
      budget_gib: the process's peak resident memory budget, GiB.
      bfc_pool: whether TensorFlow's CPU allocator is the BFC pool (reservation and cap apply).
    Returns a `Plan`; raises `MemoryBudgetError` when nothing fits.
    """
    budget = check_budget(budget_gib)
    _positive_int("seq_len", seq_len)
    _positive_int("batch_size", batch_size)
    best, smallest = None, None
    tokens, layers = seq_len * batch_size, model_options["num_layers"]
    for cand in candidates(model_options, seq_len):
        pool = pool_bytes(model_options, seq_len, batch_size, **cand) / GIB
        reserve = _reservation(pool, budget, tokens) if bfc_pool else 0.0
        peak = peak_gib(pool, tokens, layers, reserve)
        time = relative_time(model_options, **cand)
        fits = peak <= budget and (not bfc_pool or reserve >= RESERVE_SLACK * pool)
        if smallest is None or peak < smallest[0]:
            smallest = (peak, cand)
        if fits and (best is None or time < best[3] - 1e-9):
            best = (cand, pool, peak, time, reserve)
    if best is None:
        peak, cand = smallest
        raise MemoryBudgetError(
            f"memory_budget_gib={budget:g}: no plan fits {batch_size} x {seq_len} tokens; the "
            f"leanest ({', '.join(f'{k}={v}' for k, v in cand.items())}) is predicted to peak at "
            f"{peak:.2f} GiB.")
    cand, pool, peak, time, reserve = best
    # A tight plan caps the pool at what the budget leaves it, so that a step needing more
    # fails with an out-of-memory error instead of passing the budget.
    cap = 0.0
    if bfc_pool and peak > TIGHT * budget:
        cap = _room(budget, tokens)
    return Plan(options=dict(cand), reserve_pool_gib=reserve, tf_cpu_pool_gib=cap,
                predicted_peak_gib=round(peak, 3), predicted_pool_gib=round(pool, 3),
                relative_time=round(time, 3), budget_gib=budget, seq_len=seq_len,
                batch_size=batch_size)


def _room(budget_gib, tokens):
    """GiB the budget leaves TensorFlow's pool: less the floor, host buffers and the
    reservation's bookkeeping (1/32), in steps of 0.25 GiB."""
    room = (budget_gib - FLOOR_GIB - OUTSIDE_BYTES * tokens / GIB) * 32 / 33
    return max(0.0, math.floor(room * 4) / 4)


def _reservation(pool_gib, budget_gib, tokens):
    """GiB to reserve as one pool region: RESERVE_WANT x the in-use peak in steps of 0.25 GiB,
    at most `_room` less 0.25 GiB (under a cap of `_room` the region must fit beside the
    tensors allocated before it)."""
    want = math.ceil(RESERVE_WANT * pool_gib / 0.25) * 0.25
    return max(0.0, min(want, _room(budget_gib, tokens) - 0.25))

DEFAULT_OPTIONS = dict(attn_chunks=1, query_chunk_len=None, ff_chunked_backward=False,
                       stored_top_blocks=0)


def check_not_given(given):
    """Raises `MemoryBudgetError` when an option the planner chooses is set in `given` (a dict
    of `DEFAULT_OPTIONS` keys) to other than its default."""
    set_too = [k for k, v in given.items() if v != DEFAULT_OPTIONS[k]]
    if set_too:
        raise MemoryBudgetError(
            f"memory_budget_gib chooses {', '.join(DEFAULT_OPTIONS)}; leave "
            f"{', '.join(f'{k}={given[k]!r}' for k in set_too)} unset or drop the budget.")


def plan_for_model(model_options, budget_gib, given=None, batch_size=1):
    """The plan of a model built with `memory_budget_gib`: one training step of `batch_size`
    sequences of `model_options["max_len"]` tokens. `given`: the memory options passed besides
    the budget (`check_not_given`). Raises `MemoryBudgetError` (a ValueError), one line."""
    check_not_given(given or {})
    return plan(model_options, model_options.get("max_len") or 4096, batch_size, budget_gib)
