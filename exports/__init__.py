"""absl front ends for SavedModel export and serving requests."""
