"""PyTorch peer Reformers timed on the peer configuration: one (impl, length, depth, mode) per run.

Runs with the peer virtualenv's Python, standalone (no TensorFlow, no reformer_keras):

    /tmp/peers/venv/bin/python benchmarks/peers.py --impl=reformer_pytorch --seq_len=4096
    /tmp/peers/venv/bin/python benchmarks/peers.py --impl=hf --seq_len=16384 --mode=infer
    /tmp/peers/venv/bin/python benchmarks/peers.py --impl=torch_full --seq_len=4096

Set-up of that virtualenv (CPU torch, pinned):
    python3 -m venv /tmp/peers/venv
    /tmp/peers/venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
    /tmp/peers/venv/bin/pip install reformer-pytorch==1.4.4 transformers==5.24.0

Models (the peer configuration of `benchmarks/common.py`): causal byte LM, vocab 256, d_model
256, 4 heads x 64, d_ff 1024 (GELU), LSH bucket / chunk 64 with one chunk back, 2 hash rounds,
num_buckets = L / 64, reversible residuals, feed-forward in chunks of 128 tokens, axial positions
(a, b) with a * b = L as in `common.build_lm` (HF: dims (64, 192) concatenated; lucidrains:
summed), no dropout, float32, batch 1.
  * reformer_pytorch: `reformer_pytorch.ReformerLM` (lucidrains).
  * hf: `transformers.ReformerModelWithLMHead` (loss computed outside, like the other one).
  * torch_full: what a user without a Reformer picks: a plain pre-norm causal Transformer of
    the same sizes (not reversible, feed-forward unchunked, fixed sinusoidal positions) whose
    attention is PyTorch's fused `F.scaled_dot_product_attention(is_causal=True)` (on the CPU
    a flash-attention kernel: no (L, L) tensor).

A train step is zero_grad + forward + cross-entropy(logits[:, :-1], x[:, 1:]) + backward +
Adam(lr 1e-4) step; an infer step is a `torch.no_grad()` forward to all logits in eval mode.
`torch.set_num_threads(--threads)` (2). One JSON line is printed after the model is built and
after every step (so a parent that kills a slow run still has the peak so far); the last line
has status "ok" and: step_times_s (timed steps), median_step_s, tokens_per_s = L / median,
peak_rss_gib (VmHWM of this process, GiB), rss_after_build_gib, cpu_util (process CPU
seconds / wall seconds over the timed steps; 2.0 = both cores busy), n_params, versions, env.
"""

import argparse
import json
import os
import platform
import resource
import statistics
import time

VOCAB, D_MODEL, HEADS, HEAD_DIM, D_FF, BUCKET, HASHES = 256, 256, 4, 64, 1024, 64, 2


def axial_shape(seq_len):
    """(a, b), a * b >= seq_len, as `benchmarks.common.build_lm` picks it."""
    a = 2 ** (max(seq_len.bit_length() - 1, 1) // 2)
    return a, -(-seq_len // a)


def peak_rss_gib():
    """VmHWM of this program, GiB (`ru_maxrss` would include the parent's peak: Linux keeps it
    across execve)."""
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 2**20


def current_rss_gib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**30


def build(impl, seq_len, depth, ff_chunk, reversible=True):
    """Returns (model, forward: ids (1, L) int64 -> logits (1, L, 256) float32, config dict)."""
    shape = axial_shape(seq_len)
    if impl == "reformer_pytorch":
        from reformer_pytorch import ReformerLM  # pylint: disable=import-outside-toplevel
        if seq_len % (2 * BUCKET):
            raise ValueError(f"reformer_pytorch needs seq_len % {2 * BUCKET} == 0")
        ff_chunks = max(1, seq_len // ff_chunk)
        model = ReformerLM(
            num_tokens=VOCAB, dim=D_MODEL, depth=depth, max_seq_len=seq_len, heads=HEADS,
            dim_head=HEAD_DIM, bucket_size=BUCKET, n_hashes=HASHES, ff_chunks=ff_chunks,
            ff_mult=D_FF // D_MODEL, causal=True, lsh_dropout=0.0, ff_dropout=0.0,
            post_attn_dropout=0.0, layer_dropout=0.0, axial_position_emb=True,
            # reverse_thres 0: always reversible; >= seq_len: its ordinary-backprop blocks
            axial_position_shape=shape, reverse_thres=0 if reversible else seq_len)
        return model, model, dict(n_buckets=seq_len // BUCKET, ff_chunks=ff_chunks,
                                  axial_shape=shape, positions="axial, summed")
    if impl == "hf":
        if not reversible:
            raise ValueError("hf has no ordinary-backprop option for its reversible layers")
        from transformers import ReformerConfig, ReformerModelWithLMHead  # noqa
        if seq_len % BUCKET or shape[0] * shape[1] != seq_len:
            raise ValueError("hf training needs seq_len = prod(axial shape), a multiple of 64")
        cfg = ReformerConfig(
            vocab_size=VOCAB, hidden_size=D_MODEL, num_attention_heads=HEADS,
            attention_head_size=HEAD_DIM, attn_layers=["lsh"] * depth, feed_forward_size=D_FF,
            hidden_act="gelu", hidden_dropout_prob=0.0, lsh_attention_probs_dropout_prob=0.0,
            local_attention_probs_dropout_prob=0.0, lsh_attn_chunk_length=BUCKET,
            lsh_num_chunks_before=1, lsh_num_chunks_after=0, num_hashes=HASHES,
            num_buckets=seq_len // BUCKET, is_decoder=True, use_cache=False,
            axial_pos_embds=True, axial_pos_shape=shape, axial_pos_embds_dim=(64, 192),
            max_position_embeddings=seq_len, chunk_size_feed_forward=ff_chunk,
            chunk_size_lm_head=0, pad_token_id=0, eos_token_id=2, tie_word_embeddings=False)
        model = ReformerModelWithLMHead(cfg)

        def forward(ids):
            return model(input_ids=ids, use_cache=False, return_dict=True).logits
        return model, forward, dict(num_buckets=seq_len // BUCKET, chunk_size_feed_forward=ff_chunk,
                                    axial_shape=shape, positions="axial (64, 192), concatenated")
    if impl == "torch_full":
        return _torch_full(depth)
    raise ValueError(f"unknown impl {impl!r}")


def _torch_full(depth):
    """The torch_full peer (see the module docstring); written by hand rather than with
    nn.TransformerEncoder, which materialises the (L, L) causal mask as floats every call."""
    import torch  # pylint: disable=import-outside-toplevel
    from torch import nn  # pylint: disable=import-outside-toplevel
    import torch.nn.functional as F  # pylint: disable=import-outside-toplevel

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(D_MODEL), nn.LayerNorm(D_MODEL)
            self.qkv = nn.Linear(D_MODEL, 3 * HEADS * HEAD_DIM)
            self.proj = nn.Linear(HEADS * HEAD_DIM, D_MODEL)
            self.ff = nn.Sequential(nn.Linear(D_MODEL, D_FF), nn.GELU(), nn.Linear(D_FF, D_MODEL))

        def forward(self, h):
            b, n, _ = h.shape
            q, k, v = self.qkv(self.ln1(h)).view(b, n, 3, HEADS, HEAD_DIM).permute(2, 0, 3, 1, 4)
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            h = h + self.proj(a.transpose(1, 2).reshape(b, n, HEADS * HEAD_DIM))
            return h + self.ff(self.ln2(h))

    class FullLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(VOCAB, D_MODEL)
            self.blocks = nn.ModuleList([Block() for _ in range(depth)])
            self.norm, self.out = nn.LayerNorm(D_MODEL), nn.Linear(D_MODEL, VOCAB)
            inv = 1.0 / (10000 ** (torch.arange(0, D_MODEL, 2).float() / D_MODEL))
            self.register_buffer("inv_freq", inv, persistent=False)

        def forward(self, x):
            s = torch.einsum("i,j->ij", torch.arange(x.shape[1], dtype=torch.float32),
                             self.inv_freq)
            h = self.emb(x) + torch.cat((s.sin(), s.cos()), dim=-1)
            for blk in self.blocks:
                h = blk(h)
            return self.out(self.norm(h))

    model = FullLM()
    return model, model, dict(attention="F.scaled_dot_product_attention(is_causal=True)",
                              positions="fixed sinusoidal", reversible=False, ff_chunking=False)


def versions():
    from importlib import metadata  # pylint: disable=import-outside-toplevel
    out = {"python": platform.python_version()}
    for dist in ("torch", "transformers", "reformer-pytorch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            pass
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", default="reformer_pytorch",
                        choices=["reformer_pytorch", "hf", "torch_full"])
    parser.add_argument("--seq_len", type=int, default=4096)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--mode", default="train", choices=["train", "infer"])
    parser.add_argument("--steps", type=int, default=2, help="minimum timed steps")
    parser.add_argument("--max_steps", type=int, default=8)
    parser.add_argument("--min_time_s", type=float, default=10.0,
                        help="keep stepping (up to --max_steps) until this much is timed")
    parser.add_argument("--warmup", type=int, default=2,
                        help="untimed steps (fewer when one is longer than --long_step_s)")
    parser.add_argument("--long_step_s", type=float, default=120.0,
                        help="a warm-up step longer than this: time one step only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ff_chunk", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reversible", type=int, default=1, choices=[0, 1],
                        help="0: reformer_pytorch's reverse_thres above the length (same model, "
                             "ordinary backprop: activations kept, no recompute)")
    args = parser.parse_args()

    import torch  # pylint: disable=import-outside-toplevel
    import torch.nn.functional as F  # pylint: disable=import-outside-toplevel
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    full = args.impl == "torch_full"
    record = dict(impl=args.impl, mode=args.mode, seq_len=args.seq_len, num_layers=args.depth,
                  attention="full" if full else "lsh",
                  reversible=bool(args.reversible) and not full, batch=1,
                  threads=torch.get_num_threads(),
                  versions=versions(),
                  env={k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "OMP_"))})

    def emit(status, **extra):
        record.update(extra, status=status, peak_rss_gib=round(peak_rss_gib(), 3))
        print(json.dumps(record), flush=True)

    model, forward, info = build(args.impl, args.seq_len, args.depth, args.ff_chunk,
                                 bool(args.reversible))
    record.update(config=info, n_params=sum(p.numel() for p in model.parameters()))
    ids = torch.randint(0, VOCAB, (1, args.seq_len), generator=torch.Generator().manual_seed(0))
    if args.mode == "train":
        model.train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            logits = forward(ids)
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
            loss.backward()
            opt.step()
            return float(loss.detach())
    else:
        model.eval()

        def step():
            with torch.no_grad():
                return float(forward(ids)[0, -1, 0])
    emit("running", rss_after_build_gib=round(current_rss_gib(), 3))

    warm = []
    while len(warm) < args.warmup and not (warm and max(warm) > args.long_step_s):
        start = time.perf_counter()
        step()
        warm.append(round(time.perf_counter() - start, 3))
        emit("running", warmup_s=warm)
    times, max_steps = [], args.max_steps
    if warm and max(warm) > args.long_step_s:
        max_steps = 1
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while len(times) < min(args.steps, max_steps) or (
            sum(times) < args.min_time_s and len(times) < max_steps):
        start = time.perf_counter()
        value = step()
        times.append(round(time.perf_counter() - start, 3))
        emit("running", step_times_s=times, last_value=value)
    median = statistics.median(times)
    emit("ok", step_times_s=times, median_step_s=round(median, 4), min_step_s=min(times),
         tokens_per_s=round(args.seq_len / median, 1),
         cpu_util=round((time.process_time() - cpu0) / (time.perf_counter() - wall0), 2))


if __name__ == "__main__":
    main()
