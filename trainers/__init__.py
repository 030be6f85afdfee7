"""absl front ends for training, evaluation and sampling."""
from reformer_keras import runtime

runtime.configure_cpu()  # oneDNN, the BFC CPU allocator: before TensorFlow loads
