"""Tables, target checks and plots of the scaling benchmark, from its rows (JSON-lines dicts).

Row fields used: impl ("ours", "reformer_pytorch", "hf"), mode ("train", "infer", "generate"),
seq_len (tokens), num_layers, attention, reversible, jit_compile, malloc_tuned, status ("ok" or
why not), median_step_s (seconds per step; generate: per call of gen_tokens tokens),
tokens_per_s, peak_rss_gib (GiB); matmul rows (kind "matmul") carry best_gflops (GFLOP/s).
"""

import os

from benchmarks import scaling_run

HEADER = (f"{'impl':<16} {'mode':<8} {'attn':<5} {'tokens':>8} {'lay':>3} {'rev':>3} "
          f"{'step s':>8} {'tok/s':>8} {'ms/tok':>7} {'peak GiB':>8} {'GFLOP/s':>7} "
          f"{'%mm':>5} {'cpu':>4}  status")
TARGET_DEPTH = 6


def row_key(r):
    return (r.get("kind", "step"), r.get("impl"), r.get("mode"), r.get("seq_len"),
            r.get("num_layers"), r.get("attention"), r.get("reversible"),
            bool(r.get("jit_compile")), bool(r.get("malloc_tuned")))


def latest(rows):
    """The last row of every configuration (a file appended to by several runs)."""
    out = {}
    for r in rows:
        out.pop(row_key(r), None)
        out[row_key(r)] = r
    return list(out.values())


def add_flops(row, matmul_gflops):
    """Adds model / hardware FLOPs per step, the model FLOP rate and its % of the matmul rate."""
    if row.get("kind") == "matmul" or row.get("status") != "ok" or row["mode"] == "generate":
        return row
    model, hardware = scaling_run.step_flops(row)
    step = row["median_step_s"]
    row.update(model_flops=model, hardware_flops=hardware,
               model_gflops=round(model / step / 1e9, 2))
    if matmul_gflops:
        row.update(matmul_gflops=matmul_gflops,
                   pct_matmul=round(100 * model / step / 1e9 / matmul_gflops, 1),
                   pct_matmul_hardware=round(100 * hardware / step / 1e9 / matmul_gflops, 1))
    return row


def _num(value, fmt):
    return format(value, fmt) if isinstance(value, (int, float)) else "-"


def format_row(r):
    ok = r.get("status") == "ok"
    per_token = None
    if ok and r.get("tokens_per_s"):
        per_token = 1e3 / r["tokens_per_s"]
    peak = r.get("peak_rss_gib") if ok else None
    status = r.get("status", "?")
    if not ok:
        status += f": {r.get('reason', '')}"[:100]
        if r.get("rss_seen_gib"):
            status += f" [RSS seen {r['rss_seen_gib']:.2f} GiB]"
    elif r.get("includes_trace"):
        status += " (one step, tracing included)"
    return (f"{r.get('impl', ''):<16} {r.get('mode', ''):<8} {r.get('attention', ''):<5} "
            f"{r.get('seq_len', 0):>8} {r.get('num_layers', 0):>3} "
            f"{'y' if r.get('reversible') else 'n':>3} "
            f"{_num(r.get('median_step_s') if ok else None, '8.3f'):>8} "
            f"{_num(r.get('tokens_per_s') if ok else None, '8.0f'):>8} "
            f"{_num(per_token, '7.3f'):>7} {_num(peak, '8.3f'):>8} "
            f"{_num(r.get('model_gflops'), '7.1f'):>7} {_num(r.get('pct_matmul'), '5.1f'):>5} "
            f"{_num(r.get('cpu_util') if ok else None, '4.2f'):>4}  {status}")


def _ok(rows, **want):
    return [r for r in rows if r.get("status") == "ok" and r.get("kind", "step") == "step"
            and all(r.get(k) == v for k, v in want.items())]


def _pick(rows, depth=None, **want):
    """The ok row matching `want`, at `depth` or (None) preferably TARGET_DEPTH layers."""
    found = _ok(rows, **want)
    if depth is not None:
        found = [r for r in found if r["num_layers"] == depth]
    found.sort(key=lambda r: (r["num_layers"] != TARGET_DEPTH, r["num_layers"]))
    return found[0] if found else None


def _pair(rows, a, b, **want):
    """(row a, row b) at the same depth (TARGET_DEPTH preferred): a, b dicts of criteria."""
    depths = sorted({r["num_layers"] for r in _ok(rows, **want, **a)},
                    key=lambda d: (d != TARGET_DEPTH, d))
    for d in depths:
        ra, rb = _pick(rows, d, **want, **a), _pick(rows, d, **want, **b)
        if ra and rb:
            return ra, rb
    return None, None


def side_by_side(rows):
    """Lines comparing ours (LSH) with each peer at equal mode / length / depth / reversible
    setting (rev "n": both run the reversible model with ordinary backprop)."""
    lines = []
    peers = sorted({r["impl"] for r in _ok(rows) if r["impl"] != "ours"})
    for peer in peers:
        lines.append(f"ours (lsh) vs {peer}:")
        lines.append(f"  {'mode':<6} {'tokens':>8} {'lay':>3} {'rev':>3} {'ours tok/s':>10} "
                     f"{'peer tok/s':>10} {'ratio':>6} {'ours GiB':>8} {'peer GiB':>8} "
                     f"{'ratio':>6}")
        for p in sorted(_ok(rows, impl=peer),
                        key=lambda r: (r["mode"], r["seq_len"], not r.get("reversible", True))):
            rev = p.get("reversible", True)
            o = _pick(rows, p["num_layers"], impl="ours", mode=p["mode"], seq_len=p["seq_len"],
                      attention="lsh", reversible=rev)
            if o is None:
                continue
            lines.append(
                f"  {p['mode']:<6} {p['seq_len']:>8} {p['num_layers']:>3} "
                f"{'y' if rev else 'n':>3} "
                f"{o['tokens_per_s']:>10.0f} {p['tokens_per_s']:>10.0f} "
                f"{o['tokens_per_s'] / p['tokens_per_s']:>6.2f} {o['peak_rss_gib']:>8.3f} "
                f"{p['peak_rss_gib']:>8.3f} {o['peak_rss_gib'] / p['peak_rss_gib']:>6.2f}")
    return lines


def _verdict(value, target, higher_better):
    if value is None:
        return "n/a"
    met = value >= target if higher_better else value <= target
    return f"{value:.3f} (target {'>=' if higher_better else '<='} {target}: " \
           f"{'met' if met else 'NOT met'})"


def _why_missing(rows, **want):
    bad = [r for r in rows if r.get("status") != "ok" and r.get("kind", "step") == "step"
           and all(r.get(k) == v for k, v in want.items())]
    return f" [{bad[-1]['status']}: {bad[-1].get('reason', '')[:80]}]" if bad else ""


def targets(rows):
    """The speed and memory targets, one line each, from whatever rows are present ("n/a"
    otherwise)."""
    lsh = dict(impl="ours", attention="lsh", reversible=True, mode="train")
    rp = dict(impl="reformer_pytorch", attention="lsh", mode="train", reversible=True)
    out = []
    for length in (4096, 16384):
        o, p = _pair(rows, lsh, rp, seq_len=length)
        value = o["tokens_per_s"] / p["tokens_per_s"] if o else None
        depth = f" ({o['num_layers']} layers)" if o else ""
        out.append(f"tokens/s ours / reformer_pytorch, train, {length} tokens{depth}: "
                   f"{_verdict(value, 1.5, True)}")
    o, p = _pair(rows, lsh, rp, seq_len=16384)
    out.append(f"peak memory ours / reformer_pytorch, train, 16384 tokens: "
               f"{_verdict(o['peak_rss_gib'] / p['peak_rss_gib'] if o else None, 0.8, False)}")
    a, b = _pick(rows, 12, seq_len=16384, **lsh), _pick(rows, 2, seq_len=16384, **lsh)
    out.append("reversible peak 12 layers / 2 layers, train, 16384 tokens: "
               + _verdict(a["peak_rss_gib"] / b["peak_rss_gib"] if a and b else None, 1.15,
                          False))
    o, p = _pair(rows, dict(lsh, seq_len=65536), dict(lsh, seq_len=1024))
    per_tok = o["median_step_s"] / 65536 / (p["median_step_s"] / 1024) if o else None
    out.append(f"LSH time per token 65536 / 1024 tokens, train: {_verdict(per_tok, 1.5, False)}"
               + _why_missing(rows, seq_len=65536, **lsh))
    full = dict(impl="ours", attention="full", reversible=True, mode="train")
    longest = sorted(_ok(rows, **full), key=lambda r: -r["seq_len"])
    for r in longest:
        base = _pick(rows, r["num_layers"], seq_len=1024, **full)
        if base and r["seq_len"] > 1024:
            growth = r["median_step_s"] / r["seq_len"] / (base["median_step_s"] / 1024)
            out.append(f"   full attention time per token {r['seq_len']} / 1024 tokens: "
                       f"{growth:.2f} ({r['num_layers']} layers)")
            break
    o, p = _pair(rows, lsh, full, seq_len=1024)
    out.append("step time LSH / full attention, train, 1024 tokens: " + (
        f"{o['median_step_s']:.3f} s / {p['median_step_s']:.3f} s = "
        f"{o['median_step_s'] / p['median_step_s']:.2f} ({o['num_layers']} layers)" if o
        else "n/a"))
    o = _pick(rows, 6, seq_len=1048576, **lsh)
    out.append("peak memory, 6 layers, train, 1048576 tokens (GiB): "
               + _verdict(o["peak_rss_gib"] if o else None, 16, False)
               + ("" if o else _why_missing(rows, seq_len=1048576, num_layers=6, **lsh)))
    o = _pick(rows, seq_len=16384, **lsh)
    if o and o.get("pct_matmul") is not None:
        out.append(f"model FLOP rate / matmul rate, train, 16384 tokens ({o['num_layers']} "
                   f"layers): {o['model_gflops']:.1f} / {o['matmul_gflops']:.1f} GFLOP/s = "
                   f"{_verdict(o['pct_matmul'] / 100, 0.4, True)}; with the reversible "
                   f"recompute (hardware FLOPs): {o['pct_matmul_hardware']:.1f}%")
    else:
        out.append("model FLOP rate / matmul rate, train, 16384 tokens: n/a")
    return out


def plots(rows, out_dir):
    """Writes scaling_memory_vs_length.png, scaling_time_per_token.png,
    scaling_memory_vs_depth.png and scaling_generation.png into `out_dir`; returns the paths."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
    from matplotlib import ticker  # pylint: disable=import-outside-toplevel
    os.makedirs(out_dir, exist_ok=True)
    ok = _ok(rows)

    def series(mode):
        groups = {}
        for r in ok:
            if r["mode"] == mode:
                name = (f"{r['impl']} {r['attention']} {r['num_layers']}L"
                        + ("" if r["reversible"] else " non-rev"))
                groups.setdefault(name, []).append(r)
        return {k: sorted(v, key=lambda r: r["seq_len"]) for k, v in sorted(groups.items())}

    paths = []

    def save(fig, name):
        path = os.path.join(out_dir, name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    specs = [("scaling_memory_vs_length.png", "peak RSS (GiB)",
              lambda r: r["peak_rss_gib"], "log"),
             ("scaling_time_per_token.png", "time per token (ms)",
              lambda r: 1e3 / r["tokens_per_s"], "linear")]
    for name, label, value, yscale in specs:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        for ax, mode in zip(axes, ("train", "infer")):
            for line, pts in series(mode).items():
                ax.plot([r["seq_len"] for r in pts], [value(r) for r in pts], marker="o",
                        label=line, linestyle="-" if line.startswith("ours") else "--")
            ax.set_xscale("log", base=2)
            ax.set_yscale(yscale)
            ax.yaxis.set_major_formatter(ticker.ScalarFormatter())
            ax.yaxis.set_minor_formatter(ticker.NullFormatter())
            ax.set_xlabel("sequence length (tokens)")
            ax.set_ylabel(label)
            ax.set_title(f"{mode} (batch 1)")
            ax.grid(True, which="both", alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        save(fig, name)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    train = [r for r in ok if r["mode"] == "train" and r["impl"] == "ours"]
    for length in sorted({r["seq_len"] for r in train}):
        for rev in (True, False):
            pts = sorted((r for r in train if r["seq_len"] == length and r["reversible"] == rev
                          and r["attention"] == "lsh"), key=lambda r: r["num_layers"])
            if len({r["num_layers"] for r in pts}) >= 2:
                ax.plot([r["num_layers"] for r in pts], [r["peak_rss_gib"] for r in pts], "o-",
                        label=f"{length} tokens, {'reversible' if rev else 'plain backprop'}")
    ax.set_xlabel("layers")
    ax.set_ylabel("peak RSS (GiB)")
    ax.set_title("train step memory vs depth (LSH)")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    save(fig, "scaling_memory_vs_depth.png")

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for line, pts in series("generate").items():
        ax.plot([r["seq_len"] for r in pts], [r["tokens_per_s"] for r in pts], "o-", label=line)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("cache length (tokens)")
    ax.set_ylabel("generated tokens / s")
    ax.set_title("cached generation")
    ax.grid(True, which="both", alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    save(fig, "scaling_generation.png")
    return paths


def report(rows, plots_dir):
    """Prints the table, the side-by-side comparison and the targets; writes the plots."""
    matmul = [r for r in rows if r.get("kind") == "matmul" and r.get("best_gflops")]
    rates = {r.get("run_id"): r["best_gflops"] for r in matmul}
    fallback = matmul[-1]["best_gflops"] if matmul else None
    steps = [r for r in rows if r.get("kind", "step") == "step"]
    for r in steps:
        add_flops(r, rates.get(r.get("run_id"), fallback))
    print("\n" + HEADER)
    modes = ("train", "infer", "generate")
    for r in sorted(steps, key=lambda r: (modes.index(r["mode"]), r["impl"] != "ours", r["impl"],
                                          r["attention"], r["num_layers"], not r["reversible"],
                                          r["seq_len"])):
        print(format_row(r))
    print("(ms/tok = 1000 / tok/s; %mm = model FLOP rate / matmul rate; cpu = process CPU "
          "seconds per wall second in the timed steps, < ~1.8 suggests a shared machine)")
    if matmul:
        print(f"\nmatmul rate (float32, best of {list(matmul[-1].get('shapes', {}))}): "
              f"{fallback} GFLOP/s; %mm = model FLOPs per second / that rate")
    settings = sorted({(bool(r.get("malloc_tuned")), bool(r.get("jit_compile")))
                       for r in steps if r["impl"] == "ours"})
    for tuned, jit in settings or [(False, False)]:
        group = [r for r in steps if bool(r.get("malloc_tuned")) == tuned
                 and (r["impl"] != "ours" or bool(r.get("jit_compile")) == jit)]
        print(f"\n== malloc_tuned={tuned}, jit_compile={jit} ==")
        for line in side_by_side(group) + targets(group):
            print(line)
    if plots_dir:
        for path in plots(steps, plots_dir):
            print("wrote", path)
