"""Writes model samples during / after training: text (.txt), images (PNG grid), music (.mid +
piano-roll PNG), translations (.txt), through the zoo's samplers (`sample_images`, `sample_midi`,
`translate`, and `reformer_keras.generation.generate` for text)."""
import os

import numpy as np

from reformer_keras.training.callbacks import atomic_write_text


def sample_ids(model, prompt, num_new, temperature=1.0, top_k=None, seed=None, top_p=None):
    """Cached sampling: int32 (B, P + num_new), num_new clamped to the model's `max_len`."""
    from reformer_keras.generation import generate  # pylint: disable=import-outside-toplevel
    prompt = np.asarray(prompt, np.int32)
    num_new = max(0, min(int(num_new), int(model.max_len) - prompt.shape[1]))
    return np.asarray(generate(model, prompt, num_new, temperature=temperature, top_k=top_k,
                               top_p=top_p, seed=seed), np.int32)


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
        classes = getattr(model, "num_classes", None)
        return [model.save_image_grid(stem + ".png", num=4, seed=seed, scale=4, class_ids=(
            [i % classes for i in range(4)] if classes else None))]
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


def write_prompted_samples(model, info, directory, tag, tokenizer=None, prompt="",
                           max_new_tokens=256, temperature=1.0, top_k=None, top_p=None,
                           num_samples=1, seed=0, class_label=None, prompt_midi=None):
    """`num_samples` samples continuing a prompt; returns the written paths.

    Text: `prompt` (str) continued by `max_new_tokens` tokens -> <tag>.txt (samples separated
    by a line "----- sample i -----"). Images: a PNG grid of `num_samples` images, of class
    `class_label` (an index) for a class-conditional model. Music: `prompt_midi` (a .mid path,
    optional; its first max_len // 2 events) continued by `max_new_tokens` events -> <tag>-<i>.mid + piano-roll PNG each.
    Raises ValueError for a prompt that leaves no room before the model's max_len, or a class
    label out of range.
    """
    os.makedirs(directory, exist_ok=True)
    stem = os.path.join(directory, tag)
    kwargs = dict(temperature=temperature, top_k=top_k, top_p=top_p)
    if info.task == "classifier":
        raise ValueError("a classifier does not sample; use trainers.evaluate")
    if info.task == "seq2seq" or info.spec.modality == "duplication":  # fixed prompts
        return write_samples(model, info, directory, tag, seed=seed, num_tokens=max_new_tokens,
                             tokenizer=tokenizer)
    if info.task == "image":
        class_ids = None
        if class_label is not None:
            if not getattr(model, "num_classes", None):
                raise ValueError("--class_label needs a class-conditional model (this one has "
                                 "no classes)")
            if not 0 <= int(class_label) < model.num_classes:
                raise ValueError(f"--class_label={class_label} is out of range [0, "
                                 f"{model.num_classes})")
            class_ids = [int(class_label)] * num_samples
        elif getattr(model, "num_classes", None):
            class_ids = [i % model.num_classes for i in range(num_samples)]
        return [model.save_image_grid(stem + ".png", num=num_samples, seed=seed,
                                      class_ids=class_ids, scale=4, **kwargs)]
    if info.task == "music":
        events = np.zeros([0], np.int32)
        if prompt_midi:
            import pretty_midi
            try:
                events = model.tokenizer.encode(pretty_midi.PrettyMIDI(prompt_midi))
            except Exception as err:  # noqa: BLE001  (mido raises many types)
                raise ValueError(f"--prompt_midi {prompt_midi} is not a readable MIDI file "
                                 f"({type(err).__name__})") from None
            events = np.asarray(events, np.int32)
            events = events[events != model.tokenizer.eos_id][:int(model.max_len) // 2]
        room = int(model.max_len) - 1 - len(events)
        if room < 1:
            raise ValueError(f"the prompt has {len(events)} events; the model's max_len is "
                             f"{model.max_len}")
        paths = []
        for i in range(num_samples):
            out = model.sample_midi(f"{stem}-{i}.mid", min(int(max_new_tokens), room),
                                    seed=seed + i, prompt=events, **kwargs)
            paths += [out["midi_path"], out["piano_roll_path"]]
        return paths
    from reformer_keras.tokenizers import ByteTokenizer
    tokenizer = tokenizer or ByteTokenizer()
    ids = [tokenizer.eos_id] + [int(t) for t in np.asarray(tokenizer.tokenize(prompt or ""))]
    room = int(model.max_len) - len(ids)
    if room < 1:
        raise ValueError(f"--prompt is {len(ids) - 1} tokens; the model's max_len is "
                         f"{model.max_len}")
    out = sample_ids(model, [ids] * num_samples, min(int(max_new_tokens), room), seed=seed,
                     **kwargs)
    texts = [tokenizer.detokenize(row).numpy().decode("utf-8", "replace") for row in out]
    body = "".join(f"----- sample {i} -----\n{t}\n" for i, t in enumerate(texts))
    atomic_write_text(stem + ".txt", body)
    return [stem + ".txt"]
