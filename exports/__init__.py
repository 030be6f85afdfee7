"""absl front ends for SavedModel export and serving requests."""
import reformer_keras  # noqa: F401  (sets the TF CPU runtime switches before TensorFlow loads)
