"""The exported SavedModels: loaded in a fresh TF-only process, op whitelist, saved_model_cli,
TFSMLayer, and clear errors for bad requests."""
import glob
import json
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from reformer_keras import generation
from reformer_keras.export import signatures as sig

HERE = os.path.dirname(os.path.abspath(__file__))
PROMPTS = ["ab", "cd"]


def _ids(rng, shape, vocab):
    return rng.integers(0, vocab, size=shape).astype("int32")


def _request(key, path, signature, **inputs):
    return {"key": key, "path": path, "signature": signature,
            "inputs": {k: {"value": v, "dtype": d} for k, (v, d) in inputs.items()}}


def _byte_prompt(texts):
    return np.array([[1] + [b + 2 for b in t.encode()] for t in texts], "int32")


def _expected_and_requests(exported):
    """(requests for the subprocess, expected outputs computed with the Keras models here)."""
    rng = np.random.default_rng(0)
    requests, expected = [], {}
    for kind in ("text", "image", "music"):
        model, result = exported[kind]
        ids = _ids(rng, (2, 7), model.vocab_size)
        requests.append(_request(f"{kind}/logits", result["path"], "serving_default",
                                 token_ids=(ids.tolist(), "int32")))
        expected[f"{kind}/logits"] = {"logits": np.asarray(model(ids))}
    text, path = exported["text"][0], exported["text"][1]["path"]
    texts = ["hello", "hi"]
    width = max(len(t) for t in texts)
    targets = np.array([[b + 2 for b in t.encode()] + [0] * (width - len(t)) for t in texts])
    mask = np.arange(width)[None] < np.array([len(t) for t in texts])[:, None]
    inputs = np.concatenate([np.ones((2, 1), "int32"), targets[:, :-1]], 1).astype("int32")
    logp = tf.nn.log_softmax(text({"token_ids": inputs, "padding_mask": mask})).numpy()
    logp = np.where(mask, np.take_along_axis(logp, targets[..., None], -1)[..., 0], 0.0)
    requests.append(_request("text/score", path, "score_text", text=(texts, "string")))
    expected["text/score"] = {"token_ids": targets, "log_probs": logp,
                              "bits_per_char": -logp.sum(1) / np.log(2) / mask.sum(1)}
    for name, temperature, top_k in (("sampled", 1.0, 5), ("greedy", 0.0, 0)):
        requests.append(_request(
            f"text/{name}", path, "generate_text", prompt=(PROMPTS, "string"),
            max_new_tokens=(6, "int32"), temperature=(temperature, "float32"),
            top_k=(top_k, "int32"), seed=(7, "int64")))
        ids = np.concatenate([  # generate_text: each row as if sent alone
            generation.generate(text, _byte_prompt([p]), 6, temperature=temperature,
                                top_k=top_k or None, seed=7).numpy() for p in PROMPTS])
        expected[f"text/{name}"] = {"token_ids": ids, "text": [
            bytes(int(i) - 2 for i in row if i > 1).decode("latin-1") for row in ids]}
    image, path = exported["image"][0], exported["image"][1]["path"]
    requests.append(_request("image/sample", path, "sample_images", count=(2, "int32"),
                             seed=(3, "int64"), class_id=(4, "int32")))
    length = 16
    prefix = generation.generate(image, np.full((2, 1), 260, "int32"), length - 1, seed=3)
    eager = sig.sample_images_fn(image, tf.constant(2), tf.constant(3, tf.int64),
                                 tf.constant(4))["images"].numpy()
    expected["image/sample"] = {"images": eager, "prefix": prefix.numpy()[:, 1:]}
    music, path = exported["music"][0], exported["music"][1]["path"]
    for name, prompt in (("prompt", [[5, 6, 7]]), ("empty", [[], []])):
        requests.append(_request(f"music/{name}", path, "generate_events",
                                 prompt_ids=(prompt, "int32"), max_new_tokens=(5, "int32"),
                                 seed=(11, "int64")))
        full = np.array([[music.start_id] + row for row in prompt], "int32")
        out = generation.generate(music, full, 5, seed=11).numpy()[:, 1:]
        expected[f"music/{name}"] = {"event_ids": out}
    return requests, expected


def test_fresh_tf_only_process_matches_keras(exported, tmp_path):
    requests, expected = _expected_and_requests(exported)
    req_path, res_path = tmp_path / "requests.json", tmp_path / "results.json"
    req_path.write_text(json.dumps(requests))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, os.path.join(HERE, "_call_savedmodel.py"),
                           str(req_path), str(res_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(res_path.read_text())
    assert report["modules"] == {"reformer_keras": False}
    got = {k: {n: np.asarray(o["value"]) if o["dtype"] != "string" else o["value"]
               for n, o in v.items()} for k, v in report["results"].items()}
    for kind in ("text", "image", "music"):
        np.testing.assert_allclose(got[f"{kind}/logits"]["logits"],
                                   expected[f"{kind}/logits"]["logits"], atol=1e-5, rtol=0)
    for key in ("token_ids", "log_probs", "bits_per_char"):
        np.testing.assert_allclose(got["text/score"][key], expected["text/score"][key],
                                   atol=1e-5, rtol=0)
    for name in ("sampled", "greedy"):
        np.testing.assert_array_equal(got[f"text/{name}"]["token_ids"],
                                      expected[f"text/{name}"]["token_ids"])
        assert got[f"text/{name}"]["text"] == expected[f"text/{name}"]["text"]
        assert [t[:2] for t in got[f"text/{name}"]["text"]] == PROMPTS
        assert [len(c.encode("latin-1")) for c in got[f"text/{name}"]["continuation"]] == [
            int(np.sum(r[3:] > 1)) for r in expected[f"text/{name}"]["token_ids"]]
    images = got["image/sample"]["images"]
    assert images.shape == (2, 4, 4, 1)
    np.testing.assert_array_equal(images, expected["image/sample"]["images"])
    np.testing.assert_array_equal(images.reshape(2, -1)[:, :-1],
                                  expected["image/sample"]["prefix"])
    for name in ("prompt", "empty"):
        np.testing.assert_array_equal(got[f"music/{name}"]["event_ids"],
                                      expected[f"music/{name}"]["event_ids"])


def _tf_text_op_names():
    import tensorflow_text  # pylint: disable=import-outside-toplevel
    from tensorflow.python.framework import op_def_registry  # pylint: disable=import-outside-toplevel
    names = set()
    root = os.path.dirname(tensorflow_text.__file__)
    for library in glob.glob(os.path.join(root, "**", "*.so"), recursive=True):
        try:
            module = tf.load_op_library(library)
        except (tf.errors.NotFoundError, OSError):
            continue
        names.update(a for a in dir(module)
                     if a[:1].isupper() and op_def_registry.get(a) is not None)
    assert "SentencepieceOp" in names  # sanity: the TF Text ops were found
    return names


def test_graph_has_only_core_and_tf_text_ops(exported):
    from tensorflow.core.protobuf import saved_model_pb2  # pylint: disable=import-outside-toplevel
    allowed = set(dir(tf.raw_ops)) | _tf_text_op_names()
    for kind in ("text", "image", "music"):
        proto = saved_model_pb2.SavedModel()
        with open(os.path.join(exported[kind][1]["path"], "saved_model.pb"), "rb") as f:
            proto.ParseFromString(f.read())
        graph = proto.meta_graphs[0].graph_def
        functions = {fn.signature.name for fn in graph.library.function}
        ops = {n.op for n in graph.node}
        for fn in graph.library.function:
            ops.update(n.op for n in fn.node_def)
        assert len(ops) > 20
        unknown = sorted(op for op in ops if op not in allowed and op not in functions)
        assert not unknown, f"{kind}: ops that are neither core TF nor TF Text: {unknown}"


CLI_EXPECT = {
    "text": {"serving_default": (["token_ids"], ["logits"]),
             "score_text": (["text"], ["token_ids", "log_probs", "bits_per_char"]),
             "generate_text": (["prompt", "max_new_tokens", "temperature", "top_k", "seed"],
                               ["text", "continuation", "token_ids"])},
    "image": {"serving_default": (["token_ids"], ["logits"]),
              "sample_images": (["count", "seed", "class_id"], ["images"])},
    "music": {"serving_default": (["token_ids"], ["logits"]),
              "generate_events": (["prompt_ids", "max_new_tokens", "seed"], ["event_ids"])},
}


def _cli_signatures(text):
    """saved_model_cli `show --all` text -> {signature: {"inputs"/"outputs": {name: (dtype,
    shape)}}}."""
    out, current, part = {}, None, None
    for line in text.splitlines():
        m = re.match(r"signature_def\['(\w+)'\]:", line.strip())
        if m:
            current = out.setdefault(m.group(1), {"inputs": {}, "outputs": {}})
        elif current is not None and "The given SavedModel SignatureDef contains" in line:
            part = "inputs" if "input(s)" in line else "outputs"
        elif current is not None and part:
            m = re.match(r"\s*(inputs|outputs)\['(\w+)'\] tensor_info:", line)
            if m:
                current[part][m.group(2)] = []
                last = current[part][m.group(2)]
            elif line.strip().startswith(("dtype:", "shape:")):
                last.append(line.strip())
    return out


@pytest.mark.parametrize("kind", ["text", pytest.param("image", marks=pytest.mark.slow),
                                  pytest.param("music", marks=pytest.mark.slow)])
def test_saved_model_cli_lists_signatures(exported, kind):
    """The CLI on the text export by default (the other two are `slow`: see also
    test_signature_structure)."""
    for signatures in [CLI_EXPECT[kind]]:
        path = exported[kind][1]["path"]
        proc = subprocess.run([sys.executable, "-m", "tensorflow.python.tools.saved_model_cli",
                               "show", "--all", "--dir", path],
                              capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-2000:]
        listed = _cli_signatures(proc.stdout)
        for name, (inputs, outputs) in signatures.items():
            assert name in listed, proc.stdout[:3000]
            assert sorted(listed[name]["inputs"]) == sorted(inputs)
            assert sorted(listed[name]["outputs"]) == sorted(outputs)
            for info in list(listed[name]["inputs"].values()) + list(
                    listed[name]["outputs"].values()):
                assert info[0].startswith("dtype: DT_") and info[1].startswith("shape:")
        if kind == "text":
            gen = listed["generate_text"]
            assert gen["inputs"]["prompt"] == ["dtype: DT_STRING", "shape: (-1)"]
            assert gen["inputs"]["seed"] == ["dtype: DT_INT64", "shape: ()"]
            assert gen["outputs"]["token_ids"][0] == "dtype: DT_INT32"
            assert listed["serving_default"]["outputs"]["logits"] == [
                "dtype: DT_FLOAT", "shape: (-1, -1, 258)"]
            assert listed["serving_default"]["inputs"]["token_ids"] == [
                "dtype: DT_INT32", "shape: (-1, -1)"]


def test_tfsmlayer_gives_the_same_logits(exported):
    model, result = exported["text"]
    layer = keras.layers.TFSMLayer(result["path"], call_endpoint="serving_default")
    ids = np.random.default_rng(1).integers(0, 258, size=(3, 11)).astype("int32")
    out = layer(ids)
    out = out["logits"] if isinstance(out, dict) else out
    np.testing.assert_allclose(np.asarray(out), np.asarray(model(ids)), atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def loaded(exported):
    """kind -> the signatures of the export loaded in this process."""
    return {kind: tf.saved_model.load(exported[kind][1]["path"]).signatures
            for kind in ("text", "image", "music")}


def _raises(fn, pattern, **inputs):
    with pytest.raises(tf.errors.InvalidArgumentError, match=pattern):
        fn(**inputs)


def test_bad_requests_name_the_problem(loaded):
    logits, score, gen = (loaded["text"][k] for k in ("serving_default", "score_text",
                                                       "generate_text"))
    _raises(logits, r"out of range.*vocab_size=258", token_ids=tf.constant([[1, 258]]))
    _raises(logits, r"out of range", token_ids=tf.constant([[-1, 3]]))
    _raises(logits, r"too long.*max_len 32", token_ids=tf.zeros([1, 33], tf.int32))
    _raises(logits, r"token_ids.*not compatible with expected shape \[\?,\?\]",
            token_ids=tf.constant([1, 2, 3]))
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError),
                       match="int32"):  # wrong dtype: refused by the signature itself
        logits(token_ids=tf.constant([[1.0, 2.0]]))
    _raises(score, r"empty string", text=tf.constant(["ok", ""]))
    _raises(score, r"too long", text=tf.constant(["x" * 40]))
    good = dict(prompt=tf.constant(["ab"]), max_new_tokens=tf.constant(3),
                temperature=tf.constant(1.0), top_k=tf.constant(0),
                seed=tf.constant(1, tf.int64))
    _raises(gen, r"empty string in `prompt`", **{**good, "prompt": tf.constant([""])})
    _raises(gen, r"too long", **{**good, "max_new_tokens": tf.constant(40)})
    _raises(gen, r"temperature", **{**good, "temperature": tf.constant(-1.0)})
    _raises(gen, r"max_new_tokens", **{**good, "max_new_tokens": tf.constant(0)})
    _raises(loaded["music"]["generate_events"], r"out of range.*vocab_size=390",
            prompt_ids=tf.constant([[400]]), max_new_tokens=tf.constant(2),
            seed=tf.constant(0, tf.int64))
    _raises(loaded["image"]["sample_images"], r"class_id.*out of range",
            count=tf.constant(1), seed=tf.constant(0, tf.int64), class_id=tf.constant(10))


def test_signature_structure(loaded):
    """Names, dtypes and shapes of every signature's inputs and outputs (loaded in-process)."""
    for kind, signatures in CLI_EXPECT.items():
        assert sorted(loaded[kind]) == sorted(signatures)
        for name, (inputs, outputs) in signatures.items():
            fn = loaded[kind][name]
            assert sorted(fn.structured_input_signature[1]) == sorted(inputs)
            assert sorted(fn.structured_outputs) == sorted(outputs)
    images = loaded["image"]["sample_images"]
    assert images.structured_outputs["images"].dtype == tf.uint8
    assert images.structured_outputs["images"].shape.as_list() == [None, 4, 4, 1]
    events = loaded["music"]["generate_events"].structured_input_signature[1]
    assert events["prompt_ids"].dtype == tf.int32 and events["prompt_ids"].shape.rank == 2
