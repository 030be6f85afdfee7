"""Minimal TF Serving clients for the exported signatures (no TensorFlow needed for REST).

  rest_predict(server, model_name, signature, inputs, version=None, timeout=60) -> dict
      POST http://<server>/v1/models/<model_name>[/versions/<v>]:predict with
      {"signature_name": signature, "inputs": {name: value}} (columnar format);
      returns {output name: value (nested lists / str)}.
  grpc_predict(server, model_name, signature, inputs, dtypes, version=None, timeout=60) -> dict
      The same over gRPC (port 8500 by default); needs tensorflow-serving-api
      (`pip install -e ".[serving]"`); returns {output name: numpy array}.

Errors raise `ServingError` with one line naming the server and the server's message.
"""

import json
import urllib.error
import urllib.request


class ServingError(RuntimeError):
    """A request to TF Serving failed (unreachable server, or an error from the model)."""


def rest_url(server, model_name, version=None):
    """http://<server>/v1/models/<model_name>[/versions/<version>]:predict."""
    base = server if server.startswith(("http://", "https://")) else f"http://{server}"
    path = f"/v1/models/{model_name}" + (f"/versions/{int(version)}" if version else "")
    return base.rstrip("/") + path + ":predict"


def rest_predict(server, model_name, signature, inputs, version=None, timeout=60.0):
    """Calls `signature` with named `inputs` (JSON-able values) -> dict of named outputs.

    TF Serving returns a single-output signature's value without its name; it is returned as
    {"output": value} then.
    """
    url = rest_url(server, model_name, version)
    body = json.dumps({"signature_name": signature, "inputs": inputs}).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            reply = json.loads(response.read().decode("utf-8", errors="replace"))
    except urllib.error.HTTPError as err:
        detail = err.read().decode("utf-8", errors="replace")
        try:
            detail = json.loads(detail).get("error", detail)
        except ValueError:
            pass
        raise ServingError(f"{url}: HTTP {err.code}: {' '.join(str(detail).split())}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise ServingError(f"cannot reach TF Serving at {server} ({url}): {reason}") from None
    outputs = reply.get("outputs", reply.get("predictions"))
    return outputs if isinstance(outputs, dict) else {"output": outputs}


def grpc_predict(server, model_name, signature, inputs, dtypes, version=None, timeout=60.0):
    """gRPC Predict. `inputs` {name: value}, `dtypes` {name: "int32" | "float32" | "int64" |
    "string"} -> {output name: numpy array}. Imports tensorflow-serving-api lazily."""
    try:
        import grpc  # pylint: disable=import-outside-toplevel
        import tensorflow as tf  # pylint: disable=import-outside-toplevel
        from tensorflow_serving.apis import (  # pylint: disable=import-outside-toplevel
            predict_pb2, prediction_service_pb2_grpc)
    except ImportError as err:
        raise ServingError(f"gRPC needs tensorflow-serving-api ({err}); install it with "
                           "`pip install -e \".[serving]\"`, or use the REST API.") from None
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    if version:
        request.model_spec.version.value = int(version)
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value, dtype=dtypes[name]))
    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(server))
    try:
        response = stub.Predict(request, timeout)
    except grpc.RpcError as err:
        raise ServingError(f"{server} (gRPC): {err.code().name}: "
                           f"{' '.join(str(err.details()).split())}") from None
    return {name: tf.make_ndarray(proto) for name, proto in response.outputs.items()}
