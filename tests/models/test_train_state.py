"""TrainStateMixin: every task's step is traced once, because its weights and optimizer slots
exist before Keras traces it; Keras's own deferred building (the reference) traces twice."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.models import ReformerClassifier, ReformerLM, ReformerSeq2Seq
from reformer_keras.models.train_state import TrainStateMixin

_SMALL = dict(d_model=16, num_heads=2, d_ff=32, bucket_size=4, num_buckets=4, num_hashes=2,
              seed=0)


def _lm():
    return ReformerLM(vocab_size=20, num_layers=2, attention_types=["lsh", "local"], max_len=16,
                      **_SMALL)


def _classifier():
    return ReformerClassifier(num_classes=3, vocab_size=20, num_layers=2,
                              attention_types=["lsh"], max_len=16, **_SMALL)


def _seq2seq():
    return ReformerSeq2Seq(encoder_vocab_size=20, decoder_vocab_size=23, num_encoder_layers=1,
                           num_decoder_layers=1, encoder_attention_types=["lsh"],
                           decoder_attention_types=["full"], encoder_max_len=16,
                           decoder_max_len=16, **_SMALL)


def _batch(kind):
    rng = np.random.default_rng(0)
    ids = lambda vocab: rng.integers(1, vocab, (2, 16)).astype("int32")
    if kind == "lm":
        return ids(20), ids(20)
    if kind == "classifier":
        return ids(20), np.array([0, 2], "int32")
    return {"encoder_token_ids": ids(20), "decoder_token_ids": ids(23)}, ids(23)


_MODELS = {"lm": _lm, "classifier": _classifier, "seq2seq": _seq2seq}


def _count_traces(model, name):
    """Wraps `model.<name>` (train_step / test_step / predict_step); returns the call list."""
    calls, original = [], getattr(model, name)

    def counted(*args):
        calls.append(1)
        return original(*args)

    setattr(model, name, counted)
    return calls


def _compiled(kind):
    model = _MODELS[kind]()
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


@pytest.mark.parametrize("kind", sorted(_MODELS))
def test_train_step_is_traced_once(kind, monkeypatch):
    x, y = _batch(kind)
    model = _compiled(kind)
    traces = _count_traces(model, "train_step")
    model.train_on_batch(x, y)
    assert model.built and model.optimizer.built
    model.train_on_batch(x, y)
    assert len(traces) == 1
    # Reference: Keras's deferred building creates the variables inside the traced step,
    # which tf.function answers by tracing it twice.
    monkeypatch.setattr(TrainStateMixin, "build_train_state", lambda self, optimizer=True: None)
    lazy = _compiled(kind)
    lazy_traces = _count_traces(lazy, "train_step")
    lazy.train_on_batch(x, y)
    lazy.train_on_batch(x, y)
    assert len(lazy_traces) == 2
    assert len(lazy.weights) == len(model.weights)
    assert len(lazy.optimizer.variables) == len(model.optimizer.variables)


def test_fit_evaluate_predict_trace_once_and_train():
    keras.utils.set_random_seed(0)  # unseeded, the 3-step loss drop was sometimes ~0
    x, y = _batch("lm")
    model = _compiled("lm")
    traces = {n: _count_traces(model, n) for n in ("train_step", "test_step", "predict_step")}
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, epochs=3, verbose=0)
    model.predict(x, verbose=0)
    model.predict(x, verbose=0)
    assert {n: len(c) for n, c in traces.items()} == {
        "train_step": 1, "test_step": 1, "predict_step": 1}
    assert history.history["loss"][-1] < before


def test_state_is_built_for_any_length():
    model = _compiled("lm")
    model.make_train_function()
    assert model.built and model.optimizer.built
    logits = model.predict(np.ones((1, 7), "int32"), verbose=0)
    assert logits.shape == (1, 7, 20)


def test_under_a_distribution_strategy():
    x, y = _batch("lm")
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        model = _compiled("lm")
    traces = _count_traces(model, "train_step")
    model.fit(x, y, epochs=2, verbose=0)
    assert len(traces) == 1
    assert model.optimizer.built and model.optimizer.iterations.numpy() == 2


_REPLICAS = r"""
import json
import keras
import test_train_state as t
from reformer_keras.models.train_state import TrainStateMixin
if sys.argv[2] == "keras":  # the reference: Keras's own symbolic build
    del TrainStateMixin.prepare_symbolic_build_batch
out = {}
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])  # one: its collective keys
for kind, make in [("lm", t._lm), ("classifier", t._classifier), ("seq2seq", t._seq2seq)]:
    with strategy.scope():
        model = make()
        model.compile(optimizer="adam",
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = t._batch(kind)
    try:
        history = model.fit(tf.data.Dataset.from_tensors((x, y)).repeat(2), verbose=0)
        out[kind] = [int(model.optimizer.iterations.numpy()), history.history["loss"][-1]]
    except ValueError as e:
        out[kind] = " ".join(str(e).split())[:600]
print(json.dumps(out))
"""


@pytest.mark.parametrize("build", ["library", "keras"])
def test_fit_with_two_replicas(build, run_on_two_cpus):
    """With several replicas Keras averages the first batch before building, so integer ids
    reach the model as floats; the mixin gives them back their dtype (Keras's path fails)."""
    out = run_on_two_cpus(_REPLICAS, build)
    for kind in ("lm", "classifier", "seq2seq"):
        if build == "library":
            steps, loss = out[kind]
            assert steps == 2 and np.isfinite(loss)
        else:
            assert "must be an integer tensor" in out[kind]


_SAME_STEP = r"""
import json
import keras, numpy as np
from reformer_keras.layers import tf_reversible
from reformer_keras.models import ReformerLM
if sys.argv[2] == "shared_programs":  # the reference: the depth-shared programs regardless
    tf_reversible._distributed = lambda blocks: False
data = np.random.default_rng(0).integers(1, 20, (2, 17)).astype("int32")
weights = {}
for name, strategy in [("one", tf.distribute.get_strategy()),
                       ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))]:
    with strategy.scope():
        model = ReformerLM(vocab_size=20, num_layers=3, attention_types=["lsh"], max_len=16,
                           d_model=16, num_heads=2, d_ff=32, bucket_size=4, num_buckets=4,
                           num_hashes=2, seed=0)
        model.build((None, None))
        model.compile(optimizer=keras.optimizers.SGD(0.5),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    start = [w.copy() for w in model.get_weights()] if name == "one" else start
    model.set_weights(start)
    model.fit(tf.data.Dataset.from_tensors((data[:, :-1], data[:, 1:])), verbose=0)
    weights[name] = model.get_weights()
paths = [v.path for v in model.weights]
print(json.dumps({p: [float(np.abs(a - b).max()), float(np.abs(a - s).max())]
                  for p, a, b, s in zip(paths, weights["two"], weights["one"], start)}))
"""


@pytest.mark.parametrize("stack", ["library", "shared_programs"])
def test_two_replicas_take_the_single_device_step(stack, run_on_two_cpus):
    """One SGD step of a 3-layer all-LSH LM: two replicas (half the batch each) give the
    weights one device gives for the whole batch. The depth-shared block programs, given
    distributed variables (the reference), leave every block above the first unchanged."""
    diffs = run_on_two_cpus(_SAME_STEP, stack)
    stuck = [p for p, (_, moved) in diffs.items() if "stack" in p and moved == 0.0]
    if stack == "library":
        assert not stuck
        for path, (diff, moved) in diffs.items():
            assert diff < 1e-5 + 1e-3 * moved, path
    else:
        assert any("attention_1" in p for p in stuck) and any("attention_2" in p for p in stuck)


def test_symbolic_build_inputs_get_integer_ids_back():
    """What Keras's averaged batch looks like (float ids, float mask, float labels): ids and
    labels come back int32, a padding mask keeps its dtype."""
    from reformer_keras.models.train_state import _as_ids  # pylint: disable=import-outside-toplevel
    ids, mask = tf.constant([[3.0, 4.0]]), tf.constant([[1.0, 0.0]])
    x = _as_ids({"token_ids": ids, "padding_mask": mask, "decoder_token_ids": ids})
    assert x["token_ids"].dtype == x["decoder_token_ids"].dtype == tf.int32
    assert x["padding_mask"].dtype == tf.float32
    assert _as_ids(ids).dtype == tf.int32 and _as_ids(None) is None
    np.testing.assert_array_equal(_as_ids(ids).numpy(), [[3, 4]])
