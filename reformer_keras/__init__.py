"""reformer-keras: the Reformer (Kitaev, Kaiser & Levskaya, ICLR 2020) for Keras 3 / TensorFlow.

Sub-packages:
  layers      LSH / local / full self-attention, chunked feed-forward, axial positions,
              the reversible residual stack.
  models      Reformer backbones and tasks (language model, ...).
  tokenizers  text (bytes, characters, SentencePiece) and MIDI event tokenizers.
  datasets    TFDS builders over data that pip packages ship, and tf.data pipelines.

Importing the package sets TensorFlow's oneDNN and CPU-allocator switches in the environment
unless already set (`reformer_keras.runtime`): import it before TensorFlow / Keras.
"""
from reformer_keras import runtime as _runtime

_runtime.apply_cpu_settings()

__version__ = "0.1.0"
