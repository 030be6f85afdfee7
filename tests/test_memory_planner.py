"""`reformer_keras.memory_planner`: predictions against recorded peaks, the choice of plan,
errors, and one measured training step in a fresh process against its prediction."""

import json
import math
import os
import subprocess
import sys

import pytest

from reformer_keras import memory_planner as mp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECORDS = os.path.join(REPO, "docs", "results", "memory_planner.jsonl")
PEER = dict(vocab_size=256, d_model=256, num_heads=4, d_ff=1024, bucket_size=64, num_hashes=2,
            ff_chunk_size=128, num_layers=6)
TOLERANCE = 0.10


def _records():
    with open(RECORDS) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def _predicted(row):
    model = dict(PEER, num_layers=row["num_layers"])
    pool = mp.pool_bytes(model, row["seq_len"], row["batch"], row["attn_chunks"],
                         row["query_chunk_len"], row["ff_chunked_backward"],
                         row["stored_top_blocks"]) / mp.GIB
    return mp.peak_gib(pool, row["seq_len"] * row["batch"], row["num_layers"],
                       row.get("reserve_pool_gib") or 0.0)


def test_predictions_within_ten_percent_of_every_recorded_peak():
    """Every measured step of the peer LM in docs/results/memory_planner.jsonl (the model
    options and pool settings each ran with; the process's peak RSS) against the model."""
    rows = _records()
    assert len(rows) >= 10 and {r["seq_len"] for r in rows} >= {4096, 16384, 65536}
    off = [(r["seq_len"], r["attn_chunks"], r["query_chunk_len"], r["ff_chunked_backward"],
            r["stored_top_blocks"], r["peak_rss_gib"], round(_predicted(r), 3))
           for r in rows if abs(_predicted(r) / r["peak_rss_gib"] - 1) > TOLERANCE]
    assert not off, off


def test_validation_rows_are_the_planner_choices():
    """The rows measured through `--memory_budget_gib` ran the options the planner picks now,
    and their recorded prediction is the one it makes now."""
    rows = [r for r in _records() if r["kind"] == "validation"]
    assert {r["seq_len"] for r in rows} >= {16384, 65536, 262144}
    for r in rows:
        plan = mp.plan(dict(PEER, num_layers=r["num_layers"]), r["seq_len"], r["batch"],
                       r["memory_budget_gib"])
        assert plan.options == {k: r[k] for k in mp.DEFAULT_OPTIONS}
        assert plan.reserve_pool_gib == r["reserve_pool_gib"]
        assert plan.predicted_peak_gib == pytest.approx(r["predicted_peak_gib"], abs=1e-3)


def test_more_budget_never_slower_and_every_plan_fits():
    for length in (4096, 65536, 262144):
        times = []
        for budget in (1.5, 2, 3, 4, 6, 8, 12, 16, 24):
            try:
                plan = mp.plan(PEER, length, 1, budget)
            except mp.MemoryBudgetError:
                assert not times, (length, budget)  # once one fits, every larger one does
                continue
            assert plan.predicted_peak_gib <= budget
            assert plan.reserve_pool_gib >= mp.RESERVE_SLACK * plan.predicted_pool_gib
            assert not plan.tf_cpu_pool_gib or plan.tf_cpu_pool_gib >= plan.reserve_pool_gib
            times.append(plan.relative_time)
        assert times and times == sorted(times, reverse=True), (length, times)


def test_plan_is_the_fastest_candidate_that_fits():
    """Against a brute-force pass over every option combination."""
    for length, budget in ((16384, 2.5), (65536, 3.0), (262144, 6.0), (1048576, 16.0)):
        plan = mp.plan(PEER, length, 1, budget)
        for cand in mp.candidates(PEER, length):
            pool = mp.pool_bytes(PEER, length, 1, **cand) / mp.GIB
            if mp.relative_time(PEER, **cand) < plan.relative_time - 1e-9:
                reserve = mp._reservation(pool, budget, length)  # pylint: disable=protected-access
                assert (mp.peak_gib(pool, length, 6, reserve) > budget
                        or reserve < mp.RESERVE_SLACK * pool), cand


def test_options_are_valid_for_the_layers():
    for cand in mp.candidates(dict(PEER, num_heads=6, num_hashes=4), 1 << 20):
        g = cand["attn_chunks"]
        assert 6 % g == 0 or (g % 6 == 0 and 4 % (g // 6) == 0)
        assert cand["query_chunk_len"] is None or cand["query_chunk_len"] % 64 == 0


def test_plan_describes_itself_in_one_line():
    text = mp.plan(PEER, 65536, 1, 3.0).describe()
    assert "\n" not in text and "attn_chunks=" in text and "predicted peak" in text


@pytest.mark.parametrize("budget", [0, -1, float("nan"), True, "4"])
def test_bad_budgets_are_refused(budget):
    with pytest.raises(ValueError, match="memory_budget_gib must be a number of GiB > 0"):
        mp.plan(PEER, 4096, 1, budget)


def test_nothing_fits_is_one_line_naming_the_leanest():
    with pytest.raises(mp.MemoryBudgetError) as err:
        mp.plan(PEER, 1 << 20, 1, 4.0)
    message = str(err.value)
    assert "\n" not in message and "no plan fits 1 x 1048576 tokens" in message
    assert "attn_chunks=8" in message and "predicted to peak at" in message


def test_missing_sizes_and_explicit_options_are_refused():
    with pytest.raises(ValueError, match="lack d_ff"):
        mp.plan({k: v for k, v in PEER.items() if k != "d_ff"}, 4096, 1, 4.0)
    with pytest.raises(ValueError, match="attn_chunks=2 unset"):
        mp.plan_for_model(dict(PEER, max_len=4096), 4.0, dict(mp.DEFAULT_OPTIONS, attn_chunks=2))


_STEP = """
import json, sys
from reformer_keras import runtime
runtime.configure_cpu()
import keras, numpy as np
from reformer_keras import memory_planner
from reformer_keras.models import ReformerLM
from reformer_keras.training import FusedAdam
from benchmarks import common
config = json.loads(sys.argv[1])
model = ReformerLM(**config)
plan = memory_planner.plan_for_model(
    dict(config, max_len=int(np.prod(config["axial_shape"]))), config["memory_budget_gib"])
model.compile(optimizer=FusedAdam(1e-4),
              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
data = np.random.default_rng(0).integers(0, 256, size=(1, 4097), dtype="int32")
for _ in range(2):
    model.train_on_batch(data[:, :-1], data[:, 1:])
b = model.backbone
print(json.dumps(dict(
    peak=common.peak_rss_gib(),
    predicted=plan.predicted_peak_gib, planned=plan.options,
    built=dict(attn_chunks=b.attn_chunks, query_chunk_len=b.query_chunk_len,
               ff_chunked_backward=b.ff_chunked_backward,
               stored_top_blocks=b.stored_top_blocks),
    saved_budget=model.get_config().get("memory_budget_gib"))))
"""


def test_model_option_plans_a_measured_step_within_tolerance():
    """`ReformerLM(memory_budget_gib=...)` at 4K tokens, 2 layers, in a fresh process: it
    builds with the plan's options, prints the plan, and the process's peak after two Adam
    steps is within 10 % of the plan's prediction."""
    config = dict(PEER, num_layers=2, attention_types=["lsh"], axial_shape=[64, 64],
                  axial_dims=[64, 192], seed=0, memory_budget_gib=2.0)
    proc = subprocess.run([sys.executable, "-c", _STEP, json.dumps(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=900,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["built"] == out["planned"] and out["saved_budget"] is None
    assert "memory plan for 1 x 4096 tokens within 2 GiB" in proc.stdout
    assert math.isclose(out["peak"], out["predicted"], rel_tol=TOLERANCE), out
