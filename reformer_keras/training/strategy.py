"""Distribution strategy selection: auto | one_device | mirrored | multi_worker | tpu.

`get_strategy` must run before other TensorFlow work in the process (multi-worker collectives
are configured when the strategy is created).
"""
import json
import os

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def _num_workers():
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err})") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def get_strategy(name="auto"):
    """A `tf.distribute.Strategy`.

    auto: multi_worker if TF_CONFIG lists >1 worker, else mirrored on >1 GPU, else one device
    (GPU:0 or CPU:0). tpu: TPUClusterResolver (TPU VM or $TPU_NAME).

    Raises:
      ValueError: unknown name, or no TPU / no cluster when one is requested.
    """
    import tensorflow as tf
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; expected one of {STRATEGIES}")
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        name = ("multi_worker" if _num_workers() > 1 else
                "mirrored" if len(gpus) > 1 else "one_device")
    if name == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        if _num_workers() < 1:
            raise ValueError("multi_worker needs TF_CONFIG with a cluster spec")
        return tf.distribute.MultiWorkerMirroredStrategy()
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
            tpu=os.environ.get("TPU_NAME", "local"))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as err:
        raise ValueError(f"no TPU available ({str(err).splitlines()[0][:120]})") from None
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """True on the worker that writes checkpoints, logs and samples (task 0 / the chief)."""
    import tensorflow as tf
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type in (None, "chief") or (task_type == "worker" and task_id == 0 and
                                            "chief" not in resolver.cluster_spec().as_dict())


def is_multi_worker(strategy):
    """True for a MultiWorkerMirroredStrategy over more than one worker (its cluster spec has
    more than one chief / worker task)."""
    import tensorflow as tf
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    resolver = getattr(strategy, "cluster_resolver", None)
    spec = resolver.cluster_spec().as_dict() if resolver is not None else {}
    return sum(len(spec.get(job, ())) for job in ("chief", "worker")) > 1


def patch_keras_multi_worker_logs():
    """Works around Keras 3.15 + MultiWorkerMirroredStrategy: `fit` reduces each step's scalar
    logs with `strategy.reduce("MEAN", v, axis=0)`, which fails for 0-d values ("Invalid
    reduction dimension 0"). Scalars are reduced with axis=None instead (the mean over workers
    of the per-worker values; equal per-worker batches make it the global-batch mean).
    Idempotent; only changes behaviour under multi-worker MultiWorkerMirroredStrategy."""
    import tensorflow as tf

    def make_wrapper(original):
        def reduce_per_replica(values, strategy, reduction):
            if reduction in ("auto", "mean") and is_multi_worker(strategy):
                def mean(v):
                    local = v.values[0] if isinstance(v, tf.distribute.DistributedValues) else v
                    if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                        return strategy.reduce("MEAN", v, axis=None)
                    return original(v, strategy, reduction)
                return tf.nest.map_structure(mean, values, expand_composites=False)
            return original(values, strategy, reduction)
        return reduce_per_replica

    from reformer_keras import tf_keras_compat  # Keras: not at import (flags are parsed first)
    tf_keras_compat.wrap_reduce_per_replica(make_wrapper)
