"""Query a TF Serving model exported by `exports.export`.

  python -m exports.client --server=localhost:8501 --model_name=tiny_text --text="To be"
  python -m exports.client --server=localhost:8501 --model_name=tiny_text --text="To be" \
      --mode=score
  python -m exports.client --server=localhost:8501 --model_name=tiny_image --mode=images \
      --count=2 [--class_id=3]
  python -m exports.client --server=localhost:8501 --model_name=tiny_music --mode=events \
      --events=1,5,9
  python -m exports.client --server=localhost:8501 --model_name=m --mode=logits --events=3,4,5
  python -m exports.client --protocol=grpc --server=localhost:8500 ...   (needs
      tensorflow-serving-api: pip install -e ".[serving]")

REST uses only the standard library (urllib). Prints the outputs as JSON; errors are one line on
stderr with exit status 1.
"""

import json
import sys

from absl import app, flags

from exports import usage

from reformer_keras.export import serving_client

FLAGS = flags.FLAGS
flags.DEFINE_string("server", "localhost:8501", "host:port of TF Serving (REST 8501, gRPC 8500).")
flags.DEFINE_string("model_name", None, "Served model name (the <model_name> directory).")
flags.DEFINE_integer("version", None, "Model version (default: the latest served).")
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "REST (urllib) or gRPC.")
flags.DEFINE_enum("mode", "generate", ["generate", "score", "images", "events", "logits"],
                  "Signature: generate_text, score_text, sample_images, generate_events, "
                  "serving_default.")
flags.DEFINE_string("text", None, "Prompt (generate) or text to score (score).")
flags.DEFINE_integer("max_new_tokens", 64, "Tokens to generate (generate / events).")
flags.DEFINE_float("temperature", 1.0, "Sampling temperature; 0 = greedy (generate).")
flags.DEFINE_integer("top_k", 0, "Sample among the k most likely tokens; 0 = off (generate).")
flags.DEFINE_integer("seed", 0, "Sampling seed (same seed, same output).")
flags.DEFINE_integer("count", 1, "Number of images (images).")
flags.DEFINE_integer("class_id", None, "Class of a class-conditional image model (images).")
flags.DEFINE_string("events", "", "Comma-separated token / event ids (events prompt, logits).")
flags.DEFINE_float("timeout", 60.0, "Request timeout in seconds.")

SIGNATURES = {"generate": "generate_text", "score": "score_text", "images": "sample_images",
              "events": "generate_events", "logits": "serving_default"}


def build_request(mode):
    """(signature, inputs {name: value}, dtypes {name: dtype}) from the flags."""
    ids = [int(x) for x in FLAGS.events.split(",") if x.strip()]
    if mode in ("generate", "score"):
        if not FLAGS.text:
            raise ValueError(f"--text is required (and non-empty) for --mode={mode}.")
        if mode == "score":
            return {"text": [FLAGS.text]}, {"text": "string"}
        inputs = {"prompt": [FLAGS.text], "max_new_tokens": FLAGS.max_new_tokens,
                  "temperature": FLAGS.temperature, "top_k": FLAGS.top_k, "seed": FLAGS.seed}
        return inputs, {"prompt": "string", "max_new_tokens": "int32", "temperature": "float32",
                        "top_k": "int32", "seed": "int64"}
    if mode == "images":
        inputs, dtypes = {"count": FLAGS.count, "seed": FLAGS.seed}, {"count": "int32",
                                                                      "seed": "int64"}
        if FLAGS.class_id is not None:
            inputs["class_id"], dtypes["class_id"] = FLAGS.class_id, "int32"
        return inputs, dtypes
    if mode == "events":
        return ({"prompt_ids": [ids], "max_new_tokens": FLAGS.max_new_tokens, "seed": FLAGS.seed},
                {"prompt_ids": "int32", "max_new_tokens": "int32", "seed": "int64"})
    if not ids:
        raise ValueError("--events (comma-separated token ids) is required for --mode=logits.")
    return {"token_ids": [ids]}, {"token_ids": "int32"}


def check_flags():
    """Raises ValueError naming the first bad flag (a usage error)."""
    if not FLAGS.model_name:
        raise ValueError("--model_name is required.")
    for name, ok, rule in [("max_new_tokens", FLAGS.max_new_tokens > 0, "must be > 0"),
                           ("temperature", FLAGS.temperature >= 0, "must be >= 0"),
                           ("top_k", FLAGS.top_k >= 0, "must be >= 0"),
                           ("count", FLAGS.count > 0, "must be > 0"),
                           ("timeout", FLAGS.timeout > 0, "must be > 0"),
                           ("version", FLAGS.version is None or FLAGS.version > 0,
                            "must be > 0"),
                           ("class_id", FLAGS.class_id is None or FLAGS.class_id >= 0,
                            "must be >= 0")]:
        if not ok:
            raise ValueError(f"flag --{name}={FLAGS[name].value}: {rule}")
    try:
        return build_request(FLAGS.mode)
    except ValueError as err:
        if "invalid literal" in str(err):
            raise ValueError(f"flag --events={FLAGS.events!r}: must be comma-separated integers")
        raise


def _usage_error(message):
    usage.usage_error("client", message)


def main(argv):
    if len(argv) > 1:
        _usage_error(f"unexpected arguments {argv[1:]}")
    try:
        inputs, dtypes = check_flags()
    except ValueError as err:
        _usage_error(err)
    signature = SIGNATURES[FLAGS.mode]
    try:
        if FLAGS.protocol == "rest":
            outputs = serving_client.rest_predict(FLAGS.server, FLAGS.model_name, signature,
                                                  inputs, FLAGS.version, FLAGS.timeout)
        else:
            outputs = serving_client.grpc_predict(FLAGS.server, FLAGS.model_name, signature,
                                                  inputs, dtypes, FLAGS.version, FLAGS.timeout)
            outputs = {k: v.tolist() for k, v in outputs.items()}
            outputs = {k: [s.decode("utf-8", "replace") if isinstance(s, bytes) else s
                           for s in v] if isinstance(v, list) else v for k, v in outputs.items()}
    except (ValueError, serving_client.ServingError) as err:
        sys.exit(f"client: error: {err}")
    print(json.dumps(outputs, ensure_ascii=False))


def run():
    app.run(main, flags_parser=usage.one_line_parser("client"))


if __name__ == "__main__":
    run()
