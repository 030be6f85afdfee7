"""SavedModel / TF Serving export of the Reformer tasks (see README.md in this directory).

  export_model(model, export_dir, model_name, ...) -> dict(path, version, signatures, config)
  build_archive, next_version, model_config_text, write_model_config   (saved_model.py)
  serving_client.rest_predict / grpc_predict                           (no TF import for REST)

Attributes are imported lazily so that `serving_client` (the REST client) does not import
TensorFlow.
"""
import importlib

_SAVED_MODEL = ("build_archive", "export_model", "model_config_text", "next_version",
                "write_model_config")
__all__ = list(_SAVED_MODEL)


def __getattr__(name):
    if name in _SAVED_MODEL:
        return getattr(importlib.import_module("reformer_keras.export.saved_model"), name)
    raise AttributeError(f"module 'reformer_keras.export' has no attribute {name!r}")
