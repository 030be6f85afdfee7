"""Writes model samples during / after training: text (.txt), images (PNG grid), music (.mid +
piano-roll PNG), translations (.txt), through the zoo's samplers (`sample_images`, `sample_midi`,
`translate`, and `reformer_keras.generation.generate` for text)."""
import os

import numpy as np

from reformer_keras.training.callbacks import atomic_write_text


def sample_ids(model, prompt, num_new, temperature=1.0, top_k=None, seed=None):
    """Cached sampling: int32 (B, P + num_new), num_new clamped to the model's `max_len`."""
    from reformer_keras.generation import generate  # pylint: disable=import-outside-toplevel
    prompt = np.asarray(prompt, np.int32)
    num_new = max(0, min(int(num_new), int(model.max_len) - prompt.shape[1]))
    return np.asarray(generate(model, prompt, num_new, temperature=temperature, top_k=top_k,
                               seed=seed), np.int32)


def write_samples(model, info, directory, tag, seed=0, num_tokens=256, tokenizer=None):
    """Writes one sample set for `info.task` into `directory`; returns the written paths.

    Args:
      model: the task model. info: `pipelines.DataInfo`. tag: file stem, e.g. "step-000500".
      num_tokens: new tokens for text / music samples (clamped to the model's max_len).
      tokenizer: the text tokenizer of the run (default ByteTokenizer).
    """
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, tag)
    task, modality = info.task, info.spec.modality
    if task == "classifier":
        return []
    if task == "image":
        return [model.save_image_grid(stem + ".png", num=4, seed=seed, scale=4)]
    if task == "music":
        events = max(1, min(num_tokens, info.seq_len - 1))
        out = model.sample_midi(stem + ".mid", events, seed=seed)
        return [out["midi_path"], out["piano_roll_path"]]
    from reformer_keras.tokenizers import ByteTokenizer
    tokenizer = tokenizer or ByteTokenizer()
    if task == "seq2seq":
        source = "Das Haus ist klein, aber sehr alt."
        enc = np.asarray(tokenizer.tokenize([source], add_eos=True).to_tensor(), np.int32)
        enc = np.pad(enc, [[0, 0], [0, max(0, info.seq_len - enc.shape[1])]])[:, :info.seq_len]
        out = model.translate(enc, min(num_tokens, info.seq_len - 1), start_id=tokenizer.pad_id,
                              end_id=tokenizer.eos_id)
        text = tokenizer.detokenize(out[0]).numpy().decode("utf-8", "replace")
        atomic_write_text(stem + ".txt", f"source: {source}\ntranslation: {text}\n")
        return [stem + ".txt"]
    if modality == "duplication":  # synthetic: print the ids; a good model repeats the word
        ids = sample_ids(model, [[0, 3, 1, 4, 1, 5, 0]], 5, temperature=0.0 + 1e-3, seed=seed)
        atomic_write_text(stem + ".txt", " ".join(map(str, ids[0])) + "\n")
        return [stem + ".txt"]
    ids = sample_ids(model, [[tokenizer.eos_id]], num_tokens, temperature=1.0, seed=seed)
    text = tokenizer.detokenize(ids[0]).numpy().decode("utf-8", "replace")
    atomic_write_text(stem + ".txt", text)
    return [stem + ".txt"]
