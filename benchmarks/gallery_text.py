"""The gallery's text model: a byte-level `ReformerLM` on `shakespeare_plays`, its validation
bits per character and four samples.

Model: preset tiny_text at the parity text suite's sizes (2 layers local/LSH, d_model 128,
2 heads, d_ff 512, 256 bytes), batch 16, learning rate 2e-3 with rsqrt decay after 100 warm-up
steps, trained until the time limit. Validation: `evaluate_checkpoint` on 50 batches of the
validation split. Samples: 4 x 255 bytes from the eos token, temperature 0.8 (cached generation).
"""

import os
import shutil
import time

import numpy as np

OVERRIDES = dict(d_model=128, num_heads=2, d_ff=512)
SEQ_LEN, BATCH, EVAL_BATCHES = 256, 16, 50


def train_text(model_dir, data_dir, minutes, seed=0, quick=False):
    from reformer_keras.training.loop import TrainConfig, train  # pylint: disable=import-outside-toplevel
    shutil.rmtree(model_dir, ignore_errors=True)
    cfg = TrainConfig(task="lm", dataset="shakespeare_plays", preset="tiny_text",
                      data_dir=data_dir, model_dir=model_dir, seq_len=SEQ_LEN, batch_size=BATCH,
                      steps=20 if quick else 1_000_000, steps_per_epoch=20 if quick else 200,
                      learning_rate=2e-3, schedule="rsqrt", warmup_steps=100,
                      jit_compile=not quick, seed=seed, max_minutes=minutes, sample_every=0,
                      eval_steps=0, verbose=2, export=False, overrides=dict(OVERRIDES))
    summary = train(cfg)
    return dict(preset="tiny_text", overrides=OVERRIDES, seq_len=SEQ_LEN, batch_size=BATCH,
                steps=summary["step"], stopped_by=summary["stopped_by"], max_minutes=minutes,
                train_seconds=summary["wall_seconds"],
                train_bits_per_char=summary["logs"].get("bits_per_char"))


def write_samples(model, path, header, num=4, seed=0, temperature=0.8):
    """Writes `num` samples of model.max_len - 1 bytes from the eos token; returns them."""
    from reformer_keras.tokenizers import ByteTokenizer  # pylint: disable=import-outside-toplevel
    from reformer_keras.training.samples import sample_ids  # pylint: disable=import-outside-toplevel
    tokenizer = ByteTokenizer()
    ids = sample_ids(model, np.full((num, 1), tokenizer.eos_id), model.max_len - 1,
                     temperature=temperature, seed=seed)
    texts = [tokenizer.detokenize(row[1:]).numpy().decode("utf-8", "replace") for row in ids]
    parts = [header] + [f"----- sample {i + 1} (seed {seed}, row {i}) -----\n{t}\n"
                        for i, t in enumerate(texts)]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(parts))
    return texts


def run(model_dir, data_dir, sample_path, minutes, seed=0, quick=False, reuse=False):
    """Trains (unless `reuse`), evaluates and samples; returns the ledger fields."""
    from reformer_keras.training.loop import evaluate_checkpoint, load_checkpoint  # pylint: disable=import-outside-toplevel
    record = dict(dataset="shakespeare_plays")
    if not reuse:
        record["training"] = train_text(model_dir, data_dir, minutes, seed=seed, quick=quick)
    start = time.perf_counter()
    result = evaluate_checkpoint(model_dir, "shakespeare_plays", "lm", split="validation",
                                 seq_len=SEQ_LEN, batch_size=BATCH,
                                 steps=2 if quick else EVAL_BATCHES, data_dir=data_dir,
                                 verbose=0)
    record.update(val_bits_per_char=round(result["bits_per_char"], 4),
                  eval_batches=2 if quick else EVAL_BATCHES,
                  eval_seconds=round(time.perf_counter() - start, 1))
    model, ckpt = load_checkpoint(model_dir)
    header = (f"# Byte-level samples of the gallery text model ({os.path.basename(ckpt)}: preset "
              f"tiny_text, d_model {model.backbone.d_model}, trained on shakespeare_plays; "
              f"validation {record['val_bits_per_char']} bits/char), each started from the "
              f"eos token, temperature 0.8.\n# Written by `python -m benchmarks.gallery "
              f"--only=text`.\n")
    texts = write_samples(model, sample_path, header, num=2 if quick else 4, seed=seed)
    record.update(sample_file=sample_path, sample_temperature=0.8, sample_excerpt=texts[0][:200])
    return record
