"""Where a collector's source files come from: the Python distributions it declares, and the
owning package and version of any other file (Python itself, else a Debian package); the
Debian packages it declares are :mod:`.debian`'s."""

from __future__ import annotations

import csv
import functools
import importlib.metadata
import os
import platform
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path

from .debian import dpkg_owners, dpkg_versions
from .declared import DeclaredFiles, matches

__all__ = [
    "UNKNOWN",
    "distribution_files",
    "iter_distribution_files",
    "owner",
    "python_paths",
]

UNKNOWN = "unknown"


def distribution_files(
    names: Iterable[str], patterns: Iterable[str], prune: frozenset[str]
) -> DeclaredFiles:
    """The files that the installed distributions ``names`` list in their RECORD and whose
    path relative to site-packages matches one of ``patterns`` (globs, "**/" for any
    directories), with no directory of ``prune`` on the way."""
    patterns = tuple(patterns)
    files: dict[Path, tuple[str, str]] = {}
    versions: dict[str, str] = {}
    missing = []
    for name in names:
        dist = installed_distribution(name)
        if dist is None:
            missing.append(name)
            continue
        versions[name] = version = dist.version  # parses METADATA: once per distribution
        for path in _record_files(dist, patterns, prune):
            files.setdefault(path, (name, version))
    return DeclaredFiles(files, versions, tuple(missing))


def iter_distribution_files(
    names: Iterable[str], patterns: Iterable[str], prune: frozenset[str]
) -> Iterator[Path]:
    """The files of :func:`distribution_files`, lazily (a cheap test that some exist)."""
    patterns = tuple(patterns)
    for name in names:
        dist = installed_distribution(name)
        if dist is not None:
            yield from _record_files(dist, patterns, prune)


def installed_distribution(name: str) -> importlib.metadata.Distribution | None:
    # Looked up by name on sys.path (the first one found wins, as for imports), so any other
    # distribution installed beside the declared ones is never read.
    try:
        return importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _record_files(
    dist: importlib.metadata.Distribution, patterns: tuple[str, ...], prune: frozenset[str]
) -> Iterator[Path]:
    # RECORD is read directly: Distribution.files builds an object per entry, and torch
    # lists some 20k of them.
    base = str(dist.locate_file(""))
    for row in csv.reader((dist.read_text("RECORD") or "").splitlines()):
        relative = row[0] if row else ""
        parts = relative.split("/")
        # Scripts and data files (../../bin/x) live outside site-packages.
        if not relative or parts[0] == ".." or prune.intersection(parts[:-1]):
            continue
        if any(matches(relative, pattern) for pattern in patterns):
            path = os.path.join(base, relative)
            if os.path.isfile(path) and not os.path.islink(path):
                yield Path(path)


@functools.cache
def python_paths() -> dict[str, str]:
    return sysconfig.get_paths()


def owner(path: Path) -> tuple[str, str]:
    """(package, version) owning ``path``, a file outside the declared distributions:
    ("python", its version) for Python's own files, else the Debian package listing it,
    else (UNKNOWN, UNKNOWN)."""
    text = str(path)
    paths = python_paths()
    if any(
        text.startswith(paths[key] + os.sep)
        for key in ("stdlib", "platstdlib", "include", "platinclude")
    ):
        return "python", platform.python_version()
    return _dpkg_owner(text)


def _dpkg_owner(path: str) -> tuple[str, str]:
    owners = dpkg_owners()
    # Debian 12 is usr-merged: dpkg may list /bin/x for the file /usr/bin/x,
    # and a symlinked directory hides the path dpkg knows.
    aliases = [path, os.path.realpath(path)]
    aliases += [alias[4:] for alias in aliases if alias.startswith("/usr/")]
    for alias in aliases:
        package = owners.get(alias)
        if package:
            return package, dpkg_versions().get(package, UNKNOWN)
    return UNKNOWN, UNKNOWN
