"""The fit loop as functions the trainers call: `train`, `evaluate_checkpoint`, `sample_checkpoint`.

Layout of a model_dir:
  run.json                         the run's description (`run_file`): task, data, tokenizer,
                                   model config, training flags, library versions
  checkpoints/ckpt-<epoch>.keras   full model (+ optimizer) after every epoch (atomic writes;
                                   the newest `keep_checkpoints` are kept)
  tokenizer/                       a trained SentencePiece model (text runs that use one)
  backup/                          BackupAndRestore state: a killed run resumes from here
  logs/                            TensorBoard (train / validation scalars, incl. bits;
                                   samples/: text, image grids, piano rolls)
  samples/<tag>.{txt,png,mid}      samples every --sample_every steps and at the end
  loss_log.csv                     "step,loss" per batch (Keras' running epoch mean)
  summary.json                     final step, loss, bits, wall time (or the non-finite step)
  .lock                            held by the running chief (one run per model_dir)
"""
import dataclasses
import json
import math
import os
import tempfile
import time
from typing import Optional

import keras

from reformer_keras import fault_injection
from reformer_keras import tf_keras_compat
from reformer_keras.datasets import pipelines
from reformer_keras.training import callbacks as cb
from reformer_keras.training import checkpoints, data_plan, model_factory, run_file, samples
from reformer_keras.training.metrics import BitsPerToken, WarmupSchedule
from reformer_keras.training.nan_guard import NonFiniteError, NonFiniteGuard
from reformer_keras.training.run_lock import RunLock
from reformer_keras.training.strategy import (get_strategy, is_chief, is_multi_worker,
                                              patch_keras_multi_worker_logs)
from reformer_keras.training.tf_fused_adam import FusedAdam


@dataclasses.dataclass
class TrainConfig:
    """Everything a training run needs (the trainers fill it from flags)."""

    task: str = "lm"
    dataset: str = "shakespeare_plays"
    preset: str = ""                       # "" -> model_factory.DEFAULT_PRESETS[task]
    data_dir: Optional[str] = "data_dir"
    model_dir: str = "model_dir"
    seq_len: int = 128
    batch_size: int = 16                   # global batch
    steps: Optional[int] = 100_000         # total optimizer steps (None: epochs * spe)
    epochs: Optional[int] = None
    steps_per_epoch: int = 100             # also the checkpoint / backup interval
    learning_rate: float = 2e-3
    schedule: str = "rsqrt"
    warmup_steps: int = 100
    strategy: str = "auto"
    mixed_precision: bool = False
    jit_compile: bool = False
    seed: int = 0
    max_minutes: Optional[float] = 3.0
    sample_every: int = 0                  # steps; 0: only the final sample
    sample_tokens: int = 256
    eval_steps: int = 8
    shuffle_buffer: int = 2048
    verbose: int = 1
    export: bool = False                   # TF Serving SavedModel into model_dir/export/
    overrides: dict = dataclasses.field(default_factory=dict)
    train_split: Optional[str] = None      # TFDS split strings (slicing allowed)
    validation_split: Optional[str] = None
    init_from: Optional[str] = None        # a .keras file or model_dir: starting weights
    keep_checkpoints: int = 3              # newest checkpoints kept (0: all)

    def resolved_preset(self):
        return self.preset or model_factory.DEFAULT_PRESETS[self.task]


def plan_steps(cfg):
    """(total_steps, epochs, steps_per_epoch) from --steps / --epochs / --steps_per_epoch."""
    spe = int(cfg.steps_per_epoch)
    if cfg.epochs:
        total = int(cfg.epochs) * spe if not cfg.steps else min(int(cfg.steps),
                                                                int(cfg.epochs) * spe)
    else:
        total = int(cfg.steps)
        spe = min(spe, total)
    return total, math.ceil(total / spe), spe


def metric_name(info):
    if info.task == "classifier":
        return "accuracy"
    if info.byte_level:
        return "bits_per_char"
    return "bits_per_dim" if info.task == "image" else "bits_per_token"


def _metrics(info):
    if info.task == "classifier":
        return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]
    return [BitsPerToken(name=metric_name(info), per_character=info.byte_level)]


def compile_model(model, info, cfg, total_steps):
    schedule = WarmupSchedule(cfg.learning_rate, cfg.schedule, cfg.warmup_steps, total_steps)
    model.compile(optimizer=FusedAdam(schedule, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=_metrics(info), jit_compile=cfg.jit_compile)
    return model


def prepare_data(dataset, data_dir):
    """Prepares an offline builder into data_dir (TFDS progress bars); catalog sets load lazily."""
    spec = pipelines.get_spec(dataset)
    if spec.offline:
        import tensorflow_datasets as tfds
        import reformer_keras.datasets.builders  # noqa: F401  (registers the builders)
        tfds.builder(dataset, data_dir=data_dir).download_and_prepare()


def _datasets(cfg, plan, strategy, start_step=0):
    """(train, validation) datasets; the training stream skips the `start_step` batches a
    resumed run already trained on, so it continues exactly where its backup was taken."""
    if is_multi_worker(strategy):
        train_ds = strategy.distribute_datasets_from_function(
            lambda ctx: plan.dataset("train", training=True, input_context=ctx).skip(start_step))
        return train_ds, None  # (validation is run single-worker with trainers/evaluate.py)
    train_ds = plan.dataset("train", training=True).skip(start_step)
    val_ds = None
    if cfg.eval_steps:
        val_ds = plan.dataset("validation", training=False, repeat=True)
    return train_ds, val_ds


def _build_from_local_batch(model, element_spec):
    """Keras 3.15 `fit` under a strategy builds the model symbolically from the first batch of
    a throw-away iterator, then re-creates the iterator. (a) With MultiWorkerMirroredStrategy
    it all-reduces ("MEAN") that int32 batch across workers, which fails; (b) the extra iterator
    advances the seeded reshuffling, so single- and multi-worker runs would see different data.
    Build from a zero batch of the (per-replica) element spec instead: only shapes matter."""
    import tensorflow as tf

    def zeros(spec):
        return tf.zeros([d if d is not None else 1 for d in spec.shape], spec.dtype)

    tf_keras_compat.build_from_batch(model, tf.nest.map_structure(zeros, element_spec))


EXPORTABLE_TASKS = ("lm", "image", "music")


def _export(model, cfg, tokenizer=None):
    """Exports the trained model for TF Serving; returns the version directory (or None)."""
    if cfg.task not in EXPORTABLE_TASKS:
        print(f"export: skipped (no serving signatures for task {cfg.task!r})", flush=True)
        return None
    from reformer_keras.export import export_model  # pylint: disable=import-outside-toplevel
    result = export_model(model, os.path.join(cfg.model_dir, "export"), f"reformer_{cfg.task}",
                          tokenizer=tokenizer)
    print(f"export: version {result['version']} at {result['path']} "
          f"(signatures: {', '.join(result['signatures'])})", flush=True)
    return result["path"]


def run_record(cfg, plan, model):
    """The run.json record of a run (see `run_file`)."""
    from reformer_keras.training.run_tokenizer import tokenizer_record
    config = {k: v for k, v in model.get_config().items() if k not in ("name", "trainable",
                                                                       "dtype")}
    return dict(task=cfg.task, data=plan.record(),
                tokenizer=(tokenizer_record(plan.tokenizer, cfg.model_dir)
                           if plan.tokenizer is not None else None),
                model={"class": type(model).__name__, "preset": cfg.resolved_preset(),
                       "overrides": {k: v for k, v in cfg.overrides.items() if v is not None},
                       "config": config},
                training=dataclasses.asdict(cfg))


class InitFromError(ValueError):
    """--init_from names a model whose weights do not fit this run's model."""


def _resuming(cfg):
    return os.path.exists(os.path.join(cfg.model_dir, "backup", "training_metadata.json"))


def train(cfg: TrainConfig, strategy=None, plan=None):
    """Runs (or resumes) a training run; returns the summary dict (also in summary.json).

    plan: the run's data (`data_plan`; default: the registry dataset `cfg.dataset`).
    Raises InitFromError (before anything is written to model_dir) if `cfg.init_from` does not
    fit the model. The chief holds `<model_dir>/.lock` for the whole run
    (`run_lock.RunLockedError` if another run holds it). A non-finite loss or weight raises
    `NonFiniteError` after summary.json records it; checkpoints, backup, samples and exports
    then still hold the last good state.
    """
    strategy = strategy or get_strategy(cfg.strategy)
    if not is_chief(strategy):
        return _train(cfg, strategy, plan)
    with RunLock(cfg.model_dir):
        return _train(cfg, strategy, plan)


def _train(cfg, strategy, plan):
    start = time.time()
    plan = plan or data_plan.RegistryPlan(cfg)
    info = plan.info
    chief = is_chief(strategy)
    work_dir = cfg.model_dir if chief else tempfile.mkdtemp(prefix="reformer-worker-")
    plan.prepare()
    # Seed after data preparation (it creates TF ops): same seed -> same run, in-process too.
    if not is_multi_worker(strategy):
        keras.utils.clear_session()
    keras.utils.set_random_seed(cfg.seed)
    if cfg.mixed_precision:
        keras.config.set_dtype_policy("mixed_bfloat16")
    total, epochs, spe = plan_steps(cfg)
    with strategy.scope():
        model = model_factory.build_model(cfg.task, cfg.resolved_preset(), info, cfg.overrides,
                                          batch_size=cfg.batch_size,
                                          seed=cfg.seed)
        compile_model(model, info, cfg, total)
    if cfg.init_from and not _resuming(cfg):
        try:
            source = checkpoints.init_weights_from(model, cfg.init_from)
        except ValueError as err:
            raise InitFromError(str(err)) from None
        print(f"init_from: weights of {source}", flush=True)
    os.makedirs(work_dir, exist_ok=True)
    if chief:
        run_file.write_run(cfg.model_dir, run_record(cfg, plan, model))
    resume_step = cb.backup_step(os.path.join(cfg.model_dir, "backup"))
    train_ds, val_ds = _datasets(cfg, plan, strategy, resume_step)
    if is_multi_worker(strategy):
        patch_keras_multi_worker_logs()
        spec = plan.dataset("train", training=True, shuffle_buffer=1).element_spec
    else:
        spec = train_ds.element_spec
    _build_from_local_batch(model, spec)

    from reformer_keras.datasets.files import pipeline_tokenizer
    host_tokenizer = pipeline_tokenizer(plan.tokenizer) if plan.tokenizer else None

    def write(model_, tag):
        paths = samples.write_samples(model_, info, os.path.join(cfg.model_dir, "samples"), tag,
                                      seed=cfg.seed, num_tokens=cfg.sample_tokens,
                                      tokenizer=host_tokenizer)
        checkpoints.log_samples(os.path.join(work_dir, "logs"), cb.global_step(model_), paths)
        return paths

    limit = cb.StepLimit(total, cfg.max_minutes)
    loss_log = cb.LossLog(os.path.join(work_dir, "loss_log.csv"), write=chief,
                          resume_step=resume_step)
    callbacks = [  # order matters: the guard first; ckpt-N before the backup records epoch N
        fault_injection.FaultHooks(),
        NonFiniteGuard(),
        cb.AtomicModelCheckpoint(os.path.join(cfg.model_dir, "checkpoints",
                                              "ckpt-{epoch:04d}.keras"), write=chief),
        checkpoints.KeepCheckpoints(cfg.model_dir, cfg.keep_checkpoints, write=chief),
        cb.AtomicBackupAndRestore(os.path.join(cfg.model_dir, "backup"), write=chief,
                                  delete_checkpoint=False),
        limit,
        keras.callbacks.TensorBoard(os.path.join(work_dir, "logs"), update_freq=max(1, spe // 4)),
        loss_log,
        cb.SampleEvery(lambda m, step: write(m, f"step-{step:06d}"), cfg.sample_every,
                       write=chief),
    ]
    try:
        history = model.fit(train_ds, epochs=epochs, steps_per_epoch=spe,
                            validation_data=val_ds,
                            validation_steps=cfg.eval_steps if val_ds is not None else None,
                            callbacks=callbacks, verbose=cfg.verbose)
    except NonFiniteError as err:
        if chief:
            last_good = cb.backup_step(os.path.join(cfg.model_dir, "backup"))
            summary = dict(step=err.step, total_steps=total, stopped_by="non_finite",
                           non_finite=dict(step=err.step, cause=err.cause),
                           resume_step=last_good, metric=metric_name(info), samples=[],
                           export=None, wall_seconds=round(time.time() - start, 1))
            cb.atomic_write_text(os.path.join(cfg.model_dir, "summary.json"),
                                 json.dumps(summary, indent=1))
        raise
    paths = write(model, "final") if chief else []
    if chief and cfg.export:
        plan.renew_tokenizer()  # TF resources of a tokenizer made before clear_session are gone
    exported = _export(model, cfg, plan.tokenizer) if chief and cfg.export else None
    logs = {k: float(v[-1]) for k, v in history.history.items() if v}
    summary = dict(step=cb.global_step(model), total_steps=total, stopped_by=limit.reason,
                   metric=metric_name(info), logs=logs, samples=paths, export=exported,
                   wall_seconds=round(time.time() - start, 1),
                   losses=[loss for _, loss in loss_log.rows])
    if chief:
        cb.atomic_write_text(os.path.join(cfg.model_dir, "summary.json"),
                             json.dumps({k: v for k, v in summary.items() if k != "losses"},
                                        indent=1))
    return summary


def load_checkpoint(path):
    """`keras.models.load_model` of a .keras checkpoint (or the newest in a model_dir)."""
    import reformer_keras.models  # noqa: F401  (registers the zoo classes)
    import reformer_keras.training.metrics  # noqa: F401
    import reformer_keras.training.tf_fused_adam  # noqa: F401  (registers FusedAdam)
    path = checkpoints.newest_checkpoint(path)
    return keras.models.load_model(path, compile=False), path


def evaluate_checkpoint(checkpoint, dataset=None, task=None, split=None, seq_len=128,
                        batch_size=16, steps=20, data_dir=None, verbose=1, plan=None):
    """Bits (per char / dim / token) and loss of a checkpoint on `steps` batches of a split.

    plan: the run's data (`data_plan`); default: the registry dataset `dataset`.
    """
    model, path = load_checkpoint(checkpoint)
    if plan is None:
        plan = data_plan.RegistryPlan(TrainConfig(task=task, dataset=dataset, seq_len=seq_len,
                                                  batch_size=batch_size, data_dir=data_dir,
                                                  validation_split=split))
    info = plan.info
    plan.prepare()
    ds = plan.dataset(split or "validation", training=False, repeat=False, batch_size=batch_size)
    if ds is None:
        raise ValueError("the run has no validation data (give --split)")
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=_metrics(info))
    results = model.evaluate(ds.take(steps), return_dict=True, verbose=verbose)
    if not results:
        raise ValueError(f"the {split or 'validation'} data gave no batch of {batch_size}")
    default = getattr(plan, "splits", {}).get("validation") or (
        info.spec.splits[1] if isinstance(plan, data_plan.RegistryPlan) else "validation")
    return dict(checkpoint=path, split=split or default, metric=metric_name(info),
                **{k: float(v) for k, v in results.items()})


def sample_checkpoint(checkpoint, dataset, task, out_dir, seq_len=128, seed=0, num_tokens=256,
                      tag="sample"):
    """Loads a checkpoint and writes samples into out_dir; returns the paths."""
    model, _ = load_checkpoint(checkpoint)
    info = pipelines.describe(dataset, task, seq_len)
    return samples.write_samples(model, info, out_dir, tag, seed=seed, num_tokens=num_tokens)
