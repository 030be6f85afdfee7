"""Export a trained model for TF Serving (console script `reformer-export`).

  python -m exports.export --model_dir=M
  python -m exports.export --model_path=runs/tiny_text/model.keras --export_dir=serving \
      [--model_name=tiny_text] [--generation_length=256]

--model_dir: a training run's directory: its newest checkpoint is exported with the run's text
tokenizer (from run.json; a SentencePiece model runs inside the exported graph) into
<model_dir>/export/reformer_<task>/; --model_path / --export_dir / --model_name override.

Writes `<export_dir>/<model_name>/<next version>/` (atomically; existing versions are never
touched) and `<export_dir>/models.config` (TF Serving model_config_list of every model in
export_dir), then prints the serving command. Signatures: see reformer_keras/export/README.md.
Bad flags give a one-line error (`export: error: ...`) and exit status 2; a model that cannot
be loaded or exported gives a one-line error and exit status 1.
"""

import os
import re
import sys

from absl import app, flags

from exports import usage

FLAGS = flags.FLAGS
flags.DEFINE_string("model_path", None, "Trained model: a .keras file (keras.saving format).")
flags.DEFINE_string("export_dir", None, "TF Serving base directory (created if missing; "
                    "default with --model_dir: <model_dir>/export).")
flags.DEFINE_string("model_name", None, "Serving name (default: reformer_<task> with "
                    "--model_dir, else the .keras file's base name); letters, digits, '_', "
                    "'.', '-'.")
if "model_dir" not in FLAGS:
    flags.DEFINE_string("model_dir", None, "A training run's directory (its run.json and "
                        "newest checkpoint); the other flags then have defaults.")
flags.DEFINE_integer("generation_length", None, "Cache length of the sampling signatures "
                     "(prompt + new tokens <= it; default: the model's max_len).")
flags.DEFINE_enum("text_signatures", "auto", ["auto", "yes", "no"], "Add score_text / "
                  "generate_text (ByteTokenizer) to a ReformerLM; auto = iff vocab_size is 258.")
flags.DEFINE_string("config_base_path", None, "Directory that models.config names as the "
                    "parent of each model's base_path, as the server sees it (e.g. /models when "
                    "a container mounts --export_dir there); default: --export_dir's absolute "
                    "path.")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def serving_instructions(export_dir, model_name, signatures):
    """README-ready text: the tensorflow_model_server command and a curl request."""
    config = os.path.join(os.path.abspath(export_dir), "models.config")
    if "generate_text" in signatures:
        body = ('{"signature_name": "generate_text", "inputs": {"prompt": ["To be"], '
                '"max_new_tokens": 32, "temperature": 0.8, "top_k": 0, "seed": 1}}')
    elif "sample_images" in signatures:
        body = '{"signature_name": "sample_images", "inputs": {"count": 1, "seed": 1}}'
    elif "generate_events" in signatures:
        body = ('{"signature_name": "generate_events", "inputs": {"prompt_ids": [[]], '
                '"max_new_tokens": 32, "seed": 1}}')
    else:
        body = '{"signature_name": "serving_default", "inputs": {"token_ids": [[1, 2, 3]]}}'
    return (f"Serve:\n  tensorflow_model_server --port=8500 --rest_api_port=8501 "
            f"--model_config_file={config}\n"
            f"Query:\n  curl -s -X POST http://localhost:8501/v1/models/{model_name}:predict "
            f"-d '{body}'\n"
            f"  python -m exports.client --server=localhost:8501 --model_name={model_name} "
            f"--text=\"To be\"\n")


def _from_run():
    """Fills --model_path / --export_dir / --model_name from --model_dir; returns the run."""
    from reformer_keras.training import checkpoints, run_file  # pylint: disable=import-outside-toplevel
    if not os.path.isdir(FLAGS.model_dir):
        raise ValueError(f"--model_dir {FLAGS.model_dir!r} is not a directory.")
    run = run_file.read_run(FLAGS.model_dir)
    if run is None:
        raise ValueError(f"--model_dir {FLAGS.model_dir!r} has no {run_file.RUN_FILE} (not a "
                         "training run's directory).")
    if not FLAGS.model_path:
        FLAGS.model_path = checkpoints.newest_checkpoint(FLAGS.model_dir)
    FLAGS.export_dir = FLAGS.export_dir or os.path.join(FLAGS.model_dir, "export")
    FLAGS.model_name = FLAGS.model_name or f"reformer_{run['task']}"
    return run


def _check_flags():
    if not FLAGS.model_path:
        raise ValueError("--model_path is required (a .keras file).")
    if not FLAGS.model_path.endswith(".keras"):
        raise ValueError(f"--model_path must be a .keras file, got {FLAGS.model_path!r}.")
    if not os.path.isfile(FLAGS.model_path):
        raise ValueError(f"--model_path {FLAGS.model_path!r} does not exist.")
    if not FLAGS.export_dir:
        raise ValueError("--export_dir is required.")
    name = FLAGS.model_name or os.path.splitext(os.path.basename(FLAGS.model_path))[0]
    if not _NAME.match(name):
        raise ValueError(f"--model_name {name!r} must be letters, digits, '_', '.', '-'.")
    if FLAGS.generation_length is not None and FLAGS.generation_length < 2:
        raise ValueError(f"--generation_length must be >= 2, got {FLAGS.generation_length}.")
    if FLAGS.config_base_path is not None and not FLAGS.config_base_path.strip():
        raise ValueError("--config_base_path must be a non-empty directory path.")
    return name


def _usage_error(message):
    usage.usage_error("export", message)


def main(argv):
    if len(argv) > 1:
        _usage_error(f"unexpected arguments {argv[1:]}")
    run = None
    try:
        if FLAGS.model_dir:
            run = _from_run()
        name = _check_flags()
    except ValueError as err:
        _usage_error(err)
    # Heavy imports only after the flags are known to be good.
    from reformer_keras import runtime  # pylint: disable=import-outside-toplevel
    runtime.configure_cpu()  # before TensorFlow loads
    import keras  # pylint: disable=import-outside-toplevel
    import reformer_keras.models  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    from reformer_keras.export import export_model  # pylint: disable=import-outside-toplevel
    try:
        model = keras.saving.load_model(FLAGS.model_path, compile=False)
        text = {"auto": None, "yes": True, "no": False}[FLAGS.text_signatures]
        tokenizer = None
        if run is not None:
            from reformer_keras.training.run_tokenizer import load_tokenizer  # pylint: disable=import-outside-toplevel
            tokenizer = load_tokenizer(run.get("tokenizer"), FLAGS.model_dir)
        result = export_model(model, FLAGS.export_dir, name, tokenizer=tokenizer,
                              generation_length=FLAGS.generation_length, text_signatures=text,
                              config_base_path=FLAGS.config_base_path)
    except (ValueError, OSError) as err:
        _fail(err)  # the model could not be loaded or exported: exit 1
    print(f"Exported {name} version {result['version']} to {result['path']}\n"
          f"Signatures: {', '.join(result['signatures'])}\nConfig: {result['config']}")
    print(serving_instructions(FLAGS.export_dir, name, result["signatures"]))


def _fail(message):
    sys.stderr.write(f"export: error: {' '.join(str(message).split())}\n")
    sys.exit(1)


def run():
    """Console-script entry point (`reformer-export`)."""
    app.run(main, flags_parser=usage.one_line_parser("export"))


if __name__ == "__main__":
    run()
