"""model_dir/run.json: one readable file with everything needed to rebuild a run.

Keys: "format" (1), "library" (reformer-keras / tensorflow / keras versions), "command" (argv),
"task", "data" (the data source: a dataset name or a `sources.DataSource` dict, with the split
rule and skipped files), "tokenizer" (`tokenizer_record`), "model" (class, preset, overrides,
the resolved constructor config), "training" (every `TrainConfig` field). Pure Python.

`trainers.evaluate`, `trainers.sample` and `exports.export` read it (`read_run`), so
`--model_dir=M` is the only flag they need.
"""
import json
import os
import sys

RUN_FILE = "run.json"
FORMAT = 1


def library_versions():
    """{"reformer-keras": ..., "tensorflow": ..., "keras": ..., "tensorflow-text": ...}: the
    installed distributions' versions (None if one is not installed)."""
    from importlib import metadata
    out = {}
    for name in ("reformer-keras", "tensorflow", "keras", "tensorflow-text"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def run_path(model_dir):
    return os.path.join(model_dir, RUN_FILE)


def write_run(model_dir, record):
    """Writes model_dir/run.json atomically (temp file + os.replace); returns its path."""
    record = dict(format=FORMAT, library=library_versions(), command=list(sys.argv), **record)
    os.makedirs(model_dir, exist_ok=True)
    path = run_path(model_dir)
    tmp = os.path.join(model_dir, f".tmp-{os.getpid()}-{RUN_FILE}")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=1, sort_keys=False, default=str)
        f.write("\n")
    os.replace(tmp, path)
    return path


def read_run(model_dir):
    """The dict of model_dir/run.json, or None if there is none.

    Raises ValueError if the file exists but is not a run description.
    """
    path = run_path(model_dir)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError) as err:
        raise ValueError(f"{path} is not readable JSON ({err})") from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or "task" not in record:
        raise ValueError(f"{path} is not a run description (format {FORMAT} with a task)")
    return record
