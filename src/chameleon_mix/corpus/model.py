"""What a collector is: where its files live and how one file becomes documents."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Collector", "Document"]

Document = dict[str, Any]  # {"text": str} plus extra fields such as "lang"


def _accept_all(path: Path) -> bool:
    return True


@dataclass(frozen=True)
class Collector:
    """One kind of text and where it lives on a Debian machine with this project installed."""

    name: str
    description: str  # one line
    install_hint: str  # what to install when the source is missing
    # Glob patterns of files that neither Python distributions nor Debian packages declare
    # (Python's own standard library, npm's global modules), built lazily so that importing
    # this package touches no file system; "/**/" walks all directories below without
    # following symlinks, anything else is a plain one-level glob.
    globs: Callable[[], Iterable[str]]
    # One file's bytes -> its documents; raises nothing for malformed files.
    to_documents: Callable[[Path, bytes], Iterable[Document]]
    # Cheap check on a candidate path (e.g. a shebang), run while listing.
    accept: Callable[[Path], bool] = _accept_all
    # Directory names never descended into (by "/**/" patterns and in distributions' files).
    prune: frozenset[str] = frozenset({"__pycache__"})
    # A language of chameleon_mix.langid ("fr"): keep only the paragraphs (blocks separated
    # by blank lines) that langid finds in it; see corpus.language.LanguageCheck.
    language: str | None = None
    # Installed Python distributions whose files (as listed in their RECORD) are read, and
    # the patterns (as for globs, relative to site-packages) those files must match.
    # Nothing else in site-packages is read, so what else is installed changes nothing.
    distributions: tuple[str, ...] = ()
    distribution_files: tuple[str, ...] = ()
    # Installed Debian packages (name -> the version declared) whose files, as dpkg lists
    # them, are read where their absolute path matches one of ``debian_files`` (patterns as
    # for globs). Nothing else under those directories is read, so installing another package
    # changes nothing.
    debian_packages: Mapping[str, str] = field(default_factory=dict)
    debian_files: tuple[str, ...] = ()
