"""Convert a Hugging Face Reformer checkpoint to a `.keras` ReformerLM (and export it).

  python -m exports.import_hf --hf_model=DIR --output=FILE.keras \
      [--export_dir=serving [--model_name=NAME] [--generation_length=512]] [--hash_seed=0]

DIR is a `save_pretrained` directory (config.json, model.safetensors or pytorch_model.bin,
spiece.model for SentencePiece vocabularies), e.g. from
`huggingface_hub.snapshot_download("google/reformer-crime-and-punishment")`. The converted
model's logits equal Hugging Face's (docs/pretrained.md). With --export_dir it is also exported
for TF Serving with its tokenizer in the graph (`generate_text` takes and returns strings).
Bad flags: one line on stderr and exit status 2; an unusable checkpoint: one line, status 1.
"""

import os
import re
import sys

from absl import app, flags

PROGRAM = "import_hf"
FLAGS = flags.FLAGS
flags.DEFINE_string("hf_model", None, "Hugging Face save_pretrained directory (config.json + "
                    "model.safetensors or pytorch_model.bin [+ spiece.model]).")
flags.DEFINE_string("output", None, "The converted model: a .keras file (written atomically).")
flags.DEFINE_string("export_dir", None, "Optional TF Serving base directory to export to.")
flags.DEFINE_string("model_name", None, "Serving name (default: the output file's base name); "
                    "letters, digits, '_', '.', '-'.")
flags.DEFINE_integer("generation_length", None, "Longest prompt + continuation of the exported "
                     "sampling signatures (default: the model's max_len).")
flags.DEFINE_integer("hash_seed", 0, "Seed of the LSH rotations when config.json's hash_seed "
                     "is null (Hugging Face then draws new ones at every forward pass).")

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _writable_parent(path):
    parent = os.path.dirname(os.path.abspath(path))
    return os.path.isdir(parent) and os.access(parent, os.W_OK | os.X_OK)


flags.register_validator("hf_model", lambda v: bool(v) and os.path.isfile(
    os.path.join(v, "config.json")), message="must be a directory holding config.json")
flags.register_validator("output", lambda v: bool(v) and v.endswith(".keras") and
                         _writable_parent(v), message="must be a .keras path in a writable "
                         "directory")
flags.register_validator("model_name", lambda v: v is None or bool(_NAME.match(v)),
                         message="must be letters, digits, '_', '.', '-'")
flags.register_validator("generation_length", lambda v: v is None or v >= 2,
                         message="must be >= 2")
flags.register_validator("hash_seed", lambda v: v is not None and 0 <= v < 2**32,
                         message="must be in [0, 2**32)")
flags.register_multi_flags_validator(
    ["export_dir", "model_name", "generation_length"],
    lambda v: bool(v["export_dir"]) or (v["model_name"] is None and
                                        v["generation_length"] is None),
    message="--model_name and --generation_length need --export_dir")


def _parse(argv):
    try:
        argv = FLAGS(argv)
    except flags.Error as err:
        sys.stderr.write(f"{PROGRAM}: error: {' '.join(str(err).split())}\n")
        sys.exit(2)
    if len(argv) > 1:
        sys.stderr.write(f"{PROGRAM}: error: unexpected arguments {argv[1:]}\n")
        sys.exit(2)
    return argv


def _fail(err):
    sys.stderr.write(f"{PROGRAM}: error: {' '.join(str(err).split())}\n")
    sys.exit(1)


def main(argv):
    del argv
    # Heavy imports only after the flags are known to be good.
    from reformer_keras.models import from_hf  # pylint: disable=import-outside-toplevel
    output = os.path.abspath(FLAGS.output)
    try:
        model, tokenizer = from_hf(FLAGS.hf_model, hash_seed=FLAGS.hash_seed)
    except (ValueError, OSError) as err:
        _fail(err)
    partial = output + ".partial.keras"
    try:
        model.save(partial)
        os.replace(partial, output)
    except (ValueError, OSError) as err:
        if os.path.exists(partial):
            os.remove(partial)
        _fail(err)
    print(f"Converted {FLAGS.hf_model} -> {output}")
    if FLAGS.export_dir:
        from reformer_keras.export import export_model  # pylint: disable=C0415
        name = FLAGS.model_name or os.path.splitext(os.path.basename(output))[0]
        try:
            result = export_model(model, FLAGS.export_dir, name, tokenizer=tokenizer,
                                  generation_length=FLAGS.generation_length,
                                  text_signatures=tokenizer is not None)
        except (ValueError, OSError) as err:
            _fail(err)
        print(f"Exported {name} version {result['version']} to {result['path']}\n"
              f"Signatures: {', '.join(result['signatures'])}")
        config = os.path.join(os.path.abspath(FLAGS.export_dir), "models.config")
        print(f"Serve:\n  tensorflow_model_server --port=8500 --rest_api_port=8501 "
              f"--model_config_file={config}\n"
              f"Query:\n  python -m exports.client --server=localhost:8501 "
              f"--model_name={name} --text=\"A few months later\"")


def run():
    app.run(main, flags_parser=_parse)


if __name__ == "__main__":
    run()
