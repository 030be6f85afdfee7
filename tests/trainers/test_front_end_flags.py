"""Every command-line front end rejects bad flags while parsing: exit status 2, one line
`<prog>: error: ...` on stderr naming the flag, no traceback, nothing written."""
import subprocess
import sys

import pytest

import _cli


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], cwd=_cli.REPO, env=_cli.env(),
                          capture_output=True, text=True, timeout=300)


CASES = [  # (module, program, flags, text the error line must contain)
    ("trainers.evaluate", "evaluate", ["--eval_batches=0"], "--eval_batches=0"),
    ("trainers.evaluate", "evaluate", ["--batch_size=-1"], "--batch_size=-1"),
    ("trainers.sample", "sample", ["--max_new_tokens=0"], "--max_new_tokens=0"),
    ("trainers.sample", "sample", ["--max_new_tokens=-3"], "--max_new_tokens=-3"),
    ("exports.export", "export", ["--generation_length=1"], "--generation_length must be >= 2"),
    ("exports.export", "export", ["--generation_length=abc"], "--generation_length"),
    ("exports.export", "export", ["--text_signatures=maybe"], "--text_signatures"),
    ("exports.export", "export", ["--model_path=missing.keras"], "--model_path"),
    ("exports.client", "client", ["--max_new_tokens=0"], "--max_new_tokens=0"),
    ("exports.client", "client", ["--top_k=-1"], "--top_k=-1"),
    ("exports.client", "client", ["--temperature=-0.5"], "--temperature=-0.5"),
    ("exports.client", "client", ["--mode=images", "--count=0"], "--count=0"),
    ("exports.client", "client", ["--timeout=0"], "--timeout=0"),
    ("exports.client", "client", ["--mode=logits", "--events=1,x"], "--events="),
    ("exports.client", "client", ["--mode=banana"], "--mode"),
]


@pytest.mark.parametrize("module,program,flags,needle", CASES,
                         ids=[f"{c[1]} {' '.join(c[2])}" for c in CASES])
def test_bad_flag_exits_2_with_one_line(tmp_path, module, program, flags, needle):
    out = tmp_path / "out"
    required = {"trainers.evaluate": [f"--checkpoint={tmp_path}", f"--output={out}/r.json"],
                "trainers.sample": [f"--checkpoint={tmp_path}", f"--output_dir={out}"],
                "exports.export": [f"--model_path={tmp_path / 'm.keras'}",
                                   f"--export_dir={out}"],
                "exports.client": ["--model_name=m", "--text=hi", "--server=127.0.0.1:9"]}
    (tmp_path / "m.keras").write_bytes(b"")
    result = _run(module, *required[module], *flags)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith(f"{program}: error:")]
    assert len(errors) == 1 and needle in errors[0] and lines[-1] == errors[0], result.stderr
    assert not out.exists()
