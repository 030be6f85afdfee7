"""Every preset builds with the parameter count of a hand-derived formula (paper-size ones
without a full-length forward), runs one short forward; tiny presets train one step."""

import itertools
import math

import keras
import numpy as np
import pytest

from reformer_keras import models
from reformer_keras.models import PRESETS, from_preset, presets_markdown

TINY = [n for n in sorted(PRESETS) if n.startswith("tiny_")]
PAPER = ["enwik8", "imagenet64", "crime_and_punishment", "wmt14_base"]


# --- reference parameter counts, written from the architecture description -------------------
def _attention(kind, d, h, dh):
    projections = 2 if kind == "lsh" else 3          # LSH shares the query/key projection
    return projections * d * h * dh + h * dh * d      # + output projection


def _ff(d, d_ff):
    return d * d_ff + d_ff + d_ff * d + d


def _norm(d):
    return 2 * d


def _trunk(c, vocab, positions, cross_context=None):
    d, h = c["d_model"], c["num_heads"]
    dh = c.get("head_dim") or d // h
    n, types = c["num_layers"], c["attention_types"]
    total = vocab * d + positions
    for kind in itertools.islice(itertools.cycle(types), n):
        total += _norm(d) + _attention(kind, d, h, dh) + _norm(d) + _ff(d, c["d_ff"])
        if cross_context:
            total += _norm(d) + d * h * dh + 2 * cross_context * h * dh + h * dh * d
    return total + _norm(2 * d)


def _positions(c, max_len=None):
    if c.get("axial_shape"):
        dims = c.get("axial_dims") or [c["d_model"] // 2, c["d_model"] - c["d_model"] // 2]
        return sum(s * k for s, k in zip(c["axial_shape"], dims))
    return (max_len or c.get("max_len") or 4096) * c["d_model"]


def reference_params(task, c):
    d2 = 2 * c["d_model"]
    if task in ("ReformerLM", "ReformerMusicGenerator", "ReformerClassifier"):
        vocab = c.get("vocab_size", 390)
        head = c["num_classes"] if task == "ReformerClassifier" else vocab
        return _trunk(c, vocab, _positions(c)) + d2 * head + head
    if task == "ReformerImageGenerator":
        third = c["d_model"] // 3
        dims = c.get("axial_dims") or [c["d_model"] - 2 * third, third, third]
        positions = sum(s * k for s, k in zip(c["image_shape"], dims))
        vocab = 256 + (c.get("num_classes") or 1)
        return _trunk(c, vocab, positions) + d2 * 256 + 256
    assert task == "ReformerSeq2Seq"
    enc = dict(c, num_layers=c["num_encoder_layers"], attention_types=c["encoder_attention_types"])
    dec = dict(c, num_layers=c["num_decoder_layers"], attention_types=c["decoder_attention_types"])
    v = c["decoder_vocab_size"]
    return (_trunk(enc, c["encoder_vocab_size"], c["encoder_max_len"] * c["d_model"]) +
            _trunk(dec, v, c["decoder_max_len"] * c["d_model"], cross_context=d2) + d2 * v + v)


def _short_inputs(name, model, length=128):
    rng = np.random.default_rng(0)
    length = min(length, PRESETS[name].max_length)
    if isinstance(model, models.ReformerSeq2Seq):
        return {"encoder_token_ids": rng.integers(2, 100, (1, length)).astype("int32"),
                "decoder_token_ids": rng.integers(2, 100, (1, length)).astype("int32")}
    return rng.integers(0, 256, (1, length)).astype("int32")


def _build(model):
    if isinstance(model, models.ReformerSeq2Seq):
        model.build({"encoder_token_ids": (None, None), "decoder_token_ids": (None, None)})
    else:
        model.build((None, None))


@pytest.mark.parametrize("name", PAPER + TINY)
def test_preset_builds_with_reference_parameter_count(name):
    preset = PRESETS[name]
    model = from_preset(name)
    _build(model)                              # variables only: no full-length forward
    count = model.count_params()
    assert count == preset.params, (name, count)
    described = dict(preset.config.to_dict(), **dict(preset.task_args))
    assert count == reference_params(preset.task, described), name
    x = _short_inputs(name, model)             # one forward at a short length
    logits = np.asarray(model(x))
    assert np.isfinite(logits).all()
    if preset.task == "ReformerClassifier":
        assert logits.shape == (1, described["num_classes"])
    else:
        assert logits.shape[:2] == (1, min(128, preset.max_length))


def test_paper_preset_lengths_and_shapes():
    assert from_preset("enwik8").max_len == 65_536
    assert from_preset("crime_and_punishment").max_len == 524_288 == 512 * 1024
    image = from_preset("imagenet64")
    assert image.max_len == 12_288 == 64 * 64 * 3 and image.backbone.axial_shape == [64, 64, 3]
    wmt = PRESETS["wmt14_base"].config
    assert (wmt.num_encoder_layers, wmt.num_decoder_layers, wmt.d_model, wmt.d_ff,
            wmt.num_heads) == (6, 6, 512, 2048, 8)
    assert PRESETS["enwik8"].config.num_layers == 12
    assert PRESETS["imagenet64"].config.num_layers == 6


def _tiny_batch(name, model):
    rng = np.random.default_rng(1)
    if name == "tiny_image":
        images = rng.integers(0, 256, (2, 8, 8, 1)).astype("uint8")
        return model.preprocessor(images, class_ids=np.array([3, 7]))
    if name == "tiny_seq2seq":
        x = {"encoder_token_ids": rng.integers(2, 258, (2, 24)).astype("int32"),
             "decoder_token_ids": rng.integers(2, 258, (2, 20)).astype("int32")}
        return x, rng.integers(2, 258, (2, 20)).astype("int32")
    if name == "tiny_classifier":
        return rng.integers(2, 258, (2, 32)).astype("int32"), np.array([0, 1])
    vocab = model.vocab_size
    seq = rng.integers(2, vocab, (2, 33)).astype("int32")
    return seq[:, :-1], seq[:, 1:]


@pytest.mark.parametrize("name", TINY)
def test_tiny_preset_trains_one_step(name):
    model = from_preset(name)
    # Eager fit: tracing a reversible train step costs 20-50 s per model on this shared CPU;
    # graph-mode fit of the LM is covered by test_reformer_lm.py and the reversible decoder's
    # graph-mode gradient by test_seq2seq.py.
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True,
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = _tiny_batch(name, model)
    history = model.fit(x, y, batch_size=2, epochs=1, verbose=0)
    loss = history.history["loss"][0]
    assert math.isfinite(loss) and loss > 0


def test_unknown_and_mismatched_presets_raise():
    with pytest.raises(ValueError, match="Unknown preset 'gpt9'.*enwik8.*tiny_text"):
        from_preset("gpt9")
    with pytest.raises(ValueError, match="Unknown preset.*wmt14_base"):
        models.ReformerSeq2Seq.from_preset("wmt14")
    with pytest.raises(ValueError, match="ReformerSeq2Seq preset, not a ReformerLM"):
        models.ReformerLM.from_preset("wmt14_base")
    lm = models.ReformerLM.from_preset("tiny_text", num_layers=1, d_model=32)
    assert lm.backbone.num_layers == 1 and lm.backbone.d_model == 32
    assert isinstance(models.ReformerImageGenerator.from_preset("tiny_image"),
                      models.ReformerImageGenerator)


def test_presets_markdown_lists_every_preset():
    table = presets_markdown()
    lines = table.strip().splitlines()
    assert lines[0].startswith("| preset | task |") and set(lines[1]) <= set("|-")
    assert len(lines) == 2 + len(PRESETS)
    for name, preset in PRESETS.items():
        row = next(line for line in lines if line.startswith(f"| `{name}` |"))
        assert f"{preset.params:,}" in row and preset.task in row
        assert row.count("|") == lines[0].count("|")
