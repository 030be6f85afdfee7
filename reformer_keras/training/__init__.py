"""Training library the trainers (trainers/train.py, evaluate.py, sample.py) call.

  strategy      get_strategy("auto" | "one_device" | "mirrored" | "multi_worker" | "tpu")
  metrics       BitsPerToken (bits per token / dim / character), WarmupSchedule
  callbacks     AtomicModelCheckpoint, AtomicBackupAndRestore, StepLimit, LossLog, SampleEvery
  model_factory build_model(task, preset, info, overrides) (zoo presets + overrides)
  samples       write_samples (text .txt, image PNG grid, music .mid + piano roll),
                write_prompted_samples (prompt, temperature, top-k / top-p, class label)
  loop          TrainConfig, train, evaluate_checkpoint, sample_checkpoint
  data_plan     a run's data: registry dataset, own files or TFDS catalog name (one interface)
  run_file      model_dir/run.json: write_run / read_run (pure Python)
  run_tokenizer the run's text tokenizer: bytes / chars / sentencepiece, saved in the run
  checkpoints   numeric checkpoint order, KeepCheckpoints, init_weights_from, TensorBoard samples
  tf_fused_adam FusedAdam (Keras's Adam with TensorFlow's fused kernel; the trainers' optimizer)

Attributes are imported lazily: importing the package imports no TensorFlow. The dataset
registry lives in `reformer_keras.datasets.registry`.
"""
import importlib

_EXPORTS = {
    "TrainConfig": "loop", "evaluate_checkpoint": "loop", "load_checkpoint": "loop",
    "plan_steps": "loop", "sample_checkpoint": "loop", "train": "loop",
    "BitsPerToken": "metrics", "WarmupSchedule": "metrics",
    "STRATEGIES": "strategy", "get_strategy": "strategy", "FusedAdam": "tf_fused_adam",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        module = importlib.import_module(f"reformer_keras.training.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'reformer_keras.training' has no attribute {name!r}")
