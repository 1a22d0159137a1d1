"""Demo text corpora gathered at run time from files already on this machine.

Nothing third-party is committed to the repository.  Each collector gathers
one clearly distinct kind of text (Python code, man pages, licences, ...),
writes it as JSON lines and writes a manifest naming every source file with
its owning package, version and sha256, so a corpus can be traced and rebuilt.

A collector is only data: glob patterns saying where its files live, an
optional cheap filter, and a function turning one file's bytes into documents.
Everything else (hash-ordered picking, splitting, de-duplication, atomic
writing, the manifest) is shared by :func:`collect`.

A collector may name a natural language (``lang_fr``, ...): :func:`collect`
then keeps only the paragraphs that :mod:`chameleon_mix.langid` finds in that
language, records how many it rejected in the manifest, and refuses the whole
domain when too many are rejected (:data:`MAX_REJECTED_FRACTION`).
"""

from __future__ import annotations

import ast
import contextlib
import fnmatch
import functools
import glob
import gzip
import hashlib
import json
import os
import platform
import re
import struct
import sysconfig
import tempfile
import unicodedata
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

from . import langid

__all__ = [
    "COLLECTORS",
    "MAX_REJECTED_FRACTION",
    "Collector",
    "LanguageCheck",
    "LanguageCheckError",
    "collect",
    "missing_reason",
    "mo_translations",
    "roff_to_text",
]

Document = dict[str, Any]  # {"text": str} plus extra fields such as "lang"

# Bigger files are generated data rather than text worth training on, and
# reading them would only slow collection down.
MAX_FILE_BYTES = 8 * 1024 * 1024
# A huge file (a 700 kB header, a big catalogue) must not crowd out the rest
# of the tree, so only its first parts are kept.
MAX_PARTS_PER_TEXT = 8
SHELL_SCRIPT_MAX_BYTES = 200_000
DPKG_INFO_DIR = "/var/lib/dpkg/info"
DPKG_STATUS = "/var/lib/dpkg/status"
UNKNOWN = "unknown"
# A language collector refuses its domain when a larger share of the
# paragraphs judged is not in its language: the source is then mostly
# untranslated text or another language, not what the domain's name says.
MAX_REJECTED_FRACTION = 0.5


def _accept_all(path: Path) -> bool:
    return True


@dataclass(frozen=True)
class Collector:
    """One kind of text and where it lives on a Debian machine."""

    name: str
    description: str  # one line
    install_hint: str  # what to install when the source is missing
    # Glob patterns, built lazily so that importing this module touches no
    # file system; "/**/" walks all directories below without following
    # symlinks, anything else is a plain one-level glob.
    globs: Callable[[], Iterable[str]]
    # One file's bytes -> its documents; raises nothing for malformed files.
    to_documents: Callable[[Path, bytes], Iterable[Document]]
    # Cheap check on a candidate path (e.g. a shebang), run while listing.
    accept: Callable[[Path], bool] = _accept_all
    # Directory names never descended into by "/**/" patterns.
    prune: frozenset[str] = frozenset({"__pycache__"})
    # A language of langid.LANGUAGES ("fr"): keep only the paragraphs (blocks
    # separated by blank lines) that langid finds in it; see LanguageCheck.
    language: str | None = None


class LanguageCheckError(ValueError):
    """A language collector's source failed the language check (see :func:`collect`)."""


@dataclass
class LanguageCheck:
    """Filters documents to the paragraphs in one language and counts them.

    A paragraph of fewer than :data:`langid.MIN_WORDS` words is dropped
    without being judged (``too_short``); every other one is ``judged`` and
    kept only when :func:`langid.check` accepts it, else counted as
    ``rejected``.
    """

    language: str
    judged: int = 0
    rejected: int = 0
    too_short: int = 0

    def __post_init__(self) -> None:
        if self.language not in langid.STOP_WORDS:
            known = ", ".join(langid.LANGUAGES)
            raise ValueError(f"no language profile for {self.language!r}; known: {known}")

    @property
    def rejected_fraction(self) -> float:
        """rejected / judged (0.0 before anything was judged)."""
        return self.rejected / self.judged if self.judged else 0.0

    def filter(self, text: str) -> str:
        """The paragraphs of ``text`` accepted as :attr:`language`, joined by
        blank lines (so that splitting still cuts between them)."""
        kept = []
        for paragraph in _PARAGRAPH_BREAK.split(text):
            paragraph = paragraph.strip()
            if not paragraph:
                continue
            verdict = langid.check(paragraph, self.language)
            if verdict == "too_short":
                self.too_short += 1
                continue
            self.judged += 1
            if verdict == "rejected":
                self.rejected += 1
            else:
                kept.append(paragraph)
        return "\n\n".join(kept)

    def summary(self) -> dict[str, Any]:
        """The counts as written to a manifest's ``language_check`` field."""
        return {
            "language": self.language,
            "judged": self.judged,
            "rejected": self.rejected,
            "too_short": self.too_short,
            "rejected_fraction": round(self.rejected_fraction, 4),
        }


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------


def missing_reason(name: str | Collector) -> str | None:
    """None when the collector's source exists, else a one-line explanation.

    Stops at the first acceptable file, so it stays cheap even for trees of
    tens of thousands of files.
    """
    collector = _resolve(name)
    patterns = list(collector.globs())
    for pattern in patterns:
        if any(collector.accept(path) for path in _expand(pattern, collector.prune)):
            return None
    return (
        f"collector {collector.name!r}: no source files found at {', '.join(patterns)}; "
        f"install them with: {collector.install_hint}"
    )


def collect(
    name: str | Collector,
    out_path: str | os.PathLike[str],
    manifest_path: str | os.PathLike[str],
    max_documents: int,
    max_chars: int = 20000,
    min_chars: int = 200,
    max_rejected_fraction: float | None = None,
) -> int:
    """Write up to ``max_documents`` documents of collector ``name`` as JSON lines.

    Files are taken in the order of a hash of their path, so the selection is
    spread over the whole tree, is identical on every run on the same machine,
    and a smaller ``max_documents`` yields a prefix of a larger one.  Both
    outputs are replaced atomically: on any error neither is left half-written.
    ``name`` may also be a :class:`Collector` (handy for tests).  Returns the
    number of documents written.

    For a collector with a ``language``, only paragraphs in that language are
    kept; the counts over every file read go to the manifest's
    ``language_check`` field and are printed.  When the share of judged
    paragraphs rejected exceeds ``max_rejected_fraction`` (default
    :data:`MAX_REJECTED_FRACTION`), :class:`LanguageCheckError` is raised and
    nothing is written.
    """
    collector = _resolve(name)
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
    check = LanguageCheck(collector.language) if collector.language else None
    reason = missing_reason(collector)
    if reason is not None:
        raise FileNotFoundError(reason)
    candidates = _candidates(collector)

    written = total_bytes = 0
    seen: set[bytes] = set()  # identical texts (the same MIT licence 30 times) add nothing
    used: dict[str, str] = {}  # source path -> sha256 of the bytes actually read
    with _atomic_text_file(Path(out_path)) as out:
        for path in candidates:
            if written >= max_documents:
                break
            data = _read(path)
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
                used[str(path)] = hashlib.sha256(data).hexdigest()
        if check is not None:
            _enforce_language(collector, check, max_rejected_fraction)
        if written == 0:
            raise ValueError(
                f"collector {collector.name!r} found no documents of {min_chars}+ characters "
                f"in {len(candidates)} candidate files"
            )
        manifest = {
            "collector": collector.name,
            "documents": written,
            "bytes": total_bytes,
            "sources": [
                dict(zip(("package", "version"), _owner(Path(path))), path=path, sha256=sha)
                for path, sha in sorted(used.items())
            ],
        }
        if check is not None:
            manifest["language_check"] = {
                **check.summary(),
                "max_rejected_fraction": max_rejected_fraction,
            }
        # The manifest goes first: a JSONL file that exists always has one.
        with _atomic_text_file(Path(manifest_path)) as handle:
            handle.write(json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n")
    return written


# --------------------------------------------------------------------------
# Shared machinery
# --------------------------------------------------------------------------


def _enforce_language(collector: Collector, check: LanguageCheck, limit: float) -> None:
    """Print the language check's counts; raise when too many paragraphs failed it."""
    print(
        f"{collector.name}: language check ({check.language}): {check.rejected} of "
        f"{check.judged} judged paragraphs rejected ({check.rejected_fraction:.1%}), "
        f"{check.too_short} too short to judge",
        flush=True,
    )
    if check.rejected_fraction > limit:
        raise LanguageCheckError(
            f"collector {collector.name!r} refused: {check.rejected} of {check.judged} "
            f"judged paragraphs ({check.rejected_fraction:.1%}) are not in language "
            f"{check.language!r} according to chameleon_mix.langid, above the limit of "
            f"{limit:.0%}; its source ({collector.description}) is mostly untranslated or "
            f"in another language. Check those files (or the collector's globs), or pass "
            f"a larger max_rejected_fraction to collect() if this is expected"
        )


def _resolve(name: str | Collector) -> Collector:
    if isinstance(name, Collector):
        return name
    try:
        return COLLECTORS[name]
    except KeyError:
        known = ", ".join(sorted(COLLECTORS))
        raise ValueError(f"unknown collector {name!r}; known collectors: {known}") from None


def _expand(pattern: str, prune: frozenset[str]) -> Iterator[Path]:
    """Regular, non-symlinked files matching ``pattern`` (see Collector.globs)."""
    head, recursive, name_pattern = pattern.partition("/**/")
    for base in glob.iglob(head):
        if recursive:
            yield from _walk(base, name_pattern, prune)
        elif os.path.isfile(base) and not os.path.islink(base):
            yield Path(base)


def _walk(directory: str, name_pattern: str, prune: frozenset[str]) -> Iterator[Path]:
    # os.scandir's cached d_type avoids one stat per file, which matters for
    # the 85k entries of a large site-packages; symlinks are skipped because
    # they only duplicate files reachable elsewhere (or loop).
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


def _candidates(collector: Collector) -> list[Path]:
    """All candidate files, ordered by a hash of their path."""
    found = {
        path
        for pattern in collector.globs()
        for path in _expand(pattern, collector.prune)
        if _is_utf8_name(path) and collector.accept(path)
    }
    return sorted(
        found, key=lambda path: (hashlib.blake2b(str(path).encode(), digest_size=16).digest(), path)
    )


def _is_utf8_name(path: Path) -> bool:
    # Undecodable names would make the JSON "source" field unwritable.
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _read(path: Path) -> bytes | None:
    """The file's bytes, or None when it is unreadable or too big."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError:
        return None
    return data if len(data) <= MAX_FILE_BYTES else None


def _file_documents(
    collector: Collector,
    path: Path,
    data: bytes,
    max_chars: int,
    min_chars: int,
    check: LanguageCheck | None = None,
) -> list[Document]:
    """The file's documents, split to ``max_chars``, with "source" (and "part"
    when the file gives several pieces) added and pieces under ``min_chars`` dropped.
    With a ``check``, only its language's paragraphs are kept, and counted."""
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
    # Part numbers count pieces before filtering, so they identify a piece of
    # the file whatever min_chars is.
    for number, piece in enumerate(pieces):
        if len(piece["text"]) >= min_chars:
            piece["source"] = str(path)
            if several:
                piece["part"] = number
            kept.append(piece)
    return kept


_PARAGRAPH_END = re.compile(r"(?<=\n\n)")
_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _split(text: str, max_chars: int) -> list[str]:
    """Stripped chunks of at most ``max_chars``, cut at paragraph boundaries
    where possible, else at line boundaries, else anywhere."""
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


@contextlib.contextmanager
def _atomic_text_file(path: Path) -> Iterator[IO[str]]:
    """Open a temporary file beside ``path``; it replaces ``path`` only when
    the block finishes without an exception and is deleted otherwise."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(handle, "w", encoding="utf-8", newline="\n") as stream:
            yield stream
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


# --------------------------------------------------------------------------
# Owning package and version of a source file
# --------------------------------------------------------------------------


@functools.cache
def _python_paths() -> dict[str, str]:
    return sysconfig.get_paths()


def _site_dirs() -> list[str]:
    paths = _python_paths()
    return sorted({paths["purelib"], paths["platlib"]})


def _owner(path: Path) -> tuple[str, str]:
    """(package, version) owning ``path``; (UNKNOWN, UNKNOWN) if no one claims it."""
    text = str(path)
    for site in _site_dirs():  # checked first: site-packages lies inside the stdlib
        if text.startswith(site + os.sep):
            return _site_packages_owner(text[len(site) + 1 :])
    paths = _python_paths()
    if any(
        text.startswith(paths[key] + os.sep)
        for key in ("stdlib", "platstdlib", "include", "platinclude")
    ):
        return "python", platform.python_version()
    return _dpkg_owner(text)


def _site_packages_owner(relative: str) -> tuple[str, str]:
    by_file, by_top = _site_packages_records()
    top = relative.split(os.sep, 1)[0]
    return by_file.get(relative) or by_top.get(top) or (UNKNOWN, UNKNOWN)


@functools.cache
def _site_packages_records() -> tuple[dict[str, tuple[str, str]], dict[str, tuple[str, str]]]:
    """Maps from site-packages-relative file, and from top-level entry (package
    directory, module or *.dist-info), to (distribution, version).

    Reads the *.dist-info RECORD files directly: importlib.metadata parses
    every METADATA with the email package and is ten times slower."""
    import csv

    by_file: dict[str, tuple[str, str]] = {}
    by_top: dict[str, tuple[str, str]] = {}
    # Sorted so that namespace packages shared by several distributions map
    # to the same one on every run.
    for site in _site_dirs():
        for info in sorted(glob.glob(f"{glob.escape(site)}/*.dist-info")):
            ident = _dist_info_identity(info)
            by_top.setdefault(os.path.basename(info), ident)
            with (
                contextlib.suppress(OSError),
                open(f"{info}/RECORD", encoding="utf-8", newline="") as record,
            ):
                for row in csv.reader(record):
                    if row and not row[0].startswith(".."):
                        by_file.setdefault(os.path.normpath(row[0]), ident)
                        by_top.setdefault(row[0].split("/", 1)[0], ident)
    return by_file, by_top


def _dist_info_identity(info: str) -> tuple[str, str]:
    """(Name, Version) from a *.dist-info's METADATA header, else from its directory name."""
    fields: dict[str, str] = {}
    with (
        contextlib.suppress(OSError),
        open(f"{info}/METADATA", encoding="utf-8", errors="replace") as metadata,
    ):
        for line in metadata:
            if not line.strip():
                break  # end of the header block
            key, _colon, value = line.partition(":")
            if key in ("Name", "Version"):
                fields.setdefault(key, value.strip())
    name, _dash, version = os.path.basename(info)[: -len(".dist-info")].partition("-")
    return fields.get("Name", name), fields.get("Version", version or UNKNOWN)


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


# --------------------------------------------------------------------------
# File -> documents converters
# --------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def _plain_text(path: Path, data: bytes) -> list[Document]:
    return [{"text": _decode(data)}]


def _gunzip(data: bytes) -> str | None:
    try:
        return _decode(gzip.decompress(data))
    except (OSError, EOFError, zlib.error):
        return None


def _gzipped_text(path: Path, data: bytes) -> list[Document]:
    text = _gunzip(data)
    return [{"text": text}] if text else []


def _man_page(path: Path, data: bytes) -> list[Document]:
    source = _gunzip(data)
    # ".so man1/other.1" stubs only redirect to another page.
    if not source or re.match(r"(?:[.']\\\".*\n|\s*\n)*[.']so\s", source):
        return []
    return [{"text": roff_to_text(source)}]


def _module_name(path: Path) -> str:
    parts = path.with_suffix("").parts
    roots = [
        index for index, part in enumerate(parts) if part in ("site-packages", "dist-packages")
    ]
    parts = parts[roots[-1] + 1 :] if roots else parts[-1:]
    if len(parts) > 1 and parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _docstrings(path: Path, data: bytes) -> list[Document]:
    try:
        with warnings.catch_warnings():  # invalid escapes in old code warn
            warnings.simplefilter("ignore")
            tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    entries: list[str] = []

    def visit(node: ast.AST, qualname: str) -> None:
        docstring = ast.get_docstring(node)  # type: ignore[arg-type]
        if docstring and docstring.strip():
            entries.append(f"{qualname}:\n{docstring.strip()}")
        # Only definitions at module and class level are API; helpers nested
        # inside functions are not.
        if isinstance(node, (ast.Module, ast.ClassDef)):
            for child in node.body:
                if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(child, f"{qualname}.{child.name}")

    visit(tree, _module_name(path))
    return [{"text": "\n\n".join(entries)}] if entries else []


def _metadata_long_description(path: Path, data: bytes) -> list[Document]:
    text = _decode(data).replace("\r\n", "\n")
    _headers, _blank, body = text.partition("\n\n")
    return [{"text": body}] if body.strip() else []


def _pydoc_topics(path: Path, data: bytes) -> list[Document]:
    # Parsed rather than imported so the collector reads exactly the file
    # named in the manifest (and can be pointed at another copy).
    try:
        tree = ast.parse(data)
        topics = next(
            ast.literal_eval(node.value)
            for node in tree.body
            if isinstance(node, ast.Assign)
            and any(getattr(t, "id", None) == "topics" for t in node.targets)
        )
    except (SyntaxError, ValueError, StopIteration):
        return []
    return [
        {"text": text, "topic": topic} for topic, text in topics.items() if isinstance(text, str)
    ]


def _mo_catalogue(path: Path, data: bytes) -> list[Document]:
    try:
        strings = mo_translations(data)
    except ValueError:
        return []
    # Layout is <lang>/LC_MESSAGES/<domain>.mo
    return [{"text": "\n".join(strings), "lang": path.parent.parent.name}] if strings else []


def _localized_text(path: Path, data: bytes) -> list[Document]:
    """A translated catalogue (``<lang>/LC_MESSAGES/*.mo``) or man page
    (``<lang>/man*/*.gz``) as one document tagged with its locale directory.

    Each message of a catalogue becomes a paragraph of its own, so that a
    language check judges (and may drop) messages one by one."""
    if path.suffix == ".mo":
        try:
            strings = mo_translations(data)
        except ValueError:
            return []
        documents = [{"text": "\n\n".join(string.strip() for string in strings)}]
    else:
        documents = _man_page(path, data)
    return [{**document, "lang": path.parent.parent.name} for document in documents]


def mo_translations(data: bytes) -> list[str]:
    """Translated strings of a GNU gettext ``.mo`` catalogue, in table order.

    The header entry (empty msgid) is skipped and each plural form becomes a
    string of its own.  Raises ValueError when ``data`` is not a catalogue.
    """
    if len(data) < 20:
        raise ValueError("too short for a .mo catalogue")
    magic = int.from_bytes(data[:4], "little")
    order = {0x950412DE: "<", 0xDE120495: ">"}.get(magic)
    if order is None:
        raise ValueError("not a .mo catalogue (bad magic number)")
    _revision, count, originals, translations = struct.unpack_from(order + "4I", data, 4)

    def entry(table: int, index: int) -> bytes:
        try:
            length, offset = struct.unpack_from(order + "2I", data, table + 8 * index)
        except struct.error:
            raise ValueError("truncated .mo string table") from None
        if offset + length > len(data):
            raise ValueError("string points past the end of the .mo file")
        return data[offset : offset + length]

    pairs = [(entry(originals, index), entry(translations, index)) for index in range(count)]
    header = next((msgstr for msgid, msgstr in pairs if msgid == b""), b"")
    charset = re.search(rb"charset=([-\w.:]+)", header)
    encoding = charset.group(1).decode("ascii") if charset else "utf-8"
    try:
        b"".decode(encoding)
    except LookupError:
        encoding = "utf-8"
    return [
        form.decode(encoding, "replace")
        for msgid, msgstr in pairs
        if msgid != b""
        for form in msgstr.split(b"\0")
        if form
    ]


_SHEBANG = re.compile(
    rb"#![ \t]*(?:\S*/)?(?:env[ \t]+(?:-\S+[ \t]+)*)?(?:ba|da)?sh(?:[ \t]|\r?$)", re.MULTILINE
)


# Lines that only C++ has: templates, namespaces, classes, access specifiers.
_CPLUSPLUS = re.compile(
    rb"""^[ \t]*(?:
        template[ \t]*<
      | (?:inline[ \t]+)?namespace(?:[ \t]+[\w:]+)?[ \t]*\{
      | using[ \t]+namespace\b
      | class[ \t]+\w+[ \t]*(?:final[ \t]*)?[:{]
      | (?:public|private|protected)[ \t]*:
      | extern[ \t]+"C\+\+"
    )""",
    re.MULTILINE | re.VERBOSE,
)


def _c_header(path: Path, data: bytes) -> list[Document]:
    """A header written in C.  C++ headers, which share the .h suffix, give
    nothing; so do the few C headers with C++ sections (under __cplusplus)."""
    return [] if _CPLUSPLUS.search(data) else _plain_text(path, data)


def _is_shell_script(path: Path) -> bool:
    try:
        if os.path.getsize(path) > SHELL_SCRIPT_MAX_BYTES:
            return False
        with open(path, "rb") as handle:
            first_line = handle.read(256).split(b"\n", 1)[0]
    except OSError:
        return False
    return _SHEBANG.match(first_line) is not None


# --------------------------------------------------------------------------
# roff (man page) markup -> prose
# --------------------------------------------------------------------------

# Comments: \" to the end of the line, unless the backslash is itself escaped.
_ROFF_COMMENT = re.compile(r'(?<!\\)((?:\\\\)*)\\["#].*')
_ROFF_ARGUMENT = re.compile(r'"((?:[^"]|"")*)"?|((?:\\.|[^\s\\])+)')
_ROFF_ESCAPE = re.compile(
    r"""\\(?:
        [fFgkmMnVY*](?:\[[^\]]*\]|\(..|.)?      # font, colour, register, string
      | s[+-]?(?:\(\d\d|\[[^\]]*\]|'[^']*'|[1-3]?\d)  # point size
      | [ABbCDhHlLNoRSvwXxZ]'[^']*'             # escapes with a quoted argument
      | \(..                                     # two-letter glyph
      | \[[^\]]*\]                               # named glyph
      | .                                        # one-character escape
    )""",
    re.VERBOSE | re.DOTALL,
)
_ROFF_GLYPHS = {
    "em": "—", "en": "–", "hy": "-", "mi": "−", "bu": "•", "aq": "'", "dq": '"',
    "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "Fo": "«", "Fc": "»", "co": "©",
    "rg": "®", "tm": "™", "mu": "×", "di": "÷", "+-": "±", "<=": "≤", ">=": "≥",
    "!=": "≠", "->": "→", "<-": "←", "ti": "~", "ha": "^", "ga": "`", "aa": "´",
    "rs": "\\", "sl": "/", "ba": "|", "br": "│", "ul": "_", "de": "°", "dg": "†",
    "sc": "§", "ps": "¶", "Eu": "€", "Po": "£", "**": "∗", "pl": "+", "eq": "=",
}  # fmt: skip
_ROFF_STRINGS = {"R": "®", "Tm": "™", "lq": "“", "rq": "”", 'L"': "“", 'R"': "”", "C`": '"',
                 "C'": '"', "Aq": "'", "--": "—", "PI": "π"}  # fmt: skip
_ROFF_CHARS = {"-": "-", "e": "\\", "E": "\\", "\\": "\\", ".": ".", "'": "'", "`": "`", " ": " ",
               "~": " ", "0": " ", "t": "\t", "_": "_"}  # fmt: skip
_ROFF_SILENT = set('&|^,/%:{}!)$?"#')

# man(7) macros: headings, paragraph breaks, and those whose arguments are text
_MAN_HEADINGS = {"SH", "SS", "Sh", "Ss"}
_MAN_BREAKS = {"PP", "LP", "P", "sp", "Pp", "Lp", "Sp", "HP", "TP", "TQ", "bP", "Vb", "EX"}
_MAN_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}  # fonts alternate, no spaces
_MAN_WORDS = {"B", "I", "SM", "SB", "UR", "UE", "MT", "ME", "SY", "Dl", "D1"}
_MAN_BLOCKS = {"de", "de1", "dei", "am", "am1", "ami", "ig"}  # run until ".."
# mdoc(7): macros whose names may appear among another macro's arguments
_MDOC_CALLABLE = {
    "Ac", "Ad", "An", "Ao", "Ap", "Aq", "Ar", "At", "Bc", "Bo", "Bq", "Brc", "Bro", "Brq", "Bsx",
    "Bx", "Cd", "Cm", "Dc", "Do", "Dq", "Dv", "Ec", "Em", "En", "Eo", "Er", "Es", "Ev", "Fa", "Fc",
    "Fl", "Fn", "Fo", "Ft", "Fx", "Ic", "In", "Li", "Lk", "Ms", "Mt", "Nm", "No", "Ns", "Nx", "Oc",
    "Oo", "Op", "Ox", "Pa", "Pc", "Pf", "Po", "Pq", "Qc", "Ql", "Qo", "Qq", "Sc", "So", "Sq", "St",
    "Sx", "Sy", "Ta", "Tn", "Ux", "Va", "Vt", "Xc", "Xo", "Xr",
}  # fmt: skip
_MDOC_LAYOUT = {"Bl", "El", "Bd", "Ed", "Bk", "Ek", "Bf", "Ef", "Dd", "Dt", "Os", "Rs", "Re", "Sm",
                "Lb"}  # fmt: skip
_MDOC_ENCLOSE = {
    "Op": ("[", "]"), "Oo": ("[", ""), "Oc": ("", "]"), "Bq": ("[", "]"), "Bo": ("[", ""), "Bc": ("", "]"),
    "Pq": ("(", ")"), "Po": ("(", ""), "Pc": ("", ")"), "Aq": ("<", ">"), "Ao": ("<", ""), "Ac": ("", ">"),
    "Dq": ("“", "”"), "Do": ("“", ""), "Dc": ("", "”"), "Qq": ('"', '"'), "Qo": ('"', ""), "Qc": ("", '"'),
    "Sq": ("‘", "’"), "So": ("‘", ""), "Sc": ("", "’"), "Ql": ("‘", "’"),
}  # fmt: skip
_CLOSING_PUNCTUATION = {".", ",", ";", ":", ")", "]", "?", "!"}


# Letters of translated pages: \('e is é, \(:u is ü, \(/l is ł, \(*p is π.
_ROFF_LETTERS = {
    "/l": "ł", "/L": "Ł", "/o": "ø", "/O": "Ø", "ss": "ß", "ae": "æ", "AE": "Æ", "oe": "œ",
    "OE": "Œ", "-D": "Đ", "Sd": "ð", "TP": "Þ", "Tp": "þ", ".i": "ı", "ts": "ς", "Bq": "„",
    "bq": "‚", "at": "@", "ci": "○", "pd": "∂", "mc": "µ",
}  # fmt: skip
_ROFF_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", ":": "\u0308", "~": "\u0303",
                 ",": "\u0327", "o": "\u030a", "v": "\u030c"}  # fmt: skip
_ROFF_GREEK = dict(zip("abgdezyhiklmncoprstufxqw", "αβγδεζηθικλμνξοπρστυφχψω"))


def _roff_glyph(name: str) -> str:
    if name in _ROFF_GLYPHS:
        return _ROFF_GLYPHS[name]
    if name in _ROFF_LETTERS:
        return _ROFF_LETTERS[name]
    if len(name) == 2 and name[1].isalpha():
        mark, letter = name
        if mark == "*" and letter.lower() in _ROFF_GREEK:
            greek = _ROFF_GREEK[letter.lower()]
            return greek.upper() if letter.isupper() else greek
        composed = unicodedata.normalize("NFC", letter + _ROFF_ACCENTS.get(mark, "?"))
        if len(composed) == 1:
            return composed
    unicode = re.fullmatch(r"u([0-9A-Fa-f]{4,6})(?:_.*)?", name) or re.fullmatch(r"char(\d+)", name)
    if unicode:
        base = 16 if name.startswith("u") else 10
        with contextlib.suppress(ValueError, OverflowError):
            return chr(int(unicode.group(1), base))
    return ""


def _roff_escape(match: re.Match[str]) -> str:
    escape = match.group(0)[1:]
    kind, rest = escape[0], escape[1:]
    if kind == "*":
        return _ROFF_STRINGS.get(rest[1:3] if rest.startswith("(") else rest.strip("[]"), "")
    if kind == "(":
        return _roff_glyph(rest)
    if kind == "[":
        return _roff_glyph(rest[:-1])
    if kind == "C" and rest:
        return _roff_glyph(rest.strip("'"))
    if rest or kind in _ROFF_SILENT:
        return ""
    # groff prints an unknown escape's character; letters are control codes.
    return _ROFF_CHARS.get(kind, "" if kind.isalnum() else kind)


def _unescape(text: str) -> str:
    return _ROFF_ESCAPE.sub(_roff_escape, text)


def _roff_lines(source: str) -> Iterator[str]:
    """Source lines with comments removed and ``\\``-continued lines joined."""
    pending = ""
    for line in source.splitlines():
        line = pending + _ROFF_COMMENT.sub(r"\1", line)
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:  # an unescaped backslash at the end continues the line
            pending = line[:-1]
            continue
        pending = ""
        yield line


def roff_to_text(source: str) -> str:
    """Readable prose from man(7)/mdoc(7) source: requests are replaced by the
    text they carry, formatting requests and escapes disappear."""
    out: list[str] = []
    in_block = False  # inside a macro definition or .ig
    table: str | None = None  # "layout" while reading a tbl layout, then "rows"
    page_name: dict[str, str] = {}
    for line in _roff_lines(source):
        if in_block:
            in_block = line.strip() != ".."
            continue
        if table == "layout":
            table = "rows" if line.rstrip().endswith(".") else "layout"
            continue
        if not line.startswith((".", "'")):
            if table == "rows":
                if line.strip() in ("_", "="):
                    continue
                line = line.replace("T{", "").replace("T}", "").replace("\t", "  ")
            out.append(_unescape(line))
            continue
        name, *rest = line[1:].split(None, 1) or [""]
        arguments = [_unescape(argument) for argument in _roff_arguments(rest[0] if rest else "")]
        if name in _MAN_BLOCKS:
            in_block = True
        elif name in ("TS", "TE"):
            table = "layout" if name == "TS" else None
        else:
            out.extend(_request_text(name, arguments, page_name))
    text = "\n".join(line.rstrip() for line in out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _roff_arguments(rest: str) -> list[str]:
    """Raw arguments of a request line; quotes group words, "" is a quote."""
    arguments = []
    for match in _ROFF_ARGUMENT.finditer(rest):
        quoted, bare = match.groups()
        arguments.append(bare if bare is not None else quoted.replace('""', '"'))
    return arguments


def _request_text(name: str, arguments: list[str], page_name: dict[str, str]) -> list[str]:
    """Output lines for one request line."""
    if name in _MAN_HEADINGS:
        return ["", " ".join(arguments)]
    if name in _MAN_BREAKS:
        return [""]
    if name == "IP":  # .IP tag indent
        return ["", arguments[0]] if arguments else [""]
    if name == "It":  # mdoc list item
        return ["", *_mdoc_text(arguments, page_name)]
    if name in _MAN_ALTERNATING:
        return ["".join(arguments)]
    if name in _MAN_WORDS:
        return [" ".join(arguments)] if arguments else []
    if name in _MDOC_CALLABLE or name == "Nd":
        return _mdoc_text([name, *arguments], page_name)
    # .TH, .IX, .nf, .if, .ds, mdoc layout and every other request only
    # affect the layout or define things.
    return []


def _mdoc_text(tokens: list[str], page_name: dict[str, str]) -> list[str]:
    """One mdoc line's words, with callable macros applied (".Op Fl v" -> "[-v]")."""
    words: list[str] = []
    closers: list[str] = []
    glue = dash = False  # next word attaches to the previous / gets a "-"

    def emit(word: str) -> None:
        nonlocal glue
        if words and (glue or word in _CLOSING_PUNCTUATION):
            words[-1] += word
        else:
            words.append(word)
        glue = False

    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token in _MDOC_LAYOUT:
            return []
        if token in _MDOC_ENCLOSE:
            opening, closing = _MDOC_ENCLOSE[token]
            if opening:
                emit(opening)
                glue = True
                if closing:
                    closers.append(closing)
            elif words:
                words[-1] += closing
        elif token == "Fl":
            dash = True
        elif token == "Ns":
            glue = True
        elif token == "Nd":
            emit("—")
        elif token == "Xr" and index + 1 < len(tokens):
            emit(f"{tokens[index]}({tokens[index + 1]})")
            index += 2
        elif token == "Nm":
            following = tokens[index] if index < len(tokens) else None
            if following is None or following in _MDOC_CALLABLE:
                emit(page_name.get("Nm", ""))
            else:
                page_name.setdefault("Nm", following)
        elif token not in _MDOC_CALLABLE:
            emit(("-" if dash else "") + token)
            dash = False
    if dash:
        emit("-")
    # Line enclosures (.Op, .Dq, ...) close at the end of the line.
    for closing in reversed(closers):
        if words:
            words[-1] += closing
    return [" ".join(words)] if words else []


# --------------------------------------------------------------------------
# The collectors
# --------------------------------------------------------------------------


def _stdlib() -> str:
    return glob.escape(_python_paths()["stdlib"])


def _site_globs(*tails: str) -> list[str]:
    return [f"{glob.escape(site)}/{tail}" for site in _site_dirs() for tail in tails]


_HEADER_SUFFIXES = {".h", ".hh", ".hpp", ".hxx", ".cuh"}
_TEST_DIRS = frozenset({"__pycache__", "test", "tests", "idle_test"})


def _rustup_docs() -> str:
    home = os.environ.get("RUSTUP_HOME") or os.path.expanduser("~/.rustup")
    return f"{glob.escape(home)}/toolchains/*/share/doc/**/*.md"


# Finetuning demo "demo-languages": language -> (English name, Debian package
# of its man pages).  Each collector reads the language's own locale directory
# and its regional variants (<lang>_<REGION>: pt_BR and pt_PT for Portuguese,
# de_CH for German): the same written language, which the stop-word check does
# not tell apart; the documents' "lang" field keeps the directory.  Variants
# with a modifier (sr@latin, ca@valencia) are other scripts or dialects and
# are left out.
_NATURAL_LANGUAGES = {
    "fr": ("French", "manpages-fr"),
    "de": ("German", "manpages-de"),
    "it": ("Italian", "manpages-it"),
    "es": ("Spanish", "manpages-es"),
    "pt": ("Portuguese", "manpages-pt-br"),
    "nl": ("Dutch", "manpages-nl"),
    "pl": ("Polish", "manpages-pl"),
}


def _language_collector(language: str) -> Collector:
    english, manpages = _NATURAL_LANGUAGES[language]
    locales = [language, f"{language}_[A-Z][A-Z]"]
    return Collector(
        name=f"lang_{language}",
        description=f"{english} prose: translated gettext messages and man pages, "
        f"paragraphs checked to be {english} by chameleon_mix.langid",
        install_hint=f"apt-get install {manpages} (translated messages come with most "
        f"packages when /usr/share/locale is kept in dpkg's path filters)",
        globs=lambda: [
            *(f"/usr/share/locale/{locale}/LC_MESSAGES/*.mo" for locale in locales),
            *(f"/usr/share/man/{locale}/man*/*.gz" for locale in locales),
        ],
        to_documents=_localized_text,
        language=language,
    )


def _is_cmake(path: Path) -> bool:
    return path.suffix == ".cmake" or path.name == "CMakeLists.txt"


COLLECTORS: dict[str, Collector] = {
    c.name: c
    for c in (
        Collector(
            name="python_code",
            description="Python standard-library modules (.py), tests and site-packages excluded",
            install_hint="apt-get install libpython3-stdlib (a Python with its standard library)",
            globs=lambda: [f"{_stdlib()}/**/*.py"],
            prune=_TEST_DIRS | {"site-packages"},
            to_documents=_plain_text,
        ),
        Collector(
            name="c_headers",
            description="C/C++ headers from Python's include dir, torch and /usr/include",
            install_hint="apt-get install libc6-dev python3-dev",
            globs=lambda: [
                f"{glob.escape(_python_paths()['include'])}/**/*",
                *_site_globs("torch/include/**/*"),
                "/usr/include/**/*",
            ],
            accept=lambda path: path.suffix in _HEADER_SUFFIXES,
            to_documents=_plain_text,
        ),
        Collector(
            name="docstrings",
            description="module, class and function docstrings of installed Python packages",
            install_hint="pip install numpy (any installed package with docstrings will do)",
            globs=lambda: _site_globs("**/*.py"),
            prune=_TEST_DIRS,
            to_documents=_docstrings,
        ),
        Collector(
            name="package_readmes",
            description="long descriptions (README) from installed packages' METADATA",
            install_hint="pip install requests (any installed package with a long description will do)",
            globs=lambda: _site_globs("*.dist-info/METADATA"),
            to_documents=_metadata_long_description,
        ),
        Collector(
            name="python_docs",
            description="Python reference documentation topics from pydoc_data",
            install_hint="apt-get install libpython3-stdlib (provides pydoc_data/topics.py)",
            globs=lambda: [f"{_stdlib()}/pydoc_data/topics.py"],
            to_documents=_pydoc_topics,
        ),
        Collector(
            name="licenses",
            description="licence texts from common-licenses, dist-info and Debian copyright files",
            install_hint="apt-get install base-files",
            globs=lambda: [
                "/usr/share/common-licenses/*",
                *_site_globs(
                    "*.dist-info/LICEN[CS]E*", "*.dist-info/COPYING*", "*.dist-info/licenses/**/*"
                ),
                "/usr/share/doc/*/copyright",
            ],
            to_documents=_plain_text,
        ),
        Collector(
            name="man_pages",
            description="English manual pages, roff markup stripped",
            install_hint="apt-get install man-db manpages (and keep /usr/share/man in dpkg's path filters)",
            globs=lambda: ["/usr/share/man/man[1-8]/*.gz"],
            to_documents=_man_page,
        ),
        Collector(
            name="changelogs",
            description="Debian package changelogs",
            install_hint="apt-get install --reinstall <packages> with /usr/share/doc kept in dpkg's path filters",
            globs=lambda: ["/usr/share/doc/*/changelog.Debian.gz"],
            to_documents=_gzipped_text,
        ),
        Collector(
            name="perl_modules",
            description="Perl modules (.pm) with their POD",
            install_hint="apt-get install perl",
            globs=lambda: [
                "/usr/share/perl/**/*.pm",
                "/usr/share/perl5/**/*.pm",
                "/usr/lib/*-linux-gnu/perl*/**/*.pm",
            ],
            to_documents=_plain_text,
        ),
        Collector(
            name="translations",
            description="translated UI strings from gettext .mo catalogues, one document per catalogue",
            install_hint="apt-get install --reinstall <packages> with /usr/share/locale kept in dpkg's path filters",
            globs=lambda: ["/usr/share/locale/*/LC_MESSAGES/*.mo"],
            to_documents=_mo_catalogue,
        ),
        Collector(
            name="javascript",
            description="JavaScript sources of global node modules (.min.js excluded)",
            install_hint="apt-get install npm",
            globs=lambda: ["/usr/lib/node_modules/**/*.js"],
            accept=lambda path: not path.name.endswith(".min.js"),
            to_documents=_plain_text,
        ),
        Collector(
            name="shell_scripts",
            description="sh/bash/dash scripts from /usr/bin, /usr/sbin and /etc",
            install_hint="apt-get install debianutils (any Debian system has shell scripts in /usr/bin and /etc)",
            globs=lambda: ["/usr/bin/*", "/usr/sbin/*", "/etc/**/*"],
            accept=_is_shell_script,
            to_documents=_plain_text,
        ),
        Collector(
            name="markdown_docs",
            description="Markdown documents shipped with node modules and Rust toolchains",
            install_hint="apt-get install npm (or install a Rust toolchain with rustup)",
            globs=lambda: ["/usr/lib/node_modules/**/*.md", _rustup_docs()],
            to_documents=_plain_text,
        ),
        *(_language_collector(language) for language in _NATURAL_LANGUAGES),
        Collector(
            name="code_c",
            description="C headers from /usr/include; C++ headers and headers with C++ sections excluded",
            install_hint="apt-get install libc6-dev",
            globs=lambda: ["/usr/include/**/*.h"],
            prune=frozenset({"c++"}),
            to_documents=_c_header,
        ),
        Collector(
            name="code_cpp",
            description="C++ standard library headers (/usr/include/c++, extensionless files included)",
            install_hint="apt-get install libstdc++-12-dev (or any g++)",
            globs=lambda: ["/usr/include/c++/**/*", "/usr/include/*/c++/**/*"],
            to_documents=_plain_text,
        ),
        Collector(
            name="code_cmake",
            description="CMake modules (*.cmake) and CMakeLists.txt of CMake and installed libraries",
            install_hint="apt-get install cmake",
            globs=lambda: [
                "/usr/share/cmake*/**/*",
                "/usr/lib/cmake/**/*",
                "/usr/lib/*/cmake/**/*",
                "/usr/lib/*/lib/cmake/**/*",
                "/usr/local/lib/cmake/**/*",
            ],
            accept=_is_cmake,
            to_documents=_plain_text,
        ),
    )
}

# Finetuning demo "demo-code": one collector per programming language, named
# code_<language>.  Where an existing collector already holds exactly one
# language, it serves again under that name.
COLLECTORS.update(
    (alias, replace(COLLECTORS[original], name=alias))
    for original, alias in (
        ("python_code", "code_python"),
        ("perl_modules", "code_perl"),
        ("javascript", "code_javascript"),
        ("shell_scripts", "code_shell"),
    )
)
