"""absl front ends for training, evaluation and sampling."""
import reformer_keras  # noqa: F401  (sets the TF CPU runtime switches before TensorFlow loads)
