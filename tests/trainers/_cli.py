"""Helpers for running the trainers as subprocesses (as a user would)."""
import os
import pathlib
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[2]
# A tiny model for tests: overrides of the task's default preset.
TINY_FLAGS = ["--d_model=16", "--num_layers=2", "--num_heads=2", "--d_ff=32", "--bucket_size=8",
              "--verbose=2"]


def env(**extra):
    out = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    out.pop("TF_CONFIG", None)
    out.update(extra)
    return out


def command(module, *args):
    return [sys.executable, "-m", f"trainers.{module}", *map(str, args)]


def run(module, *args, timeout=600, **extra_env):
    return subprocess.run(command(module, *args), cwd=REPO, env=env(**extra_env),
                          capture_output=True, text=True, timeout=timeout)


def loss_log(model_dir):
    rows = pathlib.Path(model_dir, "loss_log.csv").read_text().split()
    return [(int(s), float(l)) for s, l in (r.split(",") for r in rows)]
