"""Reformer models: the backbone, its tasks, preprocessors and presets.

Tasks (all registered Keras serializables with `from_preset`):
  ReformerLM              causal LM (text; `enwik8`, `crime_and_punishment`, `tiny_text`).
  ReformerImageGenerator  autoregressive pixels over H*W*C (`imagenet64`, `tiny_image`).
  ReformerMusicGenerator  MIDI event LM (`tiny_music`).
  ReformerSeq2Seq         reversible encoder-decoder with cross-attention (`wmt14_base`, ...).
  ReformerClassifier      mean-pooled sequence classifier (`tiny_classifier`).
Preprocessors: ReformerTextPreprocessor, ReformerImagePreprocessor, ReformerMusicPreprocessor.
Presets: `from_preset(name, **overrides)`, `presets_markdown()`, `PRESETS`.
Hugging Face checkpoints: `from_hf(DIR)` -> (ReformerLM, tokenizer); `from_preset("hf:DIR")`.
Configurations: `ReformerConfig`, `Seq2SeqConfig` (`reformer_keras.config`); every task takes
`config=` or the config's fields as arguments.
"""

from reformer_keras.config import ReformerConfig, Seq2SeqConfig

from reformer_keras.models.hf_checkpoint import from_hf
from reformer_keras.models.presets import PRESETS, from_preset, preset_names, presets_markdown
from reformer_keras.models.reformer_backbone import ReformerBackbone
from reformer_keras.models.reformer_classifier import ReformerClassifier
from reformer_keras.models.reformer_image_generator import ReformerImageGenerator
from reformer_keras.models.reformer_image_preprocessor import ReformerImagePreprocessor
from reformer_keras.models.reformer_lm import ReformerLM
from reformer_keras.models.reformer_music_generator import ReformerMusicGenerator
from reformer_keras.models.reformer_music_preprocessor import ReformerMusicPreprocessor
from reformer_keras.models.reformer_seq2seq import ReformerDecoder, ReformerSeq2Seq
from reformer_keras.models.reformer_text_preprocessor import ReformerTextPreprocessor
from reformer_keras.models.reversible_decoder import (CrossAttention, DecoderAttentionBranch,
                                                      ReversibleDecoderSequence)

__all__ = [
    "CrossAttention", "DecoderAttentionBranch", "PRESETS", "ReformerBackbone",
    "ReformerClassifier", "ReformerConfig", "ReformerDecoder", "ReformerImageGenerator",
    "ReformerImagePreprocessor", "ReformerLM", "ReformerMusicGenerator",
    "ReformerMusicPreprocessor", "ReformerSeq2Seq", "ReformerTextPreprocessor", "Seq2SeqConfig",
    "ReversibleDecoderSequence", "from_hf", "from_preset", "preset_names", "presets_markdown",
]
