"""Tiny models of each modality (untrained, small max_len), exported once per session."""
import numpy as np
import pytest

from reformer_keras.export import export_model
from reformer_keras.models import presets


def _built(model, length=4):
    model(np.zeros((1, length), "int32"))
    return model


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """dict kind -> (model, export result) for "text", "image" and "music", all in one
    export_dir (max_len 32 / 16 / 32)."""
    export_dir = tmp_path_factory.mktemp("serving")
    models = {
        "text": _built(presets.from_preset("tiny_text", axial_shape=[4, 8])),
        "image": _built(presets.from_preset("tiny_image", image_shape=[4, 4, 1])),
        "music": _built(presets.from_preset("tiny_music", axial_shape=[4, 8])),
    }
    out = {kind: (model, export_model(model, export_dir, f"tiny_{kind}"))
           for kind, model in models.items()}
    out["export_dir"] = str(export_dir)
    return out
