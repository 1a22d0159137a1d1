"""What a collector's declared packages (Python distributions, Debian packages) give it: their
files that match its patterns, and the versions found."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["DeclaredFiles", "matches"]


@dataclass(frozen=True)
class DeclaredFiles:
    """Files of some declared packages, as installed here."""

    files: dict[Path, tuple[str, str]]  # file -> (package, installed version)
    versions: dict[str, str]  # each declared package found -> its installed version
    missing: tuple[str, ...]  # declared packages not installed
    # declared packages installed at another version than declared -> both versions
    other_versions: dict[str, dict[str, str]] = field(default_factory=dict)


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


def matches(path: str, pattern: str) -> bool:
    """Whether the whole of ``path`` matches ``pattern``."""
    return _pattern(pattern).fullmatch(path) is not None
