"""Reformer models: the backbone and its tasks."""

from reformer_keras.models.reformer_backbone import ReformerBackbone
from reformer_keras.models.reformer_lm import ReformerLM

__all__ = ["ReformerBackbone", "ReformerLM"]
