"""`ReformerMusicGenerator`: a causal Reformer LM over MIDI performance events."""

import os

import keras
import numpy as np

from reformer_keras import media
from reformer_keras.models import sampling
from reformer_keras.models.reformer_lm import ReformerLM
from reformer_keras.models.reformer_music_preprocessor import as_midi_tokenizer


@keras.saving.register_keras_serializable(package="reformer_keras")
class ReformerMusicGenerator(ReformerLM):
    """`ReformerLM` whose vocabulary is a `MidiEventTokenizer`'s (390 ids by default).

    Sequences are `ReformerMusicPreprocessor` windows: [start = eos id] + events + [eos].

    Args:
      d_model, num_layers, num_heads, d_ff and the `ReformerBackbone` options, or `config`
        (a `ReformerConfig` whose vocab_size is the tokenizer's).
      tokenizer: a `MidiEventTokenizer` or its config (default `MidiEventTokenizer()`);
        vocab_size is the tokenizer's.

    Call: as `ReformerLM`: token ids (B, L) -> logits (B, L, vocab_size) float32.
    """

    def __init__(self, *args, tokenizer=None, config=None, **kwargs):
        if len(args) == 5:  # d_model, num_layers, num_heads, d_ff, tokenizer
            *args, tokenizer = args
        if len(args) > 4:
            raise TypeError("ReformerMusicGenerator takes at most 5 positional arguments "
                            f"(d_model, num_layers, num_heads, d_ff, tokenizer), got {len(args)}.")
        tokenizer = as_midi_tokenizer(tokenizer)
        vocab_size = config.vocab_size if config is not None else kwargs.pop(
            "vocab_size", tokenizer.vocab_size)
        if vocab_size != tokenizer.vocab_size:
            raise ValueError(f"`vocab_size` {vocab_size} differs from the tokenizer's "
                             f"{tokenizer.vocab_size}.")
        if config is None:  # positional arguments: d_model, num_layers, num_heads, d_ff
            kwargs.update(zip(("d_model", "num_layers", "num_heads", "d_ff"), args),
                          vocab_size=vocab_size)
        elif args:
            raise ValueError("ReformerMusicGenerator: pass either `config` or the model "
                             "options, not both.")
        super().__init__(config=config, **kwargs)
        self.tokenizer = tokenizer

    @property
    def start_id(self):
        return self.tokenizer.eos_id

    def sample_events(self, num_events, seed=None, prompt=None, temperature=1.0, top_k=None,
                      top_p=None, use_cache=True):
        """Event ids of a sampled piece: int32 (len(prompt) + num_events,) (no start token).

        prompt: optional 1-D event ids (e.g. `tokenizer.encode(pm)`) continued by the model.
        Uses `reformer_keras.generation.generate` when present and `use_cache`, else the
        uncached loop.
        """
        if isinstance(num_events, bool) or not isinstance(num_events, (int, np.integer)) or \
                num_events < 1:
            raise ValueError(f"`num_events` must be a positive integer, got {num_events!r}.")
        if prompt is None:
            prompt = np.zeros((0,), np.int32)
        prompt = np.asarray(prompt)
        if prompt.ndim != 1:
            raise ValueError(f"`prompt` must be 1-D event ids, got shape {prompt.shape}.")
        if prompt.size and prompt.dtype.kind not in "iu":
            raise ValueError(f"`prompt` must be integer event ids, got dtype {prompt.dtype}.")
        full = np.concatenate([[self.start_id], prompt]).astype(np.int64)[None]
        full = sampling.check_prompt(full, self.vocab_size, name="prompt")
        if full.shape[1] + num_events > self.max_len:
            raise ValueError(f"1 (start) + {prompt.size} (prompt) + {num_events} events exceeds "
                             f"the model's max_len {self.max_len}.")
        ids = sampling.sample_tokens(self, full, num_events, temperature=temperature,
                                     top_k=top_k, top_p=top_p, seed=seed, use_cache=use_cache)
        return ids[0, 1:].astype(np.int32)

    def sample_midi(self, path, num_events, seed=None, prompt=None, piano_roll_path=None,
                    **sample_kwargs):
        """Samples a piece and writes it as a .mid (`tokenizer.write_midi`) and a piano-roll
        PNG (`media.write_piano_roll_png`, default: `path` with extension .png).

        Returns dict(ids=int32 (n,) event ids (prompt + sampled), midi_path, piano_roll_path).
        Invalid event sequences (a NOTE_OFF without NOTE_ON, pad / eos ...) are repaired by the
        tokenizer's decoder.
        """
        ids = self.sample_events(num_events, seed=seed, prompt=prompt, **sample_kwargs)
        parent = os.path.dirname(os.fspath(path))
        if parent:
            os.makedirs(parent, exist_ok=True)
        self.tokenizer.write_midi(ids, path)
        if piano_roll_path is None:
            piano_roll_path = os.path.splitext(os.fspath(path))[0] + ".png"
        media.write_piano_roll_png(ids, piano_roll_path, fs=self.tokenizer.steps_per_second,
                                   tokenizer=self.tokenizer)
        return {"ids": ids, "midi_path": path, "piano_roll_path": piano_roll_path}

    def get_config(self):
        config = super().get_config()
        config.pop("vocab_size", None)
        config["tokenizer"] = self.tokenizer.get_config()
        return config
