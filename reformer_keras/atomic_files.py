"""Files and directories that appear atomically, and clean-up of what a killed writer left.

Every writer creates its output under a hidden temporary name in the final directory,
`.tmp-<pid>-<name>` (the writer's process id first), and moves it into place with one
`os.replace` / `os.rename`, so a reader sees the old or the new content, never a half-written
one. `remove_stale_temporaries` deletes only temporaries whose writer process is gone, so a
concurrent writer's files in the same directory are left alone.
"""
import os
import re
import shutil
import tempfile

TMP_PREFIX = ".tmp-"
_OWNER = re.compile(r"^\.tmp-(\d+)-")


def tmp_name(path):
    """A unique temporary name beside `path`: `.tmp-<pid>-<random>-<basename>`."""
    head, tail = os.path.split(os.fspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", suffix=f"-{tail}",
                               dir=head or ".")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # as open() would create it (mkstemp makes 0600)
    return tmp


def tmp_dir(directory):
    """A new temporary directory inside `directory` named `.tmp-<pid>-<random>`."""
    return tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{os.getpid()}-", dir=directory)


def _alive(pid):
    if pid == os.getpid():
        return False  # ours, and not being written while we clean up
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(directory):
    """Deletes `.tmp-<pid>-*` files / directories in `directory` whose process is not alive
    (left by a killed writer); returns the removed paths."""
    removed = []
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        match = _OWNER.match(name)
        if match and not _alive(int(match.group(1))):
            path = os.path.join(directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.remove(path)
                except OSError:
                    continue
            removed.append(path)
    return removed


def atomic_write_text(path, text):
    """Writes `text` to `path` through a unique temporary file (fsync + os.replace)."""
    tmp = tmp_name(path)
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
