"""Serving the exports as TF Serving does: a mixed-length prompt batch through generate_text in
a TF1 session (`tf.compat.v1.saved_model.loader.load`, fed and fetched by the signature's
tensor names) equals single-prompt requests row by row; every signature of every exported task
answers malformed requests with an error and stays usable; models.config and temporaries."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from reformer_keras.export import saved_model

PROMPTS = ["To be", "a", "or not to b", "xy"]


def _session_runner(path):
    """(session, run(signature, feeds {input name: value}) -> {output name: value})."""
    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    meta = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)

    def run(signature, feeds):
        sig = meta.signature_def[signature]
        fetches = {k: v.name for k, v in sig.outputs.items()}
        return session.run(fetches, {sig.inputs[k].name: v for k, v in feeds.items()})
    return session, run


def test_mixed_length_batch_in_v1_session_equals_single_requests(exported):
    session, run = _session_runner(exported["text"][1]["path"])
    with session:
        def generate(prompts, temperature):
            return run("generate_text", {"prompt": prompts, "max_new_tokens": 7,
                                         "temperature": temperature, "top_k": 0, "seed": 5})
        for temperature in (0.0, 1.0):
            batch = generate(PROMPTS, temperature)
            assert batch["token_ids"].shape == (4, 1 + max(map(len, PROMPTS)) + 7)
            for row, prompt in enumerate(PROMPTS):
                alone = generate([prompt], temperature)
                assert batch["text"][row] == alone["text"][0]
                assert batch["continuation"][row] == alone["continuation"][0]
                width = alone["token_ids"].shape[1]
                np.testing.assert_array_equal(batch["token_ids"][row, :width],
                                              alone["token_ids"][0])
                assert np.all(batch["token_ids"][row, width:] == 0)  # pad id
                assert batch["text"][row].startswith(prompt.encode())


def _call_bad(fn, inputs):
    """A malformed request must be refused: by the signature's declared dtypes / shapes
    (TypeError / ValueError, what TF Serving reports as INVALID_ARGUMENT) or in the graph
    (InvalidArgumentError) -- never answered, never another error."""
    with pytest.raises((tf.errors.InvalidArgumentError, TypeError, ValueError)):
        fn(**inputs)


def _fuzz_cases(kind, fn_name):
    big = 2**31 - 1
    if fn_name == "serving_default":
        good = {"token_ids": tf.constant([[1, 2, 3]])}
        bad = [{"token_ids": tf.constant([[1.5, 2.0]])}, {"token_ids": tf.constant([1, 2])},
               {"token_ids": tf.zeros([1, 1, 2], tf.int32)}, {"token_ids": tf.zeros([1, 0],
                                                                                    tf.int32)},
               {"token_ids": tf.zeros([0, 0], tf.int32)}, {"token_ids": tf.zeros([1, 999],
                                                                                tf.int32)},
               {"token_ids": tf.constant([[big]])}, {"token_ids": tf.constant([[-big]])},
               {"token_ids": tf.constant([["a"]])}]
        return good, bad
    if fn_name == "score_text":
        return {"text": tf.constant(["hi"])}, [
            {"text": tf.constant([""])}, {"text": tf.constant(["x" * 5000])},
            {"text": tf.constant([[b"a"]])}, {"text": tf.constant([1])},
            {"text": tf.constant("a")}]
    scalars = dict(max_new_tokens=tf.constant(3), seed=tf.constant(1, tf.int64))
    if fn_name == "generate_text":
        good = dict(prompt=tf.constant(["ab"]), temperature=tf.constant(0.0),
                    top_k=tf.constant(0), **scalars)
        extra = [{"prompt": tf.constant([""])}, {"prompt": tf.constant(["x" * 5000])},
                 {"prompt": tf.constant("ab")}, {"prompt": tf.constant([1])},
                 {"temperature": tf.constant(-1.0)}, {"top_k": tf.constant(-1)},
                 {"temperature": tf.constant([1.0])}]
    elif fn_name == "generate_events":
        good = dict(prompt_ids=tf.constant([[5, 6]]), **scalars)
        extra = [{"prompt_ids": tf.constant([[999]])}, {"prompt_ids": tf.constant([[-1]])},
                 {"prompt_ids": tf.zeros([1, 999], tf.int32)},
                 {"prompt_ids": tf.constant([5, 6])}, {"prompt_ids": tf.constant([[0.5]])}]
    else:  # sample_images
        good = dict(count=tf.constant(1), seed=tf.constant(1, tf.int64),
                    class_id=tf.constant(2))
        return good, [{**good, **bad} for bad in [
            {"count": tf.constant(0)}, {"count": tf.constant(-5)},
            {"count": tf.constant([1])}, {"count": tf.constant(1.0)},
            {"seed": tf.constant(-1, tf.int64)}, {"seed": tf.constant(1)},
            {"class_id": tf.constant(99)}, {"class_id": tf.constant(-1)}]]
    lengths = [{"max_new_tokens": tf.constant(v)} for v in (0, -1, big, -big, 10**6)]
    seeds = [{"seed": tf.constant(-1, tf.int64)}, {"seed": tf.constant(1)}]
    return good, [{**good, **bad} for bad in extra + lengths + seeds]


@pytest.mark.parametrize("kind", ["text", "image", "music"])
def test_signature_fuzz_refuses_and_stays_usable(exported, kind):
    signatures = tf.saved_model.load(exported[kind][1]["path"]).signatures
    for name in sorted(signatures):
        fn = signatures[name]
        good, bad_requests = _fuzz_cases(kind, name)
        before = {k: v.numpy() for k, v in fn(**good).items()}
        for bad in bad_requests:
            _call_bad(fn, bad)
        after = {k: v.numpy() for k, v in fn(**good).items()}  # still answers, identically
        for key in before:
            np.testing.assert_array_equal(after[key], before[key])


def test_models_config_relative_base_path_and_atomic_write(exported, tmp_path):
    export_dir = exported["export_dir"]
    text = saved_model.model_config_text(export_dir, base_path="/models")
    assert 'base_path: "/models/tiny_text"' in text and export_dir not in text
    saved_model.write_model_config(export_dir)
    assert not [n for n in os.listdir(export_dir) if n.startswith(".tmp-")]


def test_stale_export_temporaries_of_dead_processes_are_removed(exported, tmp_path):
    model, _ = exported["music"]
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    model_dir = tmp_path / "tiny_music"
    stale = model_dir / f".tmp-{dead}-abc"  # left by an exporter killed mid-write
    live = model_dir / f".tmp-{os.getppid()}-def"  # a concurrent exporter's (alive)
    for path in (stale, live):
        (path / "variables").mkdir(parents=True)
    result = saved_model.export_model(model, tmp_path, "tiny_music", write_config=False)
    assert result["version"] == 1 and os.path.isdir(result["path"])
    assert not stale.exists() and live.exists()
    assert sorted(os.listdir(model_dir)) == [live.name, "1"]
