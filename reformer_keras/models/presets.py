"""Named model configurations: the Reformer paper's models and tiny CPU-sized ones.

`PRESETS[name]` is a dict with
  task         the class name of the task (`ReformerLM`, `ReformerImageGenerator`, ...),
  description  one line (where the numbers come from),
  config       constructor arguments of the task,
  params       the parameter count of the built model (checked by tests/models/test_presets.py),
  max_length   longest input the preset accepts (tokens; for seq2seq the source length).
  weights      (optional) where pretrained weights for the architecture come from. No preset
               ships weights: `from_preset` builds randomly initialised models and logs so.

`from_preset("hf:DIR")` (and `ReformerLM.from_preset("hf:DIR")`) instead loads a Hugging Face
Reformer checkpoint directory with its weights (`reformer_keras.convert.from_hf`,
docs/pretrained.md).

`from_preset(name, **overrides)` builds the task of any preset; every task class also has a
`Task.from_preset(name, **overrides)` classmethod (PresetMixin). `presets_markdown()` renders the
table for the README.

Sources for the paper presets: the Reformer paper (Kitaev et al. 2020, section 5: d_model 1024,
d_ff 4096, 8 heads; 12 layers on enwik8-64K, 6 layers on imagenet64) and the released
configurations (trax / the `google/reformer-enwik8` and `google/reformer-crime-and-punishment`
checkpoints: hash rounds, bucket and chunk sizes, axial shapes and dims, layer patterns). Where no
source fixes a value (the imagenet64 axial dims, the WMT vocabulary and lengths) the choice is
ours and said so in the description.
"""

import copy
import logging

_ENWIK8_TYPES = ["local", "local", "lsh", "local", "local", "local", "lsh", "local", "local",
                 "local", "lsh", "local"]

PRESETS = {
    # ------------------------------------------------------------------ paper configurations
    "enwik8": dict(
        task="ReformerLM", params=149_182_722, max_length=65_536,
        description="Paper's enwik8-64K byte LM: 12 layers, d 1024, d_ff 4096, 8 heads of 128, "
                    "local/LSH pattern of google/reformer-enwik8, 4 hash rounds, axial 128x512. "
                    "No weights: for the trained model convert google/reformer-enwik8 "
                    "(docs/pretrained.md).",
        weights="google/reformer-enwik8 (Hugging Face): from_preset('hf:DIR'), "
                "docs/pretrained.md",
        config=dict(vocab_size=258, d_model=1024, num_layers=12, num_heads=8, d_ff=4096,
                    head_dim=128, attention_types=_ENWIK8_TYPES, bucket_size=256, num_hashes=4,
                    num_buckets=512, local_chunk_size=128, axial_shape=[128, 512],
                    axial_dims=[256, 768], dropout=0.2, attention_dropout=0.1,
                    ff_chunk_size=4096)),
    "imagenet64": dict(
        task="ReformerImageGenerator", params=70_103_040, max_length=12_288,
        description="Paper's imagenet64 model: 6 layers, d 1024, d_ff 4096, 8 heads, LSH; "
                    "12,288 = 64*64*3 tokens, axial (64, 64, 3) (axial dims, 4 hash rounds, "
                    "bucket 128: our choice).",
        config=dict(image_shape=[64, 64, 3], d_model=1024, num_layers=6, num_heads=8,
                    d_ff=4096, attention_types=["lsh"], bucket_size=128, num_hashes=4,
                    axial_dims=[384, 384, 256], dropout=0.0, ff_chunk_size=4096)),
    "crime_and_punishment": dict(
        task="ReformerLM", params=2_748_224, max_length=524_288,
        description="trax text-generation colab (google/reformer-crime-and-punishment): 6 layers "
                    "alternating local/LSH, d 256, 2 heads of 64, 0.5M tokens, axial 512x1024. "
                    "No weights: for the trained model convert "
                    "google/reformer-crime-and-punishment (docs/pretrained.md).",
        weights="google/reformer-crime-and-punishment (Hugging Face): from_preset('hf:DIR'), "
                "docs/pretrained.md",
        config=dict(vocab_size=320, d_model=256, num_layers=6, num_heads=2, d_ff=512,
                    head_dim=64, attention_types=["local", "lsh"], bucket_size=64, num_hashes=1,
                    num_buckets=[64, 128], local_chunk_size=64, axial_shape=[512, 1024],
                    axial_dims=[64, 192], dropout=0.05, ff_chunk_size=1024)),
    "wmt14_base": dict(
        task="ReformerSeq2Seq", params=113_343_744, max_length=512,
        description="Reversible Transformer-base for WMT'14 En-De: 6+6 layers, d 512, d_ff 2048, "
                    "8 heads, full attention (32K shared subwords, 512 positions: our choice).",
        config=dict(encoder_vocab_size=32_000, decoder_vocab_size=32_000, d_model=512,
                    num_encoder_layers=6, num_decoder_layers=6, num_heads=8, d_ff=2048,
                    encoder_attention_types=["full"], decoder_attention_types=["full"],
                    encoder_max_len=512, decoder_max_len=512, dropout=0.1)),
    # ------------------------------------------------------------------ tiny (CPU, minutes)
    "tiny_text": dict(
        task="ReformerLM", params=113_410, max_length=256,
        description="Byte LM for CPU experiments: 2 layers local/LSH, d 64, 256 tokens.",
        config=dict(vocab_size=258, d_model=64, num_layers=2, num_heads=2, d_ff=128,
                    attention_types=["local", "lsh"], bucket_size=32, num_hashes=2,
                    axial_shape=[16, 16], seed=0)),
    "tiny_image": dict(
        task="ReformerImageGenerator", params=113_005, max_length=64,
        description="8x8x1 digits (sklearn), 10 classes: 2 layers LSH/local, d 64, axial "
                    "(8, 8, 1).",
        config=dict(image_shape=[8, 8, 1], num_classes=10, d_model=64, num_layers=2,
                    num_heads=2, d_ff=128, attention_types=["lsh", "local"], bucket_size=16,
                    num_hashes=2, seed=0)),
    "tiny_music": dict(
        task="ReformerMusicGenerator", params=139_398, max_length=512,
        description="MIDI events (vocab 390): 2 layers local/LSH, d 64, 512 events.",
        config=dict(d_model=64, num_layers=2, num_heads=2, d_ff=128,
                    attention_types=["local", "lsh"], bucket_size=32, num_hashes=2,
                    axial_shape=[16, 32], seed=0)),
    "tiny_seq2seq": dict(
        task="ReformerSeq2Seq", params=249_090, max_length=64,
        description="Byte-level seq2seq: 2+2 layers, d 64, local/LSH encoder, LSH/full decoder.",
        config=dict(encoder_vocab_size=258, decoder_vocab_size=258, d_model=64,
                    num_encoder_layers=2, num_decoder_layers=2, num_heads=2, d_ff=128,
                    encoder_attention_types=["local", "lsh"],
                    decoder_attention_types=["lsh", "full"], bucket_size=16, num_hashes=2,
                    encoder_max_len=64, decoder_max_len=64, seed=0)),
    "tiny_classifier": dict(
        task="ReformerClassifier", params=87_554, max_length=128,
        description="Byte sequence classifier: 2 layers local/LSH (non-causal), d 64, 2 classes.",
        config=dict(num_classes=2, vocab_size=258, d_model=64, num_layers=2, num_heads=2,
                    d_ff=128, attention_types=["local", "lsh"], bucket_size=16, num_hashes=2,
                    max_len=128, seed=0)),
}


def preset_names():
    """Sorted names of all presets."""
    return sorted(PRESETS)


def get_preset(name):
    """A deep copy of `PRESETS[name]`; unknown names raise ValueError listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; known presets: {', '.join(preset_names())}.")
    return copy.deepcopy(PRESETS[name])


def _task_class(task):
    from reformer_keras import models  # pylint: disable=import-outside-toplevel
    return getattr(models, task)


HF_PREFIX = "hf:"


def _from_hf(name, overrides, cls_name="ReformerLM"):
    """`hf:DIR` -> the converted ReformerLM (with its weights)."""
    if overrides:
        raise ValueError(f"{name!r}: a Hugging Face checkpoint takes no overrides, got "
                         f"{sorted(overrides)}.")
    if cls_name != "ReformerLM":
        raise ValueError(f"{name!r}: Hugging Face checkpoints convert to ReformerLM, not "
                         f"{cls_name}.")
    from reformer_keras.convert import from_hf  # pylint: disable=import-outside-toplevel
    return from_hf(name[len(HF_PREFIX):])[0]


def _log_random_weights(name, preset):
    hint = f"; pretrained weights: {preset['weights']}" if preset.get("weights") else ""
    logging.info("Preset %r: randomly initialised weights (the preset has none)%s.", name, hint)


def from_preset(name, **overrides):
    """Builds (unbuilt weights) the task of preset `name`, config updated with `overrides`;
    `hf:DIR` loads a Hugging Face Reformer checkpoint directory (with its weights)."""
    if isinstance(name, str) and name.startswith(HF_PREFIX):
        return _from_hf(name, overrides)
    preset = get_preset(name)
    _log_random_weights(name, preset)
    return _task_class(preset["task"])(**{**preset["config"], **overrides})


class PresetMixin:
    """Adds `Task.from_preset(name, **overrides)` to a task class."""

    @classmethod
    def from_preset(cls, name, **overrides):
        """Builds this task from a preset of the same task (ValueError otherwise); `hf:DIR`
        loads a Hugging Face Reformer checkpoint directory (ReformerLM)."""
        if isinstance(name, str) and name.startswith(HF_PREFIX):
            return _from_hf(name, overrides, cls.__name__)
        preset = get_preset(name)
        if preset["task"] != cls.__name__:
            same = [n for n in preset_names() if PRESETS[n]["task"] == cls.__name__]
            raise ValueError(f"Preset {name!r} is a {preset['task']} preset, not a "
                             f"{cls.__name__} one; {cls.__name__} presets: {same}.")
        _log_random_weights(name, preset)
        return cls(**{**preset["config"], **overrides})


def _describe(config):
    layers = config.get("num_layers")
    if layers is None:
        layers = f"{config['num_encoder_layers']}+{config['num_decoder_layers']}"
    types = (config.get("attention_types") or
             [f"enc {'/'.join(config['encoder_attention_types'])}, dec "
              f"{'/'.join(config['decoder_attention_types'])}"])
    if "attention_types" in config:
        seen = []
        for t in types:
            if t not in seen:
                seen.append(t)
        types = ["/".join(seen)]
    return layers, types[0]


def presets_markdown():
    """The preset table as a GitHub-flavoured markdown string (one row per preset)."""
    rows = ["| preset | task | layers | d_model | heads | d_ff | attention | max length | "
            "parameters | notes |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name in preset_names():
        p = PRESETS[name]
        c = p["config"]
        layers, attention = _describe(c)
        rows.append(f"| `{name}` | {p['task']} | {layers} | {c['d_model']} | {c['num_heads']} | "
                    f"{c['d_ff']} | {attention} | {p['max_length']:,} | {p['params']:,} | "
                    f"{p['description']} |")
    return "\n".join(rows) + "\n"


__all__ = ["PRESETS", "PresetMixin", "from_preset", "get_preset", "preset_names",
           "presets_markdown"]
