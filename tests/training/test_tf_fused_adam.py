"""FusedAdam against keras.optimizers.Adam: same updates, same slots, smaller step graph.

Sparse gradients (an embedding lookup's `IndexedSlices`) are the one difference: FusedAdam applies
Adam to the gradient they stand for (densified: duplicate rows summed), as PyTorch's Adam and
Keras 2 did; Keras 3's Adam squares each duplicate row separately. The reference for those is
`DenseKerasAdam`, Keras's update on the densified gradient."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.models import ReformerLM
from reformer_keras.training.metrics import WarmupSchedule
from reformer_keras.training.tf_fused_adam import FusedAdam

# No LSH layer: a hash flipped by float rounding would make the two runs diverge discretely.
TINY = dict(vocab_size=32, d_model=16, num_heads=2, d_ff=32, num_layers=2, bucket_size=4,
            num_hashes=2, attention_types=("local", "full"), max_len=16, seed=0)


class DenseKerasAdam(keras.optimizers.Adam):
    """Reference: Keras's Adam update, given sparse gradients as the dense tensors they sum to."""

    def update_step(self, gradient, variable, learning_rate):
        if isinstance(gradient, tf.IndexedSlices):
            gradient = tf.convert_to_tensor(gradient)
        return super().update_step(gradient, variable, learning_rate)


def _apply_steps(make_optimizer, steps=5, graph=True, sparse=False):
    """Variables after `steps` applies of fixed random gradients (dense, or IndexedSlices)."""
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=s).astype("float32"), name=f"w{i}")
                 for i, s in enumerate([(7, 5), (5,), (3, 4, 2)])]
    grads = [[rng.normal(size=v.shape).astype("float32") for v in variables]
             for _ in range(steps)]
    opt = make_optimizer()
    opt.build(variables)

    def apply(gs):
        gs = [tf.convert_to_tensor(g) for g in gs]
        if sparse:  # rows 0, 2 and 0 again of the first variable, as an embedding lookup gives
            gs[0] = tf.IndexedSlices(tf.gather(gs[0], [0, 2, 1]), tf.constant([0, 2, 0]),
                                     tf.constant(list(variables[0].shape)))
        opt.apply(gs, variables)

    step = tf.function(apply) if graph else apply
    for gs in grads:
        step(gs)
    return [v.numpy() for v in variables], [s.numpy() for s in opt.variables]


@pytest.mark.parametrize("graph", [True, False])
@pytest.mark.parametrize("kwargs", [
    dict(learning_rate=1e-2),
    dict(learning_rate=3e-3, beta_1=0.8, beta_2=0.95, epsilon=1e-4, clipnorm=1.0),
    dict(learning_rate=1e-2, weight_decay=0.1, global_clipnorm=0.5),
    dict(learning_rate=1e-2, amsgrad=True),
])
def test_same_updates_and_slots_as_keras_adam(kwargs, graph):
    fused, fused_slots = _apply_steps(lambda: FusedAdam(**kwargs), graph=graph)
    plain, plain_slots = _apply_steps(lambda: keras.optimizers.Adam(**kwargs), graph=graph)
    start, _ = _apply_steps(lambda: keras.optimizers.SGD(0.0), graph=graph)
    for a, b, s in zip(fused, plain, start):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert np.abs(a - s).max() > 1e-3  # the variables did move
    assert len(fused_slots) == len(plain_slots)
    for a, b in zip(fused_slots, plain_slots):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_same_updates_with_a_schedule_and_sparse_gradients():
    schedule = lambda: WarmupSchedule(1e-2, "cosine", 2, 5)  # noqa: E731
    fused, _ = _apply_steps(lambda: FusedAdam(schedule()), sparse=True)
    dense, _ = _apply_steps(lambda: DenseKerasAdam(schedule()), sparse=True)
    keras_sparse, _ = _apply_steps(lambda: keras.optimizers.Adam(schedule()), sparse=True)
    for a, b in zip(fused, dense):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Keras 3's own sparse update differs on the duplicated row (0) only.
    assert np.abs(keras_sparse[0][0] - fused[0][0]).max() > 1e-4
    np.testing.assert_allclose(keras_sparse[0][1:], fused[0][1:], rtol=1e-5, atol=1e-6)


def _fit_weights(optimizer, jit_compile=False, steps=3):
    keras.utils.set_random_seed(0)
    model = ReformerLM(**TINY)
    model.compile(optimizer=optimizer, jit_compile=jit_compile,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = np.random.default_rng(1).integers(0, 32, size=(4, 17)).astype("int32")
    losses = [float(model.train_on_batch(data[:, :-1], data[:, 1:])) for _ in range(steps)]
    return model, losses


@pytest.mark.parametrize("jit_compile", [False, True])
def test_reformer_lm_trains_as_with_keras_adam_on_dense_gradients(jit_compile):
    fused, fused_losses = _fit_weights(FusedAdam(1e-2, clipnorm=1.0), jit_compile)
    plain, plain_losses = _fit_weights(DenseKerasAdam(1e-2, clipnorm=1.0), jit_compile)
    np.testing.assert_allclose(fused_losses, plain_losses, rtol=1e-4)
    assert fused_losses[-1] < fused_losses[0]
    for a, b in zip(fused.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _train_step_ops(optimizer):
    keras.utils.set_random_seed(0)
    model = ReformerLM(**TINY)
    model.compile(optimizer=optimizer,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.build((None, None))
    model.optimizer.build(model.trainable_variables)
    x = tf.zeros((2, 16), tf.int32)
    graph = tf.function(model.train_step).get_concrete_function((x, x)).graph
    types = [op.type for op in graph.get_operations()]
    return len(types), types.count("ResourceApplyAdam"), len(model.trainable_variables)


def test_train_step_graph_is_smaller():
    fused_ops, fused_kernels, n_vars = _train_step_ops(FusedAdam(1e-3))
    plain_ops, plain_kernels, _ = _train_step_ops(keras.optimizers.Adam(1e-3))
    assert fused_kernels == n_vars and plain_kernels == 0
    # Keras's update is ~45 ops per variable; the fused one a kernel and a handful of reads.
    assert plain_ops - fused_ops > 20 * n_vars


def test_serialization_and_resume_from_a_saved_model(tmp_path):
    opt = FusedAdam(2e-3, beta_1=0.85, clipnorm=1.0)
    clone = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert type(clone) is FusedAdam and clone.get_config() == opt.get_config()

    model, _ = _fit_weights(FusedAdam(1e-2), steps=2)
    path = str(tmp_path / "lm.keras")
    model.save(path)
    restored = keras.models.load_model(path)
    assert type(restored.optimizer) is FusedAdam
    data = np.random.default_rng(2).integers(0, 32, size=(4, 17)).astype("int32")
    a = float(model.train_on_batch(data[:, :-1], data[:, 1:]))
    b = float(restored.train_on_batch(data[:, :-1], data[:, 1:]))
    assert a == pytest.approx(b, rel=1e-5)
    for x, y in zip(model.get_weights(), restored.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


_MIRRORED = r"""
import json
import keras, numpy as np
from reformer_keras.models import ReformerLM
from reformer_keras.training.tf_fused_adam import FusedAdam
from test_tf_fused_adam import TINY, DenseKerasAdam
out = {}
for name, make in [("fused", FusedAdam), ("plain", DenseKerasAdam)]:
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        keras.utils.set_random_seed(0)
        model = ReformerLM(**TINY)
        model.compile(optimizer=make(1e-2, clipnorm=1.0),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    data = np.random.default_rng(1).integers(0, 32, size=(4, 17)).astype("int32")
    ds = tf.data.Dataset.from_tensors((data[:, :-1], data[:, 1:])).repeat(3)
    model.fit(ds, epochs=1, verbose=0)
    out[name] = [w.tolist() for w in model.get_weights()]
    out[name + "_iterations"] = int(model.optimizer.iterations.numpy())
print(json.dumps(out))
"""


def test_mirrored_strategy_matches_keras_adam_on_dense_gradients(run_on_two_cpus):
    out = run_on_two_cpus(_MIRRORED)
    assert out["fused_iterations"] == out["plain_iterations"] == 3
    for a, b in zip(out["fused"], out["plain"]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-5)
