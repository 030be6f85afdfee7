"""Bach chorale samples of a `ReformerMusicGenerator` against held-out chorales and a bigram.

Three sets of pieces of the same length in MIDI events (`events`, default 511), all decoded by
the same `MidiEventTokenizer` (10 ms grid):
  held-out   the first `events` events of every validation and test chorale
  model      `count` samples of the trained model, each started from the eos token
  bigram     `count` samples of `EventBigram` fitted on the training chorales' event streams
             (each ending in eos), started from eos
`music_measures.compare_sets` gives each set's distance to the held-out set per measure.
"""

import os
import shutil
import time

import numpy as np

from reformer_keras.evaluation import music_measures
from reformer_keras.evaluation.event_bigram import EventBigram


def chorale_events(split, data_dir, dataset="bach_chorales"):
    """Event-id documents (int32 (n,), ending in eos) of every chorale of a split."""
    from reformer_keras.datasets.pipelines import load_examples, midi_to_events  # pylint: disable=import-outside-toplevel
    docs = [midi_to_events(ex["midi"]) for ex in load_examples(dataset, split, data_dir)
            .as_numpy_iterator()]
    return [d for d in docs if d.size > 1]


def train_music(model_dir, data_dir, steps, max_minutes, seed=0, quick=False, resume=False):
    """Trains the gallery's music model with `loop.train`; returns the training record.

    `resume`: continue the run in `model_dir` (same flags) up to `steps` instead of starting
    afresh (`loop.train` resumes from model_dir/backup)."""
    from reformer_keras.training.loop import TrainConfig, train  # pylint: disable=import-outside-toplevel
    if not resume:
        shutil.rmtree(model_dir, ignore_errors=True)
    overrides = (dict(d_model=16, num_layers=2, d_ff=32, bucket_size=8) if quick else
                 dict(d_model=128, num_layers=2, num_heads=2, d_ff=512, bucket_size=32,
                      num_hashes=2))
    cfg = TrainConfig(task="music", dataset="bach_chorales/tiny" if quick else "bach_chorales",
                      preset="tiny_music", data_dir=data_dir, model_dir=model_dir,
                      seq_len=64 if quick else 512, batch_size=8, steps=steps,
                      steps_per_epoch=min(100, steps), learning_rate=2e-3, schedule="cosine",
                      warmup_steps=min(100, max(1, steps // 4)), jit_compile=not quick,
                      seed=seed, max_minutes=max_minutes, sample_every=0,
                      eval_steps=0 if quick else 8, verbose=2, export=False,
                      overrides=overrides)
    start = time.perf_counter()
    summary = train(cfg)
    logs = summary["logs"]
    return dict(preset="tiny_music", overrides=overrides, seq_len=cfg.seq_len, resumed=resume,
                batch_size=cfg.batch_size, steps=summary["step"], planned_steps=steps,
                stopped_by=summary["stopped_by"],
                train_seconds=round(time.perf_counter() - start, 1),
                train_bits_per_token=logs.get("bits_per_token"),
                val_bits_per_token=logs.get("val_bits_per_token"))


def sample_model(model, count, events, seed=0, temperature=1.0):
    """`count` event-id pieces (int32 (events,)) of the model, batched from the eos token."""
    from reformer_keras.models import sampling  # pylint: disable=import-outside-toplevel
    prompt = np.full((count, 1), model.start_id, np.int32)
    ids = sampling.sample_tokens(model, prompt, events, temperature=temperature, seed=seed)
    return [row[1:] for row in ids]


def compare(model, data_dir, out_dir, count=32, events=511, seed=0, dataset="bach_chorales"):
    """Writes the model's and the bigram's first sample (.mid + piano roll) into out_dir and
    returns the measures of the three sets and their distances to the held-out set."""
    tokenizer = model.tokenizer
    start = time.perf_counter()
    held_out = [d[:events] for split in ("validation", "test")
                for d in chorale_events(split, data_dir, dataset)]
    bigram = EventBigram(tokenizer.vocab_size).fit(chorale_events("train", data_dir, dataset))
    pieces = {
        "held_out": held_out,
        "model": sample_model(model, count, events, seed=seed),
        "bigram": [bigram.sample(tokenizer.eos_id, events, seed=seed + i) for i in range(count)],
    }
    os.makedirs(out_dir, exist_ok=True)
    files = {}
    for name, stem in (("model", "bach_chorale"), ("bigram", "bach_bigram")):
        path = os.path.join(out_dir, stem + ".mid")
        tokenizer.write_midi(pieces[name][0], path)
        from reformer_keras import media  # pylint: disable=import-outside-toplevel
        media.write_piano_roll_png(pieces[name][0], os.path.join(out_dir, stem + ".png"),
                                   tokenizer=tokenizer)
        files[name] = [path, os.path.join(out_dir, stem + ".png")]
    measures = {k: music_measures.set_measures([tokenizer.decode(p) for p in v])
                for k, v in pieces.items()}
    distances = {k: music_measures.compare_sets(measures[k], measures["held_out"])
                 for k in ("model", "bigram")}
    closer = [m for m in music_measures.MEASURES
              if distances["model"][m] < distances["bigram"][m]]
    return dict(events=events, samples=count, held_out_pieces=len(held_out),
                summary={k: _rounded(music_measures.summarize(v)) for k, v in measures.items()},
                distance_to_held_out={k: _rounded(v) for k, v in distances.items()},
                model_closer_on=closer,
                model_closer_on_most=len(closer) > len(music_measures.MEASURES) / 2,
                files=files, seconds=round(time.perf_counter() - start, 1))


def _rounded(d):
    return {k: (np.round(v, 4).tolist() if isinstance(v, (list, float)) else v)
            for k, v in d.items()}
