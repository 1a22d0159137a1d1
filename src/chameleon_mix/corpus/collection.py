"""Collecting: a collector's files -> JSON lines and a manifest of every source read."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..io import atomic_path, warn, write_json
from .collectors import COLLECTORS
from .debian import debian_files, iter_debian_files, package_lists
from .declared import DeclaredFiles
from .files import expand, is_utf8_name, read
from .language import MAX_REJECTED_FRACTION, LanguageCheck
from .model import Collector, Document
from .provenance import distribution_files, installed_distribution, iter_distribution_files, owner

__all__ = ["collect", "missing_reason", "package_records"]

# A huge file (a 700 kB header, a big catalogue) must not crowd out the rest of the tree, so
# only its first parts are kept.
MAX_PARTS_PER_TEXT = 8


def missing_reason(name: str | Collector) -> str | None:
    """None when the collector's source exists, else a one-line explanation.

    Stops at the first acceptable file, so it stays cheap even for trees of tens of thousands
    of files.
    """
    collector = _resolve(name)
    patterns = list(collector.globs())
    for pattern in patterns:
        if any(collector.accept(path) for path in expand(pattern, collector.prune)):
            return None
    for files, described in _declared_files(collector):
        if any(map(collector.accept, files)):
            return None
        patterns.append(described)
    return (
        f"collector {collector.name!r}: no source files found at {', '.join(patterns)}; "
        f"install them with: {collector.install_hint}"
    )


def package_records(name: str | Collector) -> list[str]:
    """The package records that list a collector's declared files: the RECORD of each of its
    installed Python distributions and the dpkg file list of each of its installed Debian
    packages. A collect job takes them as inputs: upgrading, installing or removing one of
    its packages reruns it, an unrelated package never does. (Listing the files themselves
    would cost 33 s per DAG build for the 41,815 candidates; the stdlib's files change only
    with Python's version, which the manifest records.)"""
    collector = _resolve(name)
    records = []
    for distribution in collector.distributions:
        path = getattr(installed_distribution(distribution), "_path", None)
        if path is not None and (Path(path) / "RECORD").is_file():
            records.append(str(Path(path) / "RECORD"))
    return records + package_lists(collector.debian_packages)


def _declared_files(collector: Collector) -> Iterator[tuple[Iterator[Path], str]]:
    """The files of each kind of package the collector declares, lazily, each with its
    description for an error."""
    if collector.distributions:
        yield (
            iter_distribution_files(
                collector.distributions, collector.distribution_files, collector.prune
            ),
            f"the files {', '.join(collector.distribution_files)} of the Python "
            f"distributions {', '.join(collector.distributions)}",
        )
    if collector.debian_packages:
        yield (
            iter_debian_files(collector.debian_packages, collector.debian_files, collector.prune),
            f"the files {', '.join(collector.debian_files)} of the "
            f"{len(collector.debian_packages)} declared Debian packages",
        )


def collect(
    name: str | Collector,
    out_path: str | os.PathLike[str],
    manifest_path: str | os.PathLike[str],
    max_documents: int,
    max_chars: int,
    min_chars: int = 200,
    max_rejected_fraction: float | None = None,
) -> int:
    """Write up to ``max_documents`` documents of collector ``name`` as JSON lines.

    Files are taken in the order of a hash of their path, so the selection is spread over the
    whole tree, is identical on every run on the same machine, and a smaller
    ``max_documents`` yields a prefix of a larger one.  Both outputs are replaced atomically:
    on any error neither is left half-written.  ``name`` may also be a :class:`Collector`
    (handy for tests).  Returns the number of documents written.

    The manifest names every source file read with its package, version and sha256, and the
    version of each Python distribution the collector declares; a declared distribution that
    is not installed is listed under ``missing_distributions`` and printed as a warning (the
    dependency closure differs between Python versions and platforms, so this is no error).

    For a collector with a ``language``, only paragraphs in that language are kept; the
    counts over every file read go to the manifest's ``language_check`` field and are
    printed.  When the share of judged paragraphs rejected exceeds ``max_rejected_fraction``
    (default :data:`MAX_REJECTED_FRACTION`), :class:`LanguageCheckError` is raised and nothing
    is written.
    """
    collector = _resolve(name)
    max_rejected_fraction = _check_limits(
        collector, max_documents, max_chars, min_chars, max_rejected_fraction
    )
    check = LanguageCheck(collector.language) if collector.language else None
    reason = missing_reason(collector)
    if reason is not None:
        raise FileNotFoundError(reason)
    installed = _distribution_files(collector)
    debian = _debian_files(collector)
    _report_declared(collector, "Python distributions", installed)
    _report_declared(collector, "Debian packages", debian)
    candidates = _candidates(collector, installed, debian)
    with (
        atomic_path(out_path) as temporary,
        open(temporary, "w", encoding="utf-8", newline="\n") as out,
    ):
        written, total_bytes, used = _write_documents(
            out,
            collector,
            candidates,
            installed,
            debian,
            max_documents,
            max_chars,
            min_chars,
            check,
        )
        if check is not None:
            check.enforce(collector.name, collector.description, max_rejected_fraction)
        if written == 0:
            raise ValueError(
                f"collector {collector.name!r} found no documents of {min_chars}+ characters "
                f"in {len(candidates)} candidate files"
            )
        manifest: dict[str, Any] = {
            "collector": collector.name,
            "documents": written,
            "bytes": total_bytes,
            "sources": [{**source, "path": path} for path, source in sorted(used.items())],
            **_declared_versions(collector, installed, debian),
        }
        if check is not None:
            manifest["language_check"] = {
                **check.summary(),
                "max_rejected_fraction": max_rejected_fraction,
            }
        # The manifest goes first: a JSONL file that exists always has one.
        write_json(manifest_path, manifest)
    return written


def _check_limits(
    collector: Collector,
    max_documents: int,
    max_chars: int,
    min_chars: int,
    max_rejected_fraction: float | None,
) -> float:
    """Check :func:`collect`'s limits; returns the share of rejected paragraphs allowed."""
    if max_documents < 1 or min_chars < 1 or max_chars < min_chars:
        raise ValueError(
            f"collector {collector.name!r}: need max_documents >= 1 and 1 <= min_chars <= max_chars"
        )
    if max_rejected_fraction is None:
        max_rejected_fraction = MAX_REJECTED_FRACTION
    if not 0.0 <= max_rejected_fraction <= 1.0:
        raise ValueError(
            f"collector {collector.name!r}: max_rejected_fraction must lie in [0, 1], "
            f"not {max_rejected_fraction}"
        )
    return max_rejected_fraction


def _write_documents(
    out,
    collector: Collector,
    candidates: list[Path],
    installed: DeclaredFiles,
    debian: DeclaredFiles,
    max_documents: int,
    max_chars: int,
    min_chars: int,
    check: LanguageCheck | None,
) -> tuple[int, int, dict[str, dict[str, str]]]:
    """Write the documents of the ``candidates``, in order, to ``out`` as JSON lines, each text
    once, until ``max_documents``: returns the documents written, their UTF-8 bytes, and each
    source file they came from -> its package, version and sha256."""
    written = total_bytes = 0
    seen: set[bytes] = set()  # identical texts (the same MIT licence 30 times) add nothing
    used: dict[str, dict[str, str]] = {}
    for path in candidates:
        if written >= max_documents:
            break
        data = read(path)
        if data is None:
            continue
        written_before = written
        for document in _file_documents(collector, path, data, max_chars, min_chars, check):
            encoded = document["text"].encode("utf-8")
            digest = hashlib.blake2b(encoded, digest_size=16).digest()
            if digest in seen:
                continue
            seen.add(digest)
            out.write(json.dumps(document, ensure_ascii=False, sort_keys=True) + "\n")
            written += 1
            total_bytes += len(encoded)
            if written >= max_documents:
                break
        if written > written_before:
            package, version = installed.files.get(path) or debian.files.get(path) or owner(path)
            used[str(path)] = {
                "package": package,
                "version": version,
                "sha256": hashlib.sha256(data).hexdigest(),  # of the bytes actually read
            }
    return written, total_bytes, used


def _declared_versions(
    collector: Collector, installed: DeclaredFiles, debian: DeclaredFiles
) -> dict[str, Any]:
    """The manifest's versions of the packages the collector declares, and those missing."""
    versions: dict[str, Any] = {}
    if collector.distributions:
        versions["distributions"] = installed.versions
        versions["missing_distributions"] = list(installed.missing)
    if collector.debian_packages:
        versions["debian_packages"] = debian.versions
        versions["missing_debian_packages"] = list(debian.missing)
        versions["debian_packages_at_other_versions"] = debian.other_versions
    return versions


def _resolve(name: str | Collector) -> Collector:
    if isinstance(name, Collector):
        return name
    try:
        return COLLECTORS[name]
    except KeyError:
        known = ", ".join(sorted(COLLECTORS))
        raise ValueError(f"unknown collector {name!r}; known collectors: {known}") from None


def _distribution_files(collector: Collector) -> DeclaredFiles:
    return distribution_files(
        collector.distributions, collector.distribution_files, collector.prune
    )


def _debian_files(collector: Collector) -> DeclaredFiles:
    return debian_files(collector.debian_packages, collector.debian_files, collector.prune)


def _report_declared(collector: Collector, kind: str, declared: DeclaredFiles) -> None:
    """A warning for each declared package missing or at another version than declared: the
    corpus then differs from the one the demo's weights were measured on."""
    if declared.missing:
        warn(
            f"collector {collector.name!r}: declared {kind} not installed, their files are "
            f"left out: {', '.join(declared.missing)} (install them with: "
            f"{collector.install_hint})"
        )
    if declared.other_versions:
        found = ", ".join(
            f"{name} {v['installed']} (declared {v['declared']})"
            for name, v in declared.other_versions.items()
        )
        warn(
            f"collector {collector.name!r}: declared {kind} at other versions, their files "
            f"are read as installed: {found}"
        )


def _candidates(
    collector: Collector, installed: DeclaredFiles, debian: DeclaredFiles
) -> list[Path]:
    """All candidate files, ordered by a hash of their path."""
    found = {
        *(path for pattern in collector.globs() for path in expand(pattern, collector.prune)),
        *installed.files,
        *debian.files,
    }
    return sorted(
        (path for path in found if is_utf8_name(path) and collector.accept(path)),
        key=lambda path: (hashlib.blake2b(str(path).encode(), digest_size=16).digest(), path),
    )


def _file_documents(
    collector: Collector,
    path: Path,
    data: bytes,
    max_chars: int,
    min_chars: int,
    check: LanguageCheck | None = None,
) -> list[Document]:
    """The file's documents, split to ``max_chars``, with "source" (and "part" when the file
    gives several pieces) added and pieces under ``min_chars`` dropped.  With a ``check``,
    only its language's paragraphs are kept, and counted."""
    pieces: list[Document] = []
    for document in collector.to_documents(path, data):
        extras = {key: value for key, value in document.items() if key != "text"}
        # Lone surrogates (possible in docstrings) cannot be written as UTF-8.
        text = document["text"].encode("utf-8", "replace").decode("utf-8")
        if check is not None:
            text = check.filter(text)
        pieces.extend(
            {**extras, "text": part} for part in _split(text, max_chars)[:MAX_PARTS_PER_TEXT]
        )
    several = len(pieces) > 1
    kept = []
    # Part numbers count pieces before filtering, so they identify a piece of the file
    # whatever min_chars is.
    for number, piece in enumerate(pieces):
        if len(piece["text"]) >= min_chars:
            piece["source"] = str(path)
            if several:
                piece["part"] = number
            kept.append(piece)
    return kept


_PARAGRAPH_END = re.compile(r"(?<=\n\n)")


def _split(text: str, max_chars: int) -> list[str]:
    """Stripped chunks of at most ``max_chars``, cut at paragraph boundaries where possible,
    else at line boundaries, else anywhere."""
    text = text.strip()
    if len(text) <= max_chars:
        return [text] if text else []
    units: list[str] = []
    for paragraph in _PARAGRAPH_END.split(text):
        if len(paragraph) <= max_chars:
            units.append(paragraph)
            continue
        for line in paragraph.splitlines(keepends=True):
            units.extend(
                line[start : start + max_chars] for start in range(0, len(line), max_chars)
            )
    chunks, current = [], ""
    for unit in units:
        if current and len(current) + len(unit) > max_chars:
            chunks.append(current)
            current = ""
        current += unit
    chunks.append(current)
    return [chunk.strip() for chunk in chunks if chunk.strip()]
