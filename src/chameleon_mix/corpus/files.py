"""Finding and reading a collector's files."""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["MAX_FILE_BYTES", "expand", "is_utf8_name", "read"]

# Bigger files are generated data rather than text worth training on, and reading them would
# only slow collection down.
MAX_FILE_BYTES = 8 * 1024 * 1024


def expand(pattern: str, prune: frozenset[str]) -> Iterator[Path]:
    """Regular, non-symlinked files matching ``pattern`` (see Collector.globs)."""
    head, recursive, name_pattern = pattern.partition("/**/")
    for base in glob.iglob(head):
        if recursive:
            yield from _walk(base, name_pattern, prune)
        elif os.path.isfile(base) and not os.path.islink(base):
            yield Path(base)


def _walk(directory: str, name_pattern: str, prune: frozenset[str]) -> Iterator[Path]:
    # os.scandir's cached d_type avoids one stat per file, which matters for trees of tens of
    # thousands of entries; symlinks are skipped because they only duplicate files reachable
    # elsewhere (or loop).
    try:
        with os.scandir(directory) as scan:
            entries = list(scan)
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if entry.name not in prune:
                yield from _walk(entry.path, name_pattern, prune)
        elif entry.is_file(follow_symlinks=False) and fnmatch.fnmatchcase(entry.name, name_pattern):
            yield Path(entry.path)


def is_utf8_name(path: Path) -> bool:
    """Whether ``path`` can be written as UTF-8 (the JSON "source" field must be)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read(path: Path) -> bytes | None:
    """The file's bytes, or None when it is unreadable or too big."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_FILE_BYTES else None
