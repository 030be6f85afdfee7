"""reformer-keras: the Reformer (Kitaev, Kaiser & Levskaya, ICLR 2020) for Keras 3 / TensorFlow.

Sub-packages:
  layers      LSH / local / full self-attention, chunked feed-forward, axial positions,
              the reversible residual stack.
  models      Reformer backbones and tasks (language model, ...).
  tokenizers  text (bytes, characters, SentencePiece) and MIDI event tokenizers.
  datasets    TFDS builders over data that pip packages ship, and tf.data pipelines.

Importing the package changes nothing in the process. The CPU runtime settings the project is
tuned with (oneDNN, TensorFlow's caching CPU allocator, grappler's constant folding off) are one
explicit call, made before TensorFlow or Keras is imported (see `reformer_keras.runtime` and
docs/runtime.md):

    from reformer_keras import runtime
    runtime.configure_cpu()
"""

__version__ = "0.1.0"
