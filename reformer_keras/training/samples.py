"""Writes model samples during / after training: text (.txt), images (PNG grid), music (.mid +
piano-roll PNG), translations (.txt). Uses the zoo's samplers when the model has them
(`sample_images`, `sample_midi`, `reformer_keras.models.sampling.sample_tokens`), else a simple
uncached loop."""
import logging
import os
import weakref

import numpy as np

from reformer_keras.training.callbacks import atomic_write_text


_FORWARDS = weakref.WeakKeyDictionary()


def _forward(model):
    """A compiled (ids (B, T) int32, position ()) -> logits (B, V) at `position`."""
    if model not in _FORWARDS:
        import tensorflow as tf
        _FORWARDS[model] = tf.function(
            lambda ids, position: tf.gather(model(ids, training=False), position, axis=1))
    return _FORWARDS[model]


def _uncached(model, prompt, num_new, temperature=1.0, top_k=None, seed=None):
    """prompt int32 (B, P) -> (B, P + num_new).

    Simple uncached loop: one compiled forward over a fixed (B, P + num_new) buffer per new
    token (later positions hold pad 0; causal masking hides them, up to LSH bucketing).
    """
    ids = np.asarray(prompt, np.int32)
    batch, length = ids.shape
    buffer = np.zeros((batch, length + int(num_new)), np.int32)
    buffer[:, :length] = ids
    rng = np.random.default_rng(seed)
    forward = _forward(model)
    import tensorflow as tf
    for t in range(length, length + int(num_new)):
        logits = np.asarray(forward(tf.constant(buffer), tf.constant(t - 1)), np.float64) / max(temperature, 1e-6)
        if top_k:
            kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
            logits = np.where(logits < kth, -np.inf, logits)
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        buffer[:, t] = [rng.choice(len(p), p=p) for p in probs]
    return buffer


def sample_ids(model, prompt, num_new, temperature=1.0, top_k=None, seed=None):
    """int32 (B, P + num_new), clamped to the model's `max_len`; zoo sampler when present."""
    prompt = np.asarray(prompt, np.int32)
    limit = getattr(model, "max_len", None)
    if limit:
        num_new = max(0, min(int(num_new), int(limit) - prompt.shape[1]))
    try:
        from reformer_keras.models import sampling
        return np.asarray(sampling.sample_tokens(model, prompt, num_new, temperature=temperature,
                                                 top_k=top_k, seed=seed), np.int32)
    except Exception as err:  # noqa: BLE001  (zoo sampler absent or failing: use the loop)
        _warn_once(err)
        return _uncached(model, prompt, num_new, temperature, top_k, seed)


_WARNED = []


def _warn_once(err):
    if not _WARNED:
        _WARNED.append(err)
        logging.warning("zoo sampler unavailable (%s: %s); using the uncached sampling loop",
                        type(err).__name__, str(err).splitlines()[0][:200] if str(err) else "")


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
        path = stem + ".png"
        try:
            model.save_image_grid(path, num=4, seed=seed, scale=4)
        except Exception as err:  # noqa: BLE001  (no / failing zoo sampler)
            _warn_once(err)
            from reformer_keras import media
            ids = sample_ids(model, np.full((4, 1), 256, np.int32), info.seq_len - 1, seed=seed)
            pixels = np.concatenate([ids[:, 1:], ids[:, -1:]], axis=1)  # last value repeated
            images = np.clip(pixels, 0, 255).astype(np.uint8).reshape((4,) + info.image_shape)
            media.write_png_grid(images, path, scale=4)
        return [path]
    if task == "music":
        path = stem + ".mid"
        events = max(1, min(num_tokens, info.seq_len - 1))
        try:
            out = model.sample_midi(path, events, seed=seed)
            return [out["midi_path"], out["piano_roll_path"]]
        except Exception as err:  # noqa: BLE001  (no / failing zoo sampler)
            _warn_once(err)
        from reformer_keras import media
        from reformer_keras.tokenizers import MidiEventTokenizer
        tok = MidiEventTokenizer()
        ids = sample_ids(model, [[tok.eos_id]], events, seed=seed)[0, 1:]
        tok.write_midi(ids, path)
        return [path, media.write_piano_roll_png(ids, stem + ".png", tokenizer=tok)]
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
