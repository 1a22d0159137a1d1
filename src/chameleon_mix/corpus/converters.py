"""File -> documents converters: one file's bytes to the documents it holds.

Each takes ``(path, data)`` and returns a list of documents; none raises for a malformed file,
it gives nothing instead.
"""

from __future__ import annotations

import ast
import gzip
import os
import re
import struct
import warnings
import zlib
from pathlib import Path

from .model import Document
from .roff import roff_to_text

__all__ = [
    "c_header",
    "docstrings",
    "gzipped_text",
    "is_shell_script",
    "localized_text",
    "man_page",
    "metadata_long_description",
    "mo_catalogue",
    "mo_translations",
    "plain_text",
    "pydoc_topics",
]

SHELL_SCRIPT_MAX_BYTES = 200_000


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def plain_text(path: Path, data: bytes) -> list[Document]:
    return [{"text": _decode(data)}]


def _gunzip(data: bytes) -> str | None:
    try:
        return _decode(gzip.decompress(data))
    except (OSError, EOFError, zlib.error):
        return None


def gzipped_text(path: Path, data: bytes) -> list[Document]:
    text = _gunzip(data)
    return [{"text": text}] if text else []


def man_page(path: Path, data: bytes) -> list[Document]:
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


def docstrings(path: Path, data: bytes) -> list[Document]:
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


def metadata_long_description(path: Path, data: bytes) -> list[Document]:
    text = _decode(data).replace("\r\n", "\n")
    _headers, _blank, body = text.partition("\n\n")
    return [{"text": body}] if body.strip() else []


def pydoc_topics(path: Path, data: bytes) -> list[Document]:
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


def mo_catalogue(path: Path, data: bytes) -> list[Document]:
    try:
        strings = mo_translations(data)
    except ValueError:
        return []
    # Layout is <lang>/LC_MESSAGES/<domain>.mo
    return [{"text": "\n".join(strings), "lang": path.parent.parent.name}] if strings else []


def localized_text(path: Path, data: bytes) -> list[Document]:
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
        documents = man_page(path, data)
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


def c_header(path: Path, data: bytes) -> list[Document]:
    """A header written in C.  C++ headers, which share the .h suffix, give
    nothing; so do the few C headers with C++ sections (under __cplusplus)."""
    return [] if _CPLUSPLUS.search(data) else plain_text(path, data)


def is_shell_script(path: Path) -> bool:
    try:
        if os.path.getsize(path) > SHELL_SCRIPT_MAX_BYTES:
            return False
        with open(path, "rb") as handle:
            first_line = handle.read(256).split(b"\n", 1)[0]
    except OSError:
        return False
    return _SHEBANG.match(first_line) is not None
