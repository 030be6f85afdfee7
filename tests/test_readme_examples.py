"""The README's Python examples run as written.

Every ```python block of README.md runs in one fresh interpreter (cwd: a temporary directory,
the repository on PYTHONPATH), each block in a namespace of its own, so a block that uses a
name it does not define fails. The shapes the examples state in their comments are checked on
the names they define.
"""

import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

_RUNNER = r'''
import json, sys
import numpy as np
blocks = json.loads(sys.stdin.read())
for i, code in enumerate(blocks):
    ns = {"__name__": "__readme_block_%d__" % i}
    exec(compile(code, "README.md python block %d" % (i + 1), "exec"), ns)
    found = {}
    for name in ("logits", "y", "ids", "images"):
        if name in ns:
            found[name] = [list(np.shape(ns[name])), str(np.asarray(ns[name]).dtype)]
    print("BLOCK", i + 1, json.dumps(found), flush=True)
'''


def readme_python_blocks():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"^```python\n(.*?)^```$", text, re.MULTILINE | re.DOTALL)


def test_readme_python_blocks_run(tmp_path):
    import json
    blocks = readme_python_blocks()
    assert len(blocks) >= 3, "README lost its examples"
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", _RUNNER], input=json.dumps(blocks), cwd=tmp_path,
                          capture_output=True, text=True, timeout=600, env=env, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = {}
    for line in proc.stdout.splitlines():
        if line.startswith("BLOCK "):
            _, number, found = line.split(" ", 2)
            results.update(json.loads(found))
    assert [l for l in proc.stdout.splitlines() if l.startswith("BLOCK ")][-1].startswith(
        f"BLOCK {len(blocks)} ")
    # what the examples' comments say
    assert results["logits"][0] == [1, 256, 258]
    assert results["y"][0] == [2, 300, 128]
    assert results["ids"][0] == [1, 1 + len("To be") + 20]
    assert results["images"] == [[4, 8, 8, 1], "uint8"]
    assert os.path.exists(tmp_path / "lm.keras")
