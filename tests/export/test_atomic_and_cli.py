"""Versioned, atomic export (a failure mid-export leaves nothing), models.config, and the
`exports.export` / `exports.client` command lines."""
import os
import subprocess
import sys

import numpy as np
import pytest

from reformer_keras.export import saved_model
from reformer_keras.models import ReformerLM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _small_lm():
    """1-layer LM over 16 ids (no text signatures: vocab != 258): a fast export."""
    model = ReformerLM(vocab_size=16, d_model=8, num_layers=1, num_heads=1, d_ff=8,
                       attention_types=["local"], bucket_size=4, max_len=8, seed=0)
    model(np.zeros((1, 4), "int32"))
    return model


def test_failed_export_leaves_nothing_and_versions_increase(tmp_path, monkeypatch):
    model = _small_lm()
    first = saved_model.export_model(model, tmp_path, "lm")
    assert first["version"] == 1 and first["signatures"] == ["serving_default"]
    real_write = saved_model._write_archive  # pylint: disable=protected-access

    def failing_write(archive, path):
        real_write(archive, path)  # the files are written, then the export "crashes"
        assert os.path.exists(os.path.join(path, "saved_model.pb"))
        raise RuntimeError("injected failure")

    monkeypatch.setattr(saved_model, "_write_archive", failing_write)
    with pytest.raises(RuntimeError, match="injected failure"):
        saved_model.export_model(model, tmp_path, "lm")
    assert sorted(os.listdir(tmp_path / "lm")) == ["1"]  # no version 2, no temp dir
    monkeypatch.undo()
    second = saved_model.export_model(model, tmp_path, "lm")
    assert second["version"] == 2 and sorted(os.listdir(tmp_path / "lm")) == ["1", "2"]
    config = (tmp_path / "models.config").read_text()
    assert config == saved_model.model_config_text(tmp_path)
    assert 'name: "lm"' in config and f'base_path: "{tmp_path / "lm"}"' in config
    assert config.startswith("model_config_list {") and 'model_platform: "tensorflow"' in config


def test_bad_names_and_models(tmp_path):
    with pytest.raises(ValueError, match="model_name"):
        saved_model.export_model(_small_lm(), tmp_path, "../x")
    with pytest.raises(ValueError, match="generation_length"):
        saved_model.export_model(_small_lm(), tmp_path, "lm", generation_length=100)
    assert not os.listdir(tmp_path)


def _run(module, *args):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_export_cli(tmp_path):
    model_path = str(tmp_path / "lm.keras")
    _small_lm().save(model_path)
    proc = _run("exports.export", f"--model_path={model_path}",
                f"--export_dir={tmp_path / 'serving'}", "--model_name=small")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert os.path.exists(tmp_path / "serving" / "small" / "1" / "saved_model.pb")
    assert 'name: "small"' in (tmp_path / "serving" / "models.config").read_text()
    assert "tensorflow_model_server" in proc.stdout
    bad = _run("exports.export", f"--model_path={tmp_path / 'missing.keras'}",
               f"--export_dir={tmp_path / 'serving'}")
    assert bad.returncode != 0
    last = bad.stderr.strip().splitlines()[-1]
    assert "model_path" in last and "missing.keras" in last
    assert len(bad.stderr.strip().splitlines()) == 1


def test_client_cli_reports_unreachable_server():
    proc = _run("exports.client", "--server=127.0.0.1:9", "--model_name=m", "--text=hi",
                "--timeout=5")
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "127.0.0.1:9" in lines[0]
