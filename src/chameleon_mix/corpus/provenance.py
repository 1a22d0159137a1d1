"""Where a collector's source files come from: the Python distributions it declares, and the
owning package and version of any other file (Python itself, else a Debian package)."""

from __future__ import annotations

import contextlib
import csv
import functools
import glob
import importlib.metadata
import os
import platform
import re
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "UNKNOWN",
    "DistributionFiles",
    "distribution_files",
    "iter_distribution_files",
    "owner",
    "python_paths",
]

DPKG_INFO_DIR = "/var/lib/dpkg/info"
DPKG_STATUS = "/var/lib/dpkg/status"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class DistributionFiles:
    """Files of some declared Python distributions, as found on ``sys.path``."""

    files: dict[Path, tuple[str, str]]  # file -> (distribution, version)
    versions: dict[str, str]  # each declared distribution found -> its version
    missing: tuple[str, ...]  # declared distributions not installed


def distribution_files(
    names: Iterable[str], patterns: Iterable[str], prune: frozenset[str]
) -> DistributionFiles:
    """The files that the installed distributions ``names`` list in their RECORD and whose
    path relative to site-packages matches one of ``patterns`` (globs, "**/" for any
    directories), with no directory of ``prune`` on the way."""
    patterns = tuple(patterns)
    files: dict[Path, tuple[str, str]] = {}
    versions: dict[str, str] = {}
    missing = []
    for name in names:
        dist = _distribution(name)
        if dist is None:
            missing.append(name)
            continue
        versions[name] = version = dist.version  # parses METADATA: once per distribution
        for path in _record_files(dist, patterns, prune):
            files.setdefault(path, (name, version))
    return DistributionFiles(files, versions, tuple(missing))


def iter_distribution_files(
    names: Iterable[str], patterns: Iterable[str], prune: frozenset[str]
) -> Iterator[Path]:
    """The files of :func:`distribution_files`, lazily (a cheap test that some exist)."""
    patterns = tuple(patterns)
    for name in names:
        dist = _distribution(name)
        if dist is not None:
            yield from _record_files(dist, patterns, prune)


def _distribution(name: str) -> importlib.metadata.Distribution | None:
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
        if any(_matches(relative, pattern) for pattern in patterns):
            path = os.path.join(base, relative)
            if os.path.isfile(path) and not os.path.islink(path):
                yield Path(path)


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    """A pattern with the meaning of Collector.globs: "**/" is any number of directories;
    "*", "?" and "[...]" match within one path component."""
    pieces = re.split(r"(\*\*/|\*|\?|\[!?[^]]+\])", pattern)
    regex = "".join(
        "(?:.*/)?" if piece == "**/"
        else "[^/]*" if piece == "*"
        else "[^/]" if piece == "?"
        else "[^" + piece[2:] if piece.startswith("[!")
        else piece if piece.startswith("[")
        else re.escape(piece)
        for piece in pieces
    )  # fmt: skip
    return re.compile(regex)


def _matches(relative: str, pattern: str) -> bool:
    return _pattern(pattern).fullmatch(relative) is not None


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
    owners = _dpkg_files()
    # Debian 12 is usr-merged: dpkg may list /bin/x for the file /usr/bin/x,
    # and a symlinked directory hides the path dpkg knows.
    aliases = [path, os.path.realpath(path)]
    aliases += [alias[4:] for alias in aliases if alias.startswith("/usr/")]
    for alias in aliases:
        package = owners.get(alias)
        if package:
            return package, _dpkg_versions().get(package, UNKNOWN)
    return UNKNOWN, UNKNOWN


@functools.cache
def _dpkg_files() -> dict[str, str]:
    """Every path listed by an installed Debian package -> that package."""
    owners: dict[str, str] = {}
    for listing in sorted(glob.glob(os.path.join(DPKG_INFO_DIR, "*.list"))):
        package = os.path.basename(listing)[: -len(".list")].split(":")[0]
        with (
            contextlib.suppress(OSError),
            open(listing, encoding="utf-8", errors="replace") as handle,
        ):
            for line in handle:
                owners.setdefault(line.rstrip("\n"), package)
    return owners


@functools.cache
def _dpkg_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    try:
        status = Path(DPKG_STATUS).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return versions
    for stanza in status.split("\n\n"):
        fields = dict(re.findall(r"^(Package|Version|Status): *(.*)$", stanza, re.MULTILINE))
        if fields.get("Status", "").endswith(" installed") and "Package" in fields:
            versions.setdefault(fields["Package"], fields.get("Version", UNKNOWN))
    return versions
