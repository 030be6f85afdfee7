"""One run per model_dir: an exclusive `fcntl.flock` on `<model_dir>/.lock`.

The kernel releases the lock when the holding process exits or is killed, so a crashed run never
leaves a stale lock; a second run on the same model_dir while the first is alive fails at once
with `RunLockedError` naming the holder's pid (the trainers turn it into a one-line usage error,
exit status 2). Pure Python: taken before TensorFlow is imported. A model_dir that the lock
itself created and that holds nothing but the lock file when it is released (a run that failed
before writing anything) is removed again, so a failed start leaves no trace.
"""
import fcntl
import os

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the model_dir lock."""


class RunLock:
    """`with RunLock(model_dir):` or `lock = RunLock(d).acquire(); ...; lock.release()`."""

    def __init__(self, model_dir):
        self.path = os.path.join(os.fspath(model_dir), LOCK_NAME)
        self._fd = None
        self._created_dir = False

    def acquire(self):
        directory = os.path.dirname(self.path) or "."
        self._created_dir = not os.path.isdir(directory)
        os.makedirs(directory, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunLockedError(f"{os.path.dirname(self.path)} is in use by another run "
                                 f"(pid {holder}); wait for it to finish or use another "
                                 "model_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
            directory = os.path.dirname(self.path) or "."
            if self._created_dir and os.listdir(directory) == [LOCK_NAME]:
                os.remove(self.path)
                os.rmdir(directory)

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
