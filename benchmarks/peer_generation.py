"""Hugging Face Reformer cached generation, timed: the peer half of `benchmarks.generation_speed`.

Runs with the peer virtualenv's Python, standalone (no TensorFlow, no reformer_keras; set-up in
`benchmarks/peers.py`):

    /tmp/peers/venv/bin/python benchmarks/peer_generation.py --prompt=5,17,... --total_len=2048

Model: `transformers.ReformerModelWithLMHead`, randomly initialised after
`torch.manual_seed(--seed)`, attn_layers cycling `--attention_types` ("local" / "lsh") over
`--num_layers`, hidden_size d_model, attention_head_size d_model / num_heads, feed_forward_size
d_ff (GELU), local and LSH chunk length `--chunk` with one chunk before, `--num_buckets` x
`--num_hashes`, axial positions of shape (a, b), a * b = total_len (per-axis widths d_model / 2),
vocabulary `--vocab_size`, is_decoder, all dropouts 0, no end-of-sequence token (every run
generates the requested count), eval mode, float32, `torch.set_num_threads(--threads)`.

Timing: one warm-up `generate` of `--warmup_tokens` new tokens, then one timed
`generate(prompt, do_sample=True, top_k=40, use_cache=True, max_length=total_len)` (prefill of
the prompt included), under `torch.no_grad()`.

`--save_dir`: also writes the model there with `save_pretrained` (config.json +
model.safetensors), which `reformer_keras.models.from_hf` converts. `--greedy_tokens=N`: also
records greedy (do_sample=False) continuations of the prompt, N new tokens, with and without
Hugging Face's cache.

Prints one JSON line: new_tokens, seconds, cpu_s (process CPU seconds, all threads), tokens_per_s, ids (the timed output, prompt included),
greedy_cached / greedy_uncached (if asked), config, versions, env (MALLOC_* variables), threads.
"""

import argparse
import json
import os
import time

from peers import versions  # this script's folder is on sys.path (run as a script)


def axial_shape(length):
    """(a, b), a * b == length, a the largest power of two <= sqrt(length) dividing it."""
    a = 2 ** (max(length.bit_length() - 1, 1) // 2)
    while length % a:
        a //= 2
    return a, length // a


def hf_config(args):
    """The `ReformerConfig` keyword arguments of the benchmark model."""
    types = args.attention_types.split(",")
    return dict(
        vocab_size=args.vocab_size, hidden_size=args.d_model,
        num_attention_heads=args.num_heads, attention_head_size=args.d_model // args.num_heads,
        attn_layers=[types[i % len(types)] for i in range(args.num_layers)],
        feed_forward_size=args.d_ff, hidden_act="gelu", hidden_dropout_prob=0.0,
        lsh_attention_probs_dropout_prob=0.0, local_attention_probs_dropout_prob=0.0,
        local_attn_chunk_length=args.chunk, lsh_attn_chunk_length=args.chunk,
        local_num_chunks_before=1, local_num_chunks_after=0, lsh_num_chunks_before=1,
        lsh_num_chunks_after=0, num_buckets=args.num_buckets, num_hashes=args.num_hashes,
        hash_seed=args.seed, is_decoder=True, use_cache=True, axial_pos_embds=True,
        axial_pos_shape=list(axial_shape(args.total_len)),
        axial_pos_embds_dim=[args.d_model // 2, args.d_model - args.d_model // 2],
        max_position_embeddings=args.total_len, chunk_size_feed_forward=0,
        chunk_size_lm_head=0, pad_token_id=0, eos_token_id=None, tie_word_embeddings=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompt", required=True, help="comma-separated token ids (batch 1)")
    parser.add_argument("--total_len", type=int, default=2048)
    parser.add_argument("--attention_types", default="local,lsh")
    parser.add_argument("--num_layers", type=int, default=4)
    parser.add_argument("--d_model", type=int, default=128)
    parser.add_argument("--num_heads", type=int, default=4)
    parser.add_argument("--d_ff", type=int, default=256)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--num_buckets", type=int, default=32)
    parser.add_argument("--num_hashes", type=int, default=2)
    parser.add_argument("--vocab_size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warmup_tokens", type=int, default=16)
    parser.add_argument("--save_dir", default=None)
    parser.add_argument("--greedy_tokens", type=int, default=0)
    args = parser.parse_args()

    import torch  # pylint: disable=import-outside-toplevel
    from transformers import ReformerConfig, ReformerModelWithLMHead  # noqa
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    config = hf_config(args)
    model = ReformerModelWithLMHead(ReformerConfig(**config)).eval()
    if args.save_dir:
        model.save_pretrained(args.save_dir)
    prompt = torch.tensor([[int(t) for t in args.prompt.split(",")]], dtype=torch.long)
    length = prompt.shape[1]
    new_tokens = args.total_len - length
    common = dict(use_cache=True, pad_token_id=0, eos_token_id=None)
    record = dict(impl="hf_generate", new_tokens=new_tokens, prompt_len=length, batch=1,
                  threads=torch.get_num_threads(), config=config, versions=versions(),
                  env={k: v for k, v in os.environ.items() if k.startswith("MALLOC_")})
    with torch.no_grad():
        model.generate(prompt, do_sample=True, top_k=40,
                       max_length=length + min(args.warmup_tokens, new_tokens), **common)
        start, cpu = time.perf_counter(), time.process_time()
        ids = model.generate(prompt, do_sample=True, top_k=40, max_length=args.total_len,
                             **common)
        seconds = time.perf_counter() - start
        record.update(seconds=round(seconds, 4), tokens_per_s=round(new_tokens / seconds, 2),
                      cpu_s=round(time.process_time() - cpu, 4), ids=ids[0].tolist())
        if args.greedy_tokens:
            for cached in (True, False):
                out = model.generate(prompt, do_sample=False, max_length=length +
                                     args.greedy_tokens, **dict(common, use_cache=cached))
                record["greedy_cached" if cached else "greedy_uncached"] = out[0].tolist()
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
