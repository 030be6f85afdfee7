"""trainers/train.py, evaluate.py, sample.py as a user runs them: flag errors, --helpfull, the
no-flag main job (shortened), evaluation and sampling from its checkpoints."""
import json
import os
import time

import pytest

import _cli

BAD_FLAGS = [  # (flags, text the one-line error must contain)
    (["--seq_len=0"], "--seq_len=0"),
    (["--seq_len=-5"], "--seq_len=-5"),
    (["--preset=no_such_preset"], "preset=no_such_preset"),
    (["--preset=tiny_image"], "preset=tiny_image"),  # preset of another task
    (["--task=lm", "--dataset=mnist"], "dataset=mnist"),
    (["--task=image", "--dataset=shakespeare_plays"], "dataset=shakespeare_plays"),
    (["--dataset=no_such_dataset"], "dataset=no_such_dataset"),
    (["--strategy=quantum"], "--strategy=quantum"),
    (["--attention_types=lsh,banana"], "--attention_types"),
    (["--batch_size=0"], "--batch_size=0"),
    (["--task=speech"], "--task=speech"),
    (["--stored_top_blocks=-1"], "--stored_top_blocks=-1"),
    (["--attn_chunks=0"], "--attn_chunks=0"),
    (["--reserve_cpu_pool_gib=-1"], "--reserve_cpu_pool_gib=-1"),
]


def _assert_one_line_error(result, needle):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("train: error:")]
    assert len(lines) == 1 and needle in lines[0], result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == lines[0]


@pytest.mark.parametrize("flags,needle", BAD_FLAGS, ids=[" ".join(f) for f, _ in BAD_FLAGS])
def test_bad_flags_fail_fast_with_one_line(tmp_path, flags, needle):
    start = time.monotonic()
    result = _cli.run("train", f"--data_dir={tmp_path / 'data'}",
                      f"--model_dir={tmp_path / 'run'}", *flags, timeout=120)
    _assert_one_line_error(result, needle)
    assert result.returncode == 2
    assert not (tmp_path / "data").exists() and not (tmp_path / "run").exists()  # no work done
    assert time.monotonic() - start < 60


def test_pool_reservation_over_the_pool_cap_fails_with_one_line(tmp_path):
    result = _cli.run("train", "--reserve_cpu_pool_gib=0.5", f"--data_dir={tmp_path / 'data'}",
                      f"--model_dir={tmp_path / 'run'}", timeout=120,
                      TF_CPU_BFC_MEM_LIMIT_IN_MB="100")
    _assert_one_line_error(result, "--reserve_cpu_pool_gib=0.5: reserve_cpu_pool: could not")
    assert not (tmp_path / "data").exists()


def test_unwritable_model_dir(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    result = _cli.run("train", f"--model_dir={blocker / 'run'}",
                      f"--data_dir={tmp_path / 'data'}", timeout=120)
    _assert_one_line_error(result, "--model_dir=")
    assert not (tmp_path / "data").exists()


def test_unavailable_tpu_strategy_fails_before_data(tmp_path):
    result = _cli.run("train", "--strategy=tpu", f"--data_dir={tmp_path / 'data'}",
                      f"--model_dir={tmp_path / 'run'}", timeout=300)
    _assert_one_line_error(result, "--strategy=tpu")
    assert not (tmp_path / "data").exists()


def test_helpfull_documents_every_flag():
    result = _cli.run("train", "--helpfull", timeout=120)
    text = result.stdout + result.stderr
    for name in ("task", "preset", "dataset", "data_dir", "seq_len", "batch_size", "steps",
                 "epochs", "steps_per_epoch", "learning_rate", "schedule", "warmup_steps",
                 "strategy", "model_dir", "seed", "max_minutes", "num_layers", "d_model",
                 "attention_types", "num_hashes", "bucket_size", "sample_every",
                 "stored_top_blocks", "attn_chunks", "query_chunk_len",
                 "reserve_cpu_pool_gib"):
        assert f"--{name}:" in text, name
    for name in ("mixed_precision", "jit_compile", "reversible", "ff_chunked_backward"):
        assert f"--[no]{name}:" in text, name


@pytest.fixture(scope="module")
def main_job(tmp_path_factory, shared_data_dir):
    """The README main job (no task/dataset/preset flags) shortened to 4 steps."""
    model_dir = tmp_path_factory.mktemp("main_job") / "model_dir"
    result = _cli.run("train", "--steps=4", "--steps_per_epoch=2", "--seq_len=32",
                      "--batch_size=4", "--eval_steps=1", "--sample_every=2",
                      "--sample_tokens=16", f"--data_dir={shared_data_dir}",
                      f"--model_dir={model_dir}", *_cli.TINY_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return model_dir, result


def test_main_job_smoke_writes_a_text_sample(main_job):
    model_dir, result = main_job
    assert "bits_per_char" in result.stdout and "done: step 4/4" in result.stdout
    assert "what to expect: " in result.stdout and "bits/char" in result.stdout
    sample = model_dir / "samples" / "final.txt"
    assert sample.exists() and sample.stat().st_size > 0
    assert (model_dir / "samples" / "step-000002.txt").exists()
    summary = json.loads((model_dir / "summary.json").read_text())
    assert summary["step"] == 4 and summary["metric"] == "bits_per_char"
    assert sorted(os.listdir(model_dir / "checkpoints")) == ["ckpt-0001.keras",
                                                             "ckpt-0002.keras"]
    assert os.listdir(model_dir / "logs")  # TensorBoard
    assert [s for s, _ in _cli.loss_log(model_dir)] == [1, 2, 3, 4]
    version = model_dir / "export" / "reformer_lm" / "1"  # the TF Serving export
    assert (version / "saved_model.pb").exists() and summary["export"] == str(version)


def test_evaluate_and_sample_from_checkpoint(main_job, shared_data_dir, tmp_path):
    model_dir, _ = main_job
    out = tmp_path / "eval.json"
    result = _cli.run("evaluate", f"--checkpoint={model_dir}", "--seq_len=32",
                      "--batch_size=4", "--eval_batches=2", f"--data_dir={shared_data_dir}",
                      f"--output={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads(out.read_text())
    assert metrics["split"] == "validation" and 0 < metrics["bits_per_char"] < 20
    result = _cli.run("sample", f"--checkpoint={model_dir / 'checkpoints' / 'ckpt-0002.keras'}",
                      "--seq_len=32", "--max_new_tokens=8", f"--output_dir={tmp_path}",
                      "--tag=again")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "again.txt").exists()
