"""The benchmark ledgers: every row in docs/results/ has date, commit and machine columns, and
`benchmarks.ledger.append` stamps new rows with them (checked against git and /proc directly)."""

import datetime
import glob
import json
import os
import re
import subprocess

from benchmarks import ledger

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_every_ledger_row_has_date_commit_machine():
    paths = sorted(glob.glob(os.path.join(REPO, "docs", "results", "*.jsonl")))
    assert paths
    for path in paths:
        with open(path, encoding="utf-8") as f:
            rows = [json.loads(line) for line in f if line.strip()]
        assert rows, path
        for row in rows:
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["date"]), (path, row)
            assert row["commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{7,40}(\+dirty)?",
                                                              row["commit"]), (path, row)
            assert row["machine"], (path, row)


def test_append_stamps_rows(tmp_path):
    path = tmp_path / "sub" / "bench.jsonl"
    ledger.append(str(path), [dict(a=1), dict(a=2, date="2000-01-01")])
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["a"] for r in rows] == [1, 2]
    assert rows[0]["date"] == datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    assert rows[1]["date"] == "2000-01-01"   # a field the row has is kept
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True,
                          text=True, check=True).stdout.strip()
    assert head.startswith(rows[0]["commit"].removesuffix("+dirty"))
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        model = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    assert rows[0]["machine"].startswith(f"{os.cpu_count()}-core {' '.join(model.split())}")
