"""The benchmark ledgers in `docs/results/`: one JSON-lines file per benchmark.

Every row carries the date (UTC, YYYY-MM-DD), the commit of the measured code
(`git rev-parse --short HEAD`, `+dirty` when tracked files differ from it, `unknown` outside a
git checkout) and the machine (`<cores>-core <CPU model name>`, ` VM` under a hypervisor), so a
table can cite any row with its date and machine. Fields a row already has are kept.
"""

import datetime
import json
import os
import subprocess

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    """'2-core AMD EPYC VM' style description of this machine (Linux /proc/cpuinfo)."""
    model, virtual = "unknown CPU", False
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and model == "unknown CPU":
                    model = " ".join(value.split())
                elif key.strip() == "flags" and "hypervisor" in value.split():
                    virtual = True
    except OSError:
        pass
    return f"{os.cpu_count()}-core {model}" + (" VM" if virtual else "")


def commit():
    """The checkout's short commit, with '+dirty' if tracked files changed; 'unknown' if none."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=_REPO, capture_output=True, text=True,
                              check=True, timeout=30).stdout.strip()
    try:
        head = git("rev-parse", "--short", "HEAD")
        return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def stamp(row):
    """`row` with date, commit and machine added where missing (a new dict)."""
    out = dict(row)
    out.setdefault("date", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d"))
    out.setdefault("commit", commit())
    out.setdefault("machine", machine())
    return out


def append(path, rows):
    """Appends `rows` (dicts) to the JSON-lines ledger at `path`, each stamped."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    stamped = [stamp(r) for r in rows]
    with open(path, "a", encoding="utf-8") as f:
        for row in stamped:
            f.write(json.dumps(row) + "\n")
