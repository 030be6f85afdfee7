"""Named model configurations: the Reformer paper's models and tiny CPU-sized ones.

`PRESETS[name]` is a `Preset`: the task class name, a one-line description (where the numbers
come from), the model's `ReformerConfig` / `Seq2SeqConfig`, the task's own arguments
(`task_args`: image_shape, num_classes, ...), the parameter count of the built model (checked by
tests/models/test_presets.py) and the longest input it accepts (tokens; for seq2seq the source
length), and `weights`: where trained weights for the architecture come from. No preset ships
weights: `reformer_keras.models.from_preset(name, **overrides)` builds a randomly initialised
model and logs so; `from_preset("hf:DIR")` loads a Hugging Face Reformer checkpoint directory
with its weights instead (docs/pretrained.md). Pure Python (imports only
`reformer_keras.config`): the trainers check `--preset` before importing TensorFlow.

Sources for the paper presets: the Reformer paper (Kitaev et al. 2020, section 5: d_model 1024,
d_ff 4096, 8 heads; 12 layers on enwik8-64K, 6 layers on imagenet64) and the released
configurations (trax / the `google/reformer-enwik8` and `google/reformer-crime-and-punishment`
checkpoints: hash rounds, bucket and chunk sizes, axial shapes and dims, layer patterns). Where no
source fixes a value (the imagenet64 axial dims, the WMT vocabulary and lengths) the choice is
ours and said so in the description.
"""
from __future__ import annotations

import dataclasses
from typing import Union

from reformer_keras.config import ReformerConfig, Seq2SeqConfig

# Config fields a task sets itself (from its own arguments); a preset's kwargs leave them out.
TASK_DERIVED_FIELDS = {
    "ReformerLM": ("causal",),
    "ReformerMusicGenerator": ("causal", "vocab_size"),
    "ReformerImageGenerator": ("causal", "vocab_size", "axial_shape", "max_len"),
    "ReformerClassifier": ("causal",),
    "ReformerSeq2Seq": (),
}
MIDI_VOCAB = 390       # MidiEventTokenizer()'s vocabulary (the music task checks it)
PIXEL_VOCAB = 256      # sub-pixel values; the image task's start tokens follow them


@dataclasses.dataclass(frozen=True)
class Preset:
    """One named model: `task` class name, `config`, `task_args`, `params`, `max_length`."""

    task: str
    description: str
    config: Union[ReformerConfig, Seq2SeqConfig]
    params: int
    max_length: int
    task_args: tuple = ()          # ((name, value), ...): the task's own constructor arguments
    weights: str = ""              # where trained weights come from ("" : nowhere)

    def __post_init__(self):
        if self.task not in TASK_DERIVED_FIELDS:
            raise ValueError(f"unknown task {self.task!r}")
        want = Seq2SeqConfig if self.task == "ReformerSeq2Seq" else ReformerConfig
        if not isinstance(self.config, want):
            raise ValueError(f"a {self.task} preset needs a {want.__name__}")

    def kwargs(self):
        """The task's constructor arguments: the config's non-default fields (less those the
        task sets itself) and the task arguments. A fresh dict."""
        config = self.config.to_dict(skip_defaults=True)
        for key in TASK_DERIVED_FIELDS[self.task]:
            config.pop(key, None)
        return {**config, **{k: list(v) if isinstance(v, tuple) else v
                             for k, v in self.task_args}}


def _image(image_shape, num_classes=None, **fields):
    vocab = PIXEL_VOCAB + max(num_classes or 1, 1)
    return dict(config=ReformerConfig(vocab_size=vocab, axial_shape=image_shape, **fields),
                task_args=(("image_shape", tuple(image_shape)), ("num_classes", num_classes)))


_ENWIK8_TYPES = ("local", "local", "lsh", "local", "local", "local", "lsh", "local", "local",
                 "local", "lsh", "local")

PRESETS = {
    # ------------------------------------------------------------------ paper configurations
    "enwik8": Preset(
        "ReformerLM", params=149_182_722, max_length=65_536,
        description="Paper's enwik8-64K byte LM: 12 layers, d 1024, d_ff 4096, 8 heads of 128, "
                    "local/LSH pattern of google/reformer-enwik8, 4 hash rounds, axial 128x512. "
                    "No weights: for the trained model convert google/reformer-enwik8 "
                    "(docs/pretrained.md).",
        weights="google/reformer-enwik8 (Hugging Face): from_preset('hf:DIR'), "
                "docs/pretrained.md",
        config=ReformerConfig(vocab_size=258, d_model=1024, num_layers=12, num_heads=8,
                              d_ff=4096, head_dim=128, attention_types=_ENWIK8_TYPES,
                              bucket_size=256, num_hashes=4, num_buckets=512,
                              local_chunk_size=128, axial_shape=(128, 512),
                              axial_dims=(256, 768), dropout=0.2, attention_dropout=0.1,
                              ff_chunk_size=4096)),
    "imagenet64": Preset(
        "ReformerImageGenerator", params=70_103_040, max_length=12_288,
        description="Paper's imagenet64 model: 6 layers, d 1024, d_ff 4096, 8 heads, LSH; "
                    "12,288 = 64*64*3 tokens, axial (64, 64, 3) (axial dims, 4 hash rounds, "
                    "bucket 128: our choice).",
        **_image((64, 64, 3), d_model=1024, num_layers=6, num_heads=8, d_ff=4096,
                 attention_types=("lsh",), bucket_size=128, num_hashes=4,
                 axial_dims=(384, 384, 256), dropout=0.0, ff_chunk_size=4096)),
    "crime_and_punishment": Preset(
        "ReformerLM", params=2_748_224, max_length=524_288,
        description="trax text-generation colab (google/reformer-crime-and-punishment): 6 layers "
                    "alternating local/LSH, d 256, 2 heads of 64, 0.5M tokens, axial 512x1024. "
                    "No weights: for the trained model convert "
                    "google/reformer-crime-and-punishment (docs/pretrained.md).",
        weights="google/reformer-crime-and-punishment (Hugging Face): from_preset('hf:DIR'), "
                "docs/pretrained.md",
        config=ReformerConfig(vocab_size=320, d_model=256, num_layers=6, num_heads=2, d_ff=512,
                              head_dim=64, attention_types=("local", "lsh"), bucket_size=64,
                              num_hashes=1, num_buckets=(64, 128), local_chunk_size=64,
                              axial_shape=(512, 1024), axial_dims=(64, 192), dropout=0.05,
                              ff_chunk_size=1024)),
    "wmt14_base": Preset(
        "ReformerSeq2Seq", params=113_343_744, max_length=512,
        description="Reversible Transformer-base for WMT'14 En-De: 6+6 layers, d 512, d_ff 2048, "
                    "8 heads, full attention (32K shared subwords, 512 positions: our choice).",
        config=Seq2SeqConfig(encoder_vocab_size=32_000, decoder_vocab_size=32_000, d_model=512,
                             num_encoder_layers=6, num_decoder_layers=6, num_heads=8, d_ff=2048,
                             encoder_attention_types=("full",),
                             decoder_attention_types=("full",), encoder_max_len=512,
                             decoder_max_len=512, dropout=0.1)),
    # ------------------------------------------------------------------ tiny (CPU, minutes)
    "tiny_text": Preset(
        "ReformerLM", params=113_410, max_length=256,
        description="Byte LM for CPU experiments: 2 layers local/LSH, d 64, 256 tokens.",
        config=ReformerConfig(vocab_size=258, d_model=64, num_layers=2, num_heads=2, d_ff=128,
                              attention_types=("local", "lsh"), bucket_size=32, num_hashes=2,
                              axial_shape=(16, 16), seed=0)),
    "tiny_image": Preset(
        "ReformerImageGenerator", params=113_005, max_length=64,
        description="8x8x1 digits (sklearn), 10 classes: 2 layers LSH/local, d 64, axial "
                    "(8, 8, 1).",
        **_image((8, 8, 1), num_classes=10, d_model=64, num_layers=2, num_heads=2, d_ff=128,
                 attention_types=("lsh", "local"), bucket_size=16, num_hashes=2, seed=0)),
    "tiny_music": Preset(
        "ReformerMusicGenerator", params=139_398, max_length=512,
        description="MIDI events (vocab 390): 2 layers local/LSH, d 64, 512 events.",
        config=ReformerConfig(vocab_size=MIDI_VOCAB, d_model=64, num_layers=2, num_heads=2,
                              d_ff=128, attention_types=("local", "lsh"), bucket_size=32,
                              num_hashes=2, axial_shape=(16, 32), seed=0)),
    "tiny_seq2seq": Preset(
        "ReformerSeq2Seq", params=249_090, max_length=64,
        description="Byte-level seq2seq: 2+2 layers, d 64, local/LSH encoder, LSH/full decoder.",
        config=Seq2SeqConfig(encoder_vocab_size=258, decoder_vocab_size=258, d_model=64,
                             num_encoder_layers=2, num_decoder_layers=2, num_heads=2, d_ff=128,
                             encoder_attention_types=("local", "lsh"),
                             decoder_attention_types=("lsh", "full"), bucket_size=16,
                             num_hashes=2, encoder_max_len=64, decoder_max_len=64, seed=0)),
    "tiny_classifier": Preset(
        "ReformerClassifier", params=87_554, max_length=128,
        description="Byte sequence classifier: 2 layers local/LSH (non-causal), d 64, 2 classes.",
        config=ReformerConfig(vocab_size=258, d_model=64, num_layers=2, num_heads=2, d_ff=128,
                              attention_types=("local", "lsh"), causal=False, bucket_size=16,
                              num_hashes=2, max_len=128, seed=0),
        task_args=(("num_classes", 2),)),
}


def preset_names():
    """Sorted names of all presets."""
    return sorted(PRESETS)


def get_preset(name):
    """`PRESETS[name]` (immutable); unknown names raise ValueError listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; known presets: {', '.join(preset_names())}.")
    return PRESETS[name]


def _describe(preset):
    c = preset.config
    if isinstance(c, Seq2SeqConfig):
        return (f"{c.num_encoder_layers}+{c.num_decoder_layers}",
                f"enc {'/'.join(c.encoder_attention_types)}, dec "
                f"{'/'.join(c.decoder_attention_types)}")
    return c.num_layers, "/".join(dict.fromkeys(c.attention_types))


def presets_markdown():
    """The preset table as a GitHub-flavoured markdown string (one row per preset)."""
    rows = ["| preset | task | layers | d_model | heads | d_ff | attention | max length | "
            "parameters | notes |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name in preset_names():
        p = PRESETS[name]
        layers, attention = _describe(p)
        c = p.config
        rows.append(f"| `{name}` | {p.task} | {layers} | {c.d_model} | {c.num_heads} | "
                    f"{c.d_ff} | {attention} | {p.max_length:,} | {p.params:,} | "
                    f"{p.description} |")
    return "\n".join(rows) + "\n"


__all__ = ["PRESETS", "Preset", "TASK_DERIVED_FIELDS", "get_preset", "preset_names",
           "presets_markdown"]
