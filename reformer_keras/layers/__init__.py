"""Reformer layers (Keras 3). All are registered Keras serializables.

  LSHSelfAttention         LSH attention with shared QK (O(L log L)).
  LocalSelfAttention       chunked local attention (O(L * chunk)).
  FullSelfAttention        the O(L^2) baseline / reference.
  ChunkedFeedForward       position-wise feed-forward, chunk by chunk.
  AxialPositionalEmbedding factorised position embeddings.
  LayerNorm                LayerNormalization with a lean TensorFlow gradient.
  PreNormBranch            LayerNorm + a layer: a residual branch of a reversible block.
  ReversibleSequence       the reversible residual stack (recompute-from-outputs gradient).
  HFLSHSelfAttention       Hugging Face's LSH attention, exactly (converted checkpoints).
  HFLocalSelfAttention     Hugging Face's local attention, exactly (converted checkpoints).

Importing this package sets no TensorFlow option (see `reformer_keras.runtime.configure_cpu`).
"""

from reformer_keras.layers.axial_positional_embedding import AxialPositionalEmbedding
from reformer_keras.layers.feed_forward import ChunkedFeedForward
from reformer_keras.layers.full_attention import FullSelfAttention
from reformer_keras.layers.hf_local_attention import HFLocalSelfAttention
from reformer_keras.layers.hf_lsh_attention import HFLSHSelfAttention
from reformer_keras.layers.layer_norm import LayerNorm
from reformer_keras.layers.local_attention import LocalSelfAttention
from reformer_keras.layers.lsh_attention import LSHSelfAttention
from reformer_keras.layers.pre_norm import PreNormBranch
from reformer_keras.layers.reversible import ReversibleSequence

__all__ = [
    "AxialPositionalEmbedding", "ChunkedFeedForward", "FullSelfAttention", "LayerNorm", "LocalSelfAttention",
    "LSHSelfAttention", "PreNormBranch", "ReversibleSequence", "HFLSHSelfAttention",
    "HFLocalSelfAttention",
]
