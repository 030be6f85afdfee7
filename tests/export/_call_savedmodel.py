"""Standalone: loads SavedModels and calls their signatures, importing only TensorFlow
(+ tensorflow_text). Used by test_exported_models.py in a fresh subprocess, with a working
directory and PYTHONPATH from which `reformer_keras` cannot be imported.

  python _call_savedmodel.py requests.json results.json

requests.json: [{"key": str, "path": version dir, "signature": name,
                 "inputs": {name: {"value": nested list / scalar, "dtype": "int32"|...}}}]
results.json:  {"modules": {...}, "results": {key: {output: {"value": list, "dtype": str}}}}
"""
import json
import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (registers TF Text ops, if a graph uses them)


def _value(spec):
    if spec["dtype"] == "string":
        return tf.constant([s.encode("latin-1") for s in spec["value"]], tf.string)
    return tf.constant(np.array(spec["value"], dtype=spec["dtype"]))


def _jsonable(tensor):
    array = tensor.numpy()
    if array.dtype == object:
        return {"value": [s.decode("latin-1") for s in array.reshape(-1)], "dtype": "string",
                "shape": list(array.shape)}
    return {"value": array.tolist(), "dtype": array.dtype.name, "shape": list(array.shape)}


def main(requests_path, results_path):
    with open(requests_path, encoding="utf-8") as f:
        requests = json.load(f)
    loaded, results = {}, {}
    for request in requests:
        path = request["path"]
        if path not in loaded:
            loaded[path] = tf.saved_model.load(path)
        fn = loaded[path].signatures[request["signature"]]
        outputs = fn(**{k: _value(v) for k, v in request["inputs"].items()})
        results[request["key"]] = {k: _jsonable(v) for k, v in outputs.items()}
    modules = {"reformer_keras": any(m.startswith("reformer_keras") for m in sys.modules)}
    with open(results_path, "w", encoding="utf-8") as f:
        json.dump({"modules": modules, "results": results}, f)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
