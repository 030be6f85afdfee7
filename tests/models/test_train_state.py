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
