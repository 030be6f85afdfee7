"""SavedModel export for TF Serving: `export_model(model, export_dir, model_name)`.

Layout (what `tensorflow_model_server` polls):

    <export_dir>/models.config                 model_config_list of every model in export_dir
    <export_dir>/<model_name>/<version>/       saved_model.pb, variables/ (version = 1, 2, ...)

Each export writes the NEXT free integer version and never touches existing ones. It is atomic:
the SavedModel is written into a hidden temporary directory beside the versions
(`<model_name>/.tmp-<pid>-<random>`, which TF Serving ignores) and moved into place with one
`os.rename`; on any failure the temporary directory is removed and no version appears, and the
temporaries of a killed exporter (dead pid) are removed by the next export of the model.
models.config is written through a unique temporary name and `os.replace`.

Signatures (explicit `tf.TensorSpec`s, named inputs, dict outputs; shapes in `signatures.py`):

  every model  serving_default  token_ids int32 (B, L) -> logits float32 (B, L, V)
  text (ReformerLM with the tokenizer's vocabulary, ByteTokenizer by default)
               score_text       text string (B,) -> token_ids int32 (B, T),
                                log_probs float32 (B, T), bits_per_char float32 (B,)
               generate_text    prompt string (B,), max_new_tokens int32 (), temperature
                                float32 (), top_k int32 (), seed int64 () -> text string (B,),
                                continuation string (B,), token_ids int32 (B, 1 + P + N);
                                prompts of any lengths, each row as if sent alone
  image (ReformerImageGenerator)
               sample_images    count int32 (), seed int64 () [, class_id int32 () when
                                class-conditional] -> images uint8 (count, H, W, C)
  music (ReformerMusicGenerator)
               generate_events  prompt_ids int32 (B, P), max_new_tokens int32 (), seed int64 ()
                                -> event_ids int32 (B, P + N)

The graph uses only core TensorFlow ops (ByteTokenizer is core string ops); load it with
`tf.saved_model.load` (after `import tensorflow_text` if a SentencePiece tokenizer was used).
"""

import functools
import logging
import os
import re
import shutil

import keras
import tensorflow as tf

from reformer_keras.atomic_files import atomic_write_text, remove_stale_temporaries, tmp_dir
from reformer_keras.export import signatures as sig
from reformer_keras.models.reformer_image_generator import ReformerImageGenerator
from reformer_keras.models.reformer_lm import ReformerLM
from reformer_keras.models.reformer_music_generator import ReformerMusicGenerator
from reformer_keras.tokenizers.text import ByteTokenizer
from reformer_keras import fault_injection

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
CONFIG_FILENAME = "models.config"


def model_kind(model):
    """"image", "music" or "text" (any other `ReformerLM`); ValueError for other models."""
    if isinstance(model, ReformerImageGenerator):
        return "image"
    if isinstance(model, ReformerMusicGenerator):
        return "music"
    if isinstance(model, ReformerLM):
        return "text"
    raise ValueError(f"Cannot export a {type(model).__name__}: export supports ReformerLM, "
                     "ReformerImageGenerator and ReformerMusicGenerator.")


def existing_versions(model_dir):
    """Sorted integer version numbers of the subdirectories of `model_dir` ([] if none)."""
    if not os.path.isdir(model_dir):
        return []
    return sorted(int(d) for d in os.listdir(model_dir)
                  if d.isdigit() and os.path.isdir(os.path.join(model_dir, d)))


def next_version(model_dir):
    """1 + the largest existing version (1 for a new model)."""
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def _spec(shape, dtype, name):
    return tf.TensorSpec(shape, dtype, name=name)


def build_archive(model, tokenizer=None, generation_length=None, text_signatures=None):
    """A `keras.export.ExportArchive` holding the model and its signatures (see module doc).

    Args:
      model: a built ReformerLM / ReformerImageGenerator / ReformerMusicGenerator.
      tokenizer: text tokenizer of a text model (default `ByteTokenizer()`).
      generation_length: static cache length M of the sampling signatures (default
        model.max_len; prompt + new tokens <= M). Smaller values make each step cheaper.
      text_signatures: add score_text / generate_text; None = iff the model's vocabulary size
        equals the tokenizer's.
    Returns: (archive, list of endpoint names).
    """
    kind = model_kind(model)
    if not model.built:
        raise ValueError("The model is not built: call it once (or load a trained .keras file) "
                         "before exporting.")
    max_len = model.max_len
    cache_length = max_len if generation_length is None else int(generation_length)
    if not 2 <= cache_length <= max_len:
        raise ValueError(f"`generation_length` must be in [2, max_len={max_len}], got "
                         f"{generation_length!r}.")
    archive = keras.export.ExportArchive()
    # No `archive.track(model)`: the variables the endpoints use are collected from their
    # graphs, and tracking the model would make SavedModel trace Keras' default float32 serving
    # function of the model (which fails on integer token ids). Tokenizers holding resources
    # (SentencePiece) are tracked below.
    names = []

    def add(name, fn, specs):
        @functools.wraps(fn)
        def checked(*args):  # every input checked against its declared shape at run time
            return fn(*[sig.declared(a, spec) for a, spec in zip(args, specs)])
        archive.add_endpoint(name, checked, input_signature=specs)
        names.append(name)

    add("serving_default", lambda token_ids: sig.logits_fn(model, token_ids),
        [_spec([None, None], tf.int32, "token_ids")])
    scalar = lambda dtype, name: _spec([], dtype, name)  # noqa: E731
    if kind == "text":
        tokenizer = tokenizer or ByteTokenizer()
        if text_signatures is None:
            text_signatures = tokenizer.vocab_size == model.vocab_size
            if not text_signatures:
                logging.warning("Model vocabulary %d != tokenizer vocabulary %d: exporting "
                                "without score_text / generate_text.", model.vocab_size,
                                tokenizer.vocab_size)
        elif text_signatures and tokenizer.vocab_size != model.vocab_size:
            raise ValueError(f"The tokenizer's vocabulary ({tokenizer.vocab_size}) differs from "
                             f"the model's ({model.vocab_size}).")
        if text_signatures:
            if isinstance(tokenizer, tf.__internal__.tracking.Trackable):
                archive.track(tokenizer)
            add("score_text", lambda text: sig.score_text_fn(model, tokenizer, text),
                [_spec([None], tf.string, "text")])
            add("generate_text",
                lambda prompt, max_new_tokens, temperature, top_k, seed: sig.generate_text_fn(
                    model, tokenizer, cache_length, prompt, max_new_tokens, temperature, top_k,
                    seed),
                [_spec([None], tf.string, "prompt"), scalar(tf.int32, "max_new_tokens"),
                 scalar(tf.float32, "temperature"), scalar(tf.int32, "top_k"),
                 scalar(tf.int64, "seed")])
    elif kind == "image":
        if model.num_classes:
            add("sample_images",
                lambda count, seed, class_id: sig.sample_images_fn(model, count, seed, class_id),
                [scalar(tf.int32, "count"), scalar(tf.int64, "seed"),
                 scalar(tf.int32, "class_id")])
        else:
            add("sample_images", lambda count, seed: sig.sample_images_fn(model, count, seed),
                [scalar(tf.int32, "count"), scalar(tf.int64, "seed")])
    else:
        add("generate_events",
            lambda prompt_ids, max_new_tokens, seed: sig.generate_events_fn(
                model, cache_length, prompt_ids, max_new_tokens, seed),
            [_spec([None, None], tf.int32, "prompt_ids"), scalar(tf.int32, "max_new_tokens"),
             scalar(tf.int64, "seed")])
    return archive, names


def _write_archive(archive, path):
    """The write step (a separate function so tests can inject a failure)."""
    archive.write_out(path, verbose=False)


def export_model(model, export_dir, model_name, tokenizer=None, generation_length=None,
                 text_signatures=None, write_config=True, config_base_path=None):
    """Exports `model` as version N+1 of `<export_dir>/<model_name>/` (see module doc).

    Args:
      model: a built ReformerLM, ReformerImageGenerator or ReformerMusicGenerator.
      export_dir: the TF Serving base directory (created if needed).
      model_name: letters, digits, `_`, `.`, `-` (the serving name: v1/models/<model_name>).
      tokenizer, generation_length, text_signatures: see `build_archive`.
      write_config: also (re)write `<export_dir>/models.config` listing every model there.
      config_base_path: the directory models.config names as the parent of the models'
        base_path (e.g. "/models" where a container mounts export_dir); default: export_dir's
        absolute path.
    Returns: dict(path=<version dir>, version=int, signatures=[names], config=<path or None>).
    """
    if not isinstance(model_name, str) or not _NAME.match(model_name):
        raise ValueError(f"`model_name` must be letters, digits, '_', '.', '-' (not starting "
                         f"with '.' / '_'), got {model_name!r}.")
    model_dir = os.path.join(os.path.abspath(os.fspath(export_dir)), model_name)
    archive, names = build_archive(model, tokenizer, generation_length, text_signatures)
    os.makedirs(model_dir, exist_ok=True)
    remove_stale_temporaries(model_dir)
    version = next_version(model_dir)
    tmp = tmp_dir(model_dir)
    target = os.path.join(model_dir, str(version))
    try:
        _write_archive(archive, tmp)
        fault_injection.maybe_kill("export")
        if os.path.exists(target):
            raise FileExistsError(f"Version directory {target} appeared during the export "
                                  "(a concurrent export?); not overwriting it.")
        os.rename(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    config = write_model_config(export_dir, config_base_path) if write_config else None
    return {"path": target, "version": version, "signatures": names, "config": config}


def model_config_text(export_dir, base_path=None):
    """The TF Serving `model_config_list` text proto for every model directory of
    `export_dir` (a subdirectory holding at least one integer version), sorted by name.
    `base_path`: the parent directory written into each entry's base_path (as the server sees
    it, e.g. "/models" inside a container); default: export_dir's absolute path."""
    export_dir = os.path.abspath(os.fspath(export_dir))
    parent = export_dir if base_path is None else os.fspath(base_path)
    entries = []
    for name in sorted(os.listdir(export_dir)):
        if _NAME.match(name) and existing_versions(os.path.join(export_dir, name)):
            entries.append(f"  config {{\n    name: \"{name}\"\n    base_path: "
                           f"\"{os.path.join(parent, name)}\"\n    model_platform: "
                           f"\"tensorflow\"\n  }}\n")
    return "model_config_list {\n" + "".join(entries) + "}\n"


def write_model_config(export_dir, base_path=None):
    """Writes `<export_dir>/models.config` atomically (a unique temporary name + os.replace).
    `base_path`: see `model_config_text`. Returns its path."""
    path = os.path.join(os.path.abspath(os.fspath(export_dir)), CONFIG_FILENAME)
    atomic_write_text(path, model_config_text(export_dir, base_path))
    return path
