"""absl front ends for training, evaluation and sampling."""
from reformer_keras import runtime

# oneDNN and the BFC CPU allocator, before TensorFlow loads; TensorFlow itself is imported only
# after the flags and the data are checked (train.py applies the graph settings then).
runtime.configure_cpu(graph=False)
