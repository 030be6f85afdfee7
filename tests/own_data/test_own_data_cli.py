"""My files -> train -> evaluate -> sample -> export -> serve, from flags alone, per modality.

Real files in a temporary directory (a .txt folder with a SentencePiece tokenizer, a two-class
image folder, three pretty_midi pieces + a corrupt file), tiny models, a few steps. evaluate,
sample and export get --model_dir only (plus the prompt flags); the exported SavedModels are
called in a fresh process that cannot import reformer_keras; the SentencePiece export's greedy
generate_text is compared with `reformer_keras.generation.generate` on the checkpoint and the
sentencepiece package's own decoder. --init_from is compared with the source checkpoint.
Commands of one stage run concurrently (2 cores)."""
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import make_files

REPO = pathlib.Path(__file__).resolve().parents[2]
TINY = ["--d_model=16", "--num_layers=2", "--num_heads=2", "--d_ff=32", "--bucket_size=8",
        "--verbose=2", "--steps=2", "--steps_per_epoch=1", "--eval_steps=1", "--batch_size=2",
        "--noexport", "--sample_every=0", "--keep_checkpoints=1"]


def _command(module, *args):
    return [sys.executable, "-m", module, *map(str, args)]


def _run_all(commands, cwd=REPO):
    """Runs {key: argv} concurrently; returns {key: CompletedProcess-like (rc, out, err)}."""
    env = dict(os.environ, PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="2")
    procs = {k: subprocess.Popen(c, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for k, c in commands.items()}
    out = {}
    for key, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=900)
        out[key] = (proc.returncode, stdout, stderr)
    return out


def _ok(result):
    code, stdout, stderr = result
    assert code == 0, stderr[-3000:]
    return stdout


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_data")
    text = make_files.text_folder(root / "text")
    images = make_files.image_folder(root / "images")
    midi = make_files.midi_files(root / "midi")
    dirs = {k: root / f"run_{k}" for k in ("text", "image", "music")}
    results = _run_all({
        "text": _command("trainers.train", f"--train_files={text}/*.txt", "--seq_len=32",
                         "--tokenizer=sentencepiece", "--vocab_size=300", "--sample_tokens=8",
                         f"--model_dir={dirs['text']}", *TINY),
        "image": _command("trainers.train", "--task=image", f"--train_files={images}",
                          "--image_size=6", f"--model_dir={dirs['image']}", *TINY),
        "music": _command("trainers.train", "--task=music", f"--train_files={midi}/*.mid",
                          "--seq_len=32", "--sample_tokens=8", f"--model_dir={dirs['music']}",
                          *TINY)})
    for key in dirs:
        _ok(results[key])
    return root, dirs, results


def test_training_from_flags_describes_the_run(runs):
    root, dirs, results = runs
    for key, model_dir in dirs.items():
        run = json.loads((model_dir / "run.json").read_text())
        assert run["task"] == {"text": "lm"}.get(key, key)
        assert run["training"]["seq_len"] in (32, 128) and run["library"]["tensorflow"]
        assert os.listdir(model_dir / "checkpoints") == ["ckpt-0002.keras"]  # --keep_checkpoints=1
    text = json.loads((dirs["text"] / "run.json").read_text())
    assert text["tokenizer"]["kind"] == "sentencepiece"
    assert (dirs["text"] / text["tokenizer"]["model_file"]).is_file()
    image = json.loads((dirs["image"] / "run.json").read_text())
    assert image["data"]["source"]["class_names"] == ["dark", "light"]
    assert image["model"]["config"]["num_classes"] == 2  # class-conditional from the folders
    assert image["model"]["config"]["image_shape"] == [6, 6, 1]
    music = json.loads((dirs["music"] / "run.json").read_text())
    assert [os.path.basename(p) for p, _ in music["data"]["skipped"]] == ["broken.mid"]
    assert f"skipped: {root / 'midi' / 'broken.mid'}: unreadable" in results["music"][1]


def test_tensorboard_has_the_samples(runs):
    import tensorflow as tf
    _, dirs, _ = runs
    expected = {"text": "final/text", "image": "final/images", "music": "final/piano_roll"}
    for key, tag in expected.items():
        logdir = dirs[key] / "logs" / "samples"
        tags = {v.tag for f in logdir.iterdir() for e in tf.compat.v1.train.summary_iterator(
            str(f)) for v in e.summary.value}
        assert tag in tags, (key, tags)


@pytest.fixture(scope="module")
def followups(runs):
    root, dirs, _ = runs
    commands = {}
    prompts = {"text": ["--prompt=the quick", "--max_new_tokens=6", "--num_samples=2"],
               "image": ["--class_label=1", "--num_samples=2"],
               "music": [f"--prompt_midi={root / 'midi' / 'piece0.mid'}", "--max_new_tokens=6"]}
    for key, model_dir in dirs.items():
        commands[f"{key}/evaluate"] = _command("trainers.evaluate", f"--model_dir={model_dir}",
                                               f"--output={model_dir / 'eval.json'}")
        commands[f"{key}/sample"] = _command("trainers.sample", f"--model_dir={model_dir}",
                                             *prompts[key])
        commands[f"{key}/export"] = _command("exports.export", f"--model_dir={model_dir}")
    return _run_all(commands)


def test_evaluate_sample_export_need_only_model_dir(runs, followups):
    _, dirs, _ = runs
    metrics = {"text": "bits_per_token", "image": "bits_per_dim", "music": "bits_per_token"}
    for key, model_dir in dirs.items():
        for stage in ("evaluate", "sample", "export"):
            _ok(followups[f"{key}/{stage}"])
        result = json.loads((model_dir / "eval.json").read_text())
        assert result["split"] == "validation" and 0 < result[metrics[key]] < 20
    samples = (dirs["text"] / "samples" / "sample.txt").read_text().split("----- sample ")
    assert len(samples) == 3 and all(s.split("\n", 1)[1].startswith("the quick")
                                     for s in samples[1:])
    assert (dirs["image"] / "samples" / "sample.png").stat().st_size > 0
    assert (dirs["music"] / "samples" / "sample-0.mid").stat().st_size > 0


SERVE = """
import json, sys
import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the SentencePiece op of the text export)
out = {}
for key, path in json.loads(sys.argv[1]).items():
    m = tf.saved_model.load(path)
    s = m.signatures
    if key == "text":
        r = s["generate_text"](prompt=tf.constant(["the quick"]), max_new_tokens=tf.constant(5),
                               temperature=tf.constant(0.0), top_k=tf.constant(0),
                               seed=tf.constant(1, tf.int64))
        out[key] = {"text": r["text"].numpy()[0].decode("utf-8", "replace"),
                    "token_ids": r["token_ids"].numpy().tolist()}
    elif key == "image":
        r = s["sample_images"](count=tf.constant(2), seed=tf.constant(3, tf.int64),
                               class_id=tf.constant(1))
        out[key] = {"shape": list(r["images"].shape), "dtype": r["images"].dtype.name}
    else:
        r = s["generate_events"](prompt_ids=tf.constant([[60, 200]], tf.int32),
                                 max_new_tokens=tf.constant(4), seed=tf.constant(1, tf.int64))
        out[key] = {"event_ids": r["event_ids"].numpy().tolist()}
print(json.dumps(out))
"""


def test_exports_answer_in_a_fresh_process(runs, followups, tmp_path):
    _, dirs, _ = runs
    paths = {}
    for key, model_dir in dirs.items():
        stdout = _ok(followups[f"{key}/export"])
        assert "Signatures:" in stdout
        paths[key] = str(model_dir / "export" / f"reformer_{'lm' if key == 'text' else key}" / "1")
    result = _run_all({"serve": [sys.executable, "-c", SERVE, json.dumps(paths)]}, cwd=tmp_path)
    served = json.loads(_ok(result["serve"]).strip().splitlines()[-1])
    assert served["image"] == {"shape": [2, 6, 6, 1], "dtype": "uint8"}
    assert len(served["music"]["event_ids"][0]) == 6 and served["music"]["event_ids"][0][:2] == [
        60, 200]
    assert served["text"]["text"].startswith("the quick")
    # Greedy generate_text == generation.generate on the checkpoint, decoded by sentencepiece.
    import sentencepiece as spm
    from reformer_keras.generation import generate
    from reformer_keras.training import load_checkpoint
    model, _ = load_checkpoint(str(dirs["text"]))
    processor = spm.SentencePieceProcessor(
        model_file=str(dirs["text"] / "tokenizer" / "sentencepiece.model"))
    prompt = [processor.eos_id()] + processor.EncodeAsIds("the quick")
    ids = np.asarray(generate(model, np.asarray([prompt], np.int32), 5, temperature=0.0))[0]
    assert served["text"]["token_ids"][0] == ids.tolist()
    new = [int(i) for i in ids[len(prompt):] if i not in (0, processor.eos_id())]
    assert served["text"]["text"] == "the quick" + processor.DecodeIds(new)


def test_init_from_starts_from_the_given_weights(runs, tmp_path):
    import keras
    from reformer_keras.training import load_checkpoint
    root, dirs, _ = runs
    flags = [f for f in TINY if not f.startswith(("--steps=", "--steps_per_epoch="))]
    results = _run_all({
        "same": _command("trainers.train", "--task=image", f"--train_files={root / 'images'}",
                         "--image_size=6", f"--init_from={dirs['image']}", "--steps=1",
                         "--steps_per_epoch=1", "--learning_rate=1e-30", "--warmup_steps=1",
                         f"--model_dir={tmp_path / 'tuned'}", *flags),
        "wider": _command("trainers.train", "--task=image", f"--train_files={root / 'images'}",
                          "--image_size=6", f"--init_from={dirs['image']}",
                          f"--model_dir={tmp_path / 'wider'}", *flags, "--d_model=32")})
    _ok(results["same"])
    source, _ = load_checkpoint(str(dirs["image"]))
    tuned, _ = load_checkpoint(str(tmp_path / "tuned"))
    theirs = {v.path: keras.ops.convert_to_numpy(v) for v in source.weights}
    checked = 0
    for variable in tuned.weights:  # one step at learning rate 1e-30 leaves the start as it was
        np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), theirs[variable.path],
                                   rtol=0, atol=1e-6, err_msg=variable.path)
        checked += 1
    assert checked == len(theirs) > 10
    code, _, stderr = results["wider"]
    lines = stderr.strip().splitlines()
    assert code == 2 and "Traceback" not in stderr
    assert lines[-1].startswith(f"train: error: flag --init_from={dirs['image']}: weight '")
    assert "has shape" in lines[-1] and "needs" in lines[-1]
    assert not (tmp_path / "wider").exists()
