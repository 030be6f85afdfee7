"""The package builds from a clean copy of the checkout and installs into a fresh environment.

A wheel (`pip wheel --no-deps --no-build-isolation`) and an sdist (`setup.py sdist`) are built
from a copy of the git-tracked files (so the checkout itself gets no build/ or egg-info
directories); the wheel is installed with `--no-deps` into a fresh `python -m venv` (no pip in
it: the running interpreter's pip installs into it with `--python`), and
`import reformer_keras` there prints `__version__`. The fresh environment has none of the
dependencies, on purpose: importing the package must not import TensorFlow or anything else
heavy (the runtime settings are applied by functions, not by the import). The version must
equal the one `setup.py` reads from `reformer_keras/__init__.py` by a regular expression, and
the sdist must carry the files the README's commands and the licence need.
"""

import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(args, cwd, timeout=120):
    proc = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          check=False, env=dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1",
                                                PYTHONPATH=""))
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def _clean_copy(dst):
    files = _run(["git", "ls-files", "-z"], REPO).split("\0")
    for name in filter(None, files):
        src = os.path.join(REPO, name)
        if os.path.isfile(src):  # tracked but deleted in the working tree: skipped
            os.makedirs(os.path.dirname(os.path.join(dst, name)), exist_ok=True)
            shutil.copy2(src, os.path.join(dst, name))


def test_wheel_and_sdist_build_install_and_import(tmp_path):
    src, dist, venv = tmp_path / "src", tmp_path / "dist", tmp_path / "venv"
    _clean_copy(src)
    with open(src / "reformer_keras" / "__init__.py", encoding="utf-8") as f:
        version = re.search(r'^__version__ = "([^"]+)"$', f.read(), re.MULTILINE).group(1)

    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(dist), str(src)], tmp_path)
    _run([sys.executable, "setup.py", "-q", "sdist", "-d", str(dist)], src)
    wheels = [n for n in os.listdir(dist) if n.endswith(".whl")]
    sdists = [n for n in os.listdir(dist) if n.endswith(".tar.gz")]
    assert wheels == [f"reformer_keras-{version}-py3-none-any.whl"], os.listdir(dist)
    assert sdists == [f"reformer-keras-{version}.tar.gz"], os.listdir(dist)

    with tarfile.open(dist / sdists[0]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("requirements.txt", "LICENSE", "CHANGELOG.md", "README.md", "setup.py",
                   "reformer_keras/__init__.py"):
        assert needed in names, needed
    with zipfile.ZipFile(dist / wheels[0]) as whl:
        metadata = whl.read(f"reformer_keras-{version}.dist-info/METADATA").decode()
    # install_requires gives a range, not requirements.txt's exact pin
    assert re.search(r"^Requires-Dist: tensorflow ?\(?(<2\.22,>=2\.21|>=2\.21,<2\.22)",
                     metadata, re.MULTILINE), metadata[:2000]

    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = str(venv / "bin" / "python")
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q",
          str(dist / wheels[0])], tmp_path)
    out = _run([python, "-c", "import sys, reformer_keras; print(reformer_keras.__version__); "
                "print(reformer_keras.__file__); print('tensorflow' in sys.modules)"], tmp_path)
    printed_version, path, tf_loaded = out.split()
    assert printed_version == version
    assert path.startswith(str(venv)), path    # the installed copy, not the checkout
    assert tf_loaded == "False"
