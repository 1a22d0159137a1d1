"""Read documents from local files (jsonl, jsonl.zst, parquet) or Hugging Face datasets.

A *source* is a dict, as in the config:

    {"files": "data/*.jsonl.zst"}                  # glob, format from the suffix
    {"files": [...], "format": "parquet"}          # explicit list and format
    {"hf": "org/name", "config": None, "split": "train"}   # hub, streamed
    {"hf_disk": "/path/saved/with/save_to_disk", "split": "train"}

plus ``text_field`` (default ``"text"``).

Two kinds of bad input are told apart:

* a broken *record* (malformed JSON, bytes that are not UTF-8, a missing text or domain field)
  is skipped and counted, with the file and line of the first one; past ``max_bad_fraction``
  of all records the read is refused, so a mixture is never computed from a mostly broken file;
* a broken *file* (a ``.zst`` that ends inside a frame or holds corrupt data, a parquet file
  pyarrow cannot read) is refused at once with its path and how far it was read: how many
  records it lost is unknown, so it cannot be counted, and a truncated download is fixed by
  downloading it again (or by leaving the file out of the source).
"""

from __future__ import annotations

import glob
import itertools
import operator
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

FORMATS = ("jsonl", "jsonl.zst", "parquet")
# Compressed bytes per read: a few large reads keep the per-call overhead out of the hot loop,
# and a zstd chunk decompresses to a few tens of MB at most.
READ_SIZE = 1 << 22
BAD_KINDS = ("bad_json", "bad_bytes", "missing_text", "missing_field")


class SourceError(ValueError):
    """A source that cannot be read as configured; the message says which and what to do."""


@dataclass
class Document:
    text: str
    source: str  # file path or dataset name
    record: int  # line or row number within that source
    fields: dict = field(default_factory=dict)  # the full record, for domain-field lookups


@dataclass
class ReadStats:
    records: int = 0
    bad_json: int = 0
    bad_bytes: int = 0
    missing_text: int = 0
    missing_field: int = 0
    # path -> {"records": records read, "bad": unusable records, "first": where and why}, for
    # the files that had unusable records only
    files: dict = field(default_factory=dict)

    @property
    def bad(self) -> int:
        return self.bad_json + self.bad_bytes + self.missing_text + self.missing_field

    def skip(self, kind: str, path: str, why: str) -> None:
        """Count one unusable record of ``path``; the first one per file is kept as an example."""
        setattr(self, kind, getattr(self, kind) + 1)
        self.files.setdefault(path, {"records": 0, "bad": 0, "first": why})["bad"] += 1

    def add(self, other: ReadStats) -> None:
        """Add the counts of a read of other files (a partition part)."""
        for kind in ("records", *BAD_KINDS):
            setattr(self, kind, getattr(self, kind) + getattr(other, kind))
        self.files.update(other.files)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ReadStats:
        return cls(**d)

    def check(self, what: str, max_bad_fraction: float) -> None:
        if self.records and self.bad / self.records > max_bad_fraction:
            worst = sorted(self.files.items(), key=lambda item: (-item[1]["bad"], item[0]))[:3]
            culprits = "; ".join(
                f"{path} ({e['bad']} of its {e['records']} records; first: {e['first']})"
                for path, e in worst
            )
            raise SourceError(
                f"{what}: {self.bad} of {self.records} records are unusable "
                f"(malformed JSON {self.bad_json}, undecodable bytes {self.bad_bytes}, "
                f"missing text {self.missing_text}, missing domain field {self.missing_field}), "
                f"more than max_bad_fraction={max_bad_fraction}; most in {culprits}. "
                "Fix or remove those files, or raise the limit"
            )


def describe(source: dict) -> str:
    for key in ("files", "hf", "hf_disk"):
        if key in source:
            return f"{key}={source[key]!r}"
    return repr(source)


def field_getter(dotted: str) -> Callable[[dict], object]:
    """A function giving a record's field at the dotted path ``dotted``: with ``"meta.set"``,
    ``{"meta": {"set": "x"}}`` gives ``"x"``; ``KeyError`` when absent."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return operator.itemgetter(dotted)  # the common case, without the loop

    def get(record: dict):
        value = record
        for part in parts:
            if not isinstance(value, dict) or part not in value:
                raise KeyError(dotted)
            value = value[part]
        return value

    return get


def resolve_files(source: dict) -> list[Path]:
    patterns = source["files"]
    patterns = [patterns] if isinstance(patterns, str) else list(patterns)
    files = sorted(
        {Path(p) for pattern in patterns for p in glob.glob(str(pattern), recursive=True)}
    )
    if not files:
        raise SourceError(
            f"no file matches {patterns}; check the path (relative paths are taken from the "
            "directory snakemake runs in) or download the data first"
        )
    return files


def source_files(source: dict) -> list[Path]:
    """Every local file a source reads, sorted: its files, or every file of a saved
    Hugging Face dataset's directory; none for a hub dataset (streamed, versioned by the
    hub). The workflow declares them as inputs, so a changed, added or removed file reruns
    the jobs that read it."""
    if "files" in source:
        return resolve_files(source)
    if "hf_disk" in source:
        root = Path(source["hf_disk"])
        if not root.is_dir():
            raise SourceError(
                f"hf_disk: {root} is not a directory; save the dataset there with "
                "Dataset.save_to_disk() first"
            )
        return sorted(p for p in root.rglob("*") if p.is_file())
    return []


def file_format(path: Path, declared: str | None) -> str:
    if declared:
        return declared
    name = path.name.lower()
    if name.endswith((".jsonl.zst", ".json.zst", ".zst")):
        return "jsonl.zst"
    if name.endswith((".jsonl", ".json", ".ndjson")):
        return "jsonl"
    if name.endswith(".parquet"):
        return "parquet"
    raise SourceError(f"{path}: cannot tell the format from the name; set format: one of {FORMATS}")


def _broken_file(path: Path, problem: str, progress: str) -> SourceError:
    return SourceError(
        f"{path}: {problem} ({progress}); the file is truncated or corrupt: download it "
        "again, or leave it out of the source's files. Nothing was written"
    )


def _plain_chunks(path: Path, progress) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(READ_SIZE):
            if progress is not None:
                progress.update(len(chunk))
            yield chunk


def _zstd_chunks(path: Path, progress) -> Iterator[bytes]:
    """Decompressed chunks of a file of one or more zstd frames; an error when the file ends
    inside a frame (a truncated file) or holds corrupt data, which a plain ``stream_reader``
    would silently read as a shorter file."""
    import zstandard

    context = zstandard.ZstdDecompressor()
    frame, in_frame = context.decompressobj(), False
    consumed = produced = 0
    with open(path, "rb") as f:
        while chunk := f.read(READ_SIZE):
            consumed += len(chunk)
            if progress is not None:
                progress.update(len(chunk))
            while chunk:
                try:
                    out = frame.decompress(chunk)
                except zstandard.ZstdError as err:
                    raise _broken_file(
                        path,
                        f"corrupt zstd data ({err})",
                        f"within compressed bytes {consumed - len(chunk)}-{consumed} of "
                        f"{path.stat().st_size}, after {produced} decompressed bytes",
                    ) from None
                produced += len(out)
                if out:
                    yield out
                if frame.eof:  # the next frame, if any, starts in what this one left over
                    chunk, frame, in_frame = frame.unused_data, context.decompressobj(), False
                else:
                    chunk, in_frame = b"", True
    if consumed == 0:
        raise _broken_file(
            path, "the file is empty: no zstd frame (zstd itself refuses it)", "0 bytes"
        )
    if in_frame:
        raise _broken_file(
            path,
            "the zstd stream ends inside a frame",
            f"read all {consumed} compressed bytes, {produced} bytes decompressed so far",
        )


UTF8_BOM = b"\xef\xbb\xbf"  # some Windows tools start UTF-8 text with it; JSON forbids it


def _without_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    first = next(chunks, b"")
    yield first.removeprefix(UTF8_BOM)
    yield from chunks


def _json_lines(path: Path, compressed: bool, stats: ReadStats, progress) -> Iterator[tuple]:
    name = str(path)
    chunks = _zstd_chunks(path, progress) if compressed else _plain_chunks(path, progress)
    chunks = _without_bom(chunks)
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    number = records = 0
    rest = b""
    try:
        # Lines are parsed in place (memoryview slices of the decompressed chunk, no copies);
        # a final newline ends an unterminated last line.
        for chunk in itertools.chain(chunks, (b"\n",)):
            buffer = rest + chunk if rest else chunk
            view, find, start = memoryview(buffer), buffer.find, 0
            while (end := find(b"\n", start)) >= 0:
                line, start = view[start:end], end + 1
                number += 1
                try:
                    record = loads(line)
                except decode_error:
                    records += _skip_line(bytes(line), name, number, stats)
                    continue
                records += 1
                if type(record) is not dict:
                    stats.skip("bad_json", name, f"line {number}: not a JSON object")
                    continue
                yield name, number, record
            rest = buffer[start:]
    finally:
        stats.records += records
        if name in stats.files:
            stats.files[name]["records"] = records


def _skip_line(line: bytes, name: str, number: int, stats: ReadStats) -> bool:
    """Count a line orjson refused as malformed JSON or as bytes that are not UTF-8; False
    for a blank line, which is no record."""
    if not line.strip():
        return False
    try:
        line.decode("utf-8")
    except UnicodeDecodeError as err:
        why = f"not UTF-8 (byte {line[err.start]:#04x} at offset {err.start} of the line)"
        stats.skip("bad_bytes", name, f"line {number}: {why}")
    else:
        stats.skip("bad_json", name, f"line {number}: malformed JSON")
    return True


def _parquet_rows(
    path: Path, columns: list[str] | None, stats: ReadStats, progress
) -> Iterator[tuple]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    name, row = str(path), 0
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
        present = [c for c in columns if c in names] if columns is not None else None
        for batch in parquet.iter_batches(batch_size=4096, columns=present):
            for record in batch.to_pylist():
                row += 1
                yield name, row, record
    except (pa.ArrowException, OSError) as err:
        raise _broken_file(
            path, f"not a readable parquet file ({err})", f"{row} rows read"
        ) from None
    finally:
        stats.records += row
        if name in stats.files:
            stats.files[name]["records"] = row
    if progress is not None:
        progress.update(path.stat().st_size)


def _hf_rows(source: dict, stats: ReadStats) -> Iterator[tuple]:
    try:
        import datasets

        if "hf_disk" in source:
            ds = datasets.load_from_disk(source["hf_disk"])
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[source.get("split", "train")]
        else:
            ds = datasets.load_dataset(
                source["hf"],
                source.get("config"),
                split=source.get("split", "train"),
                streaming=True,
            )
    except Exception as err:  # the hub client raises many types when offline
        where = source.get("hf_disk") or source.get("hf")
        raise SourceError(
            f"cannot load Hugging Face dataset {where!r} ({type(err).__name__}: {err}). "
            "Without access to the hub, download it on a connected machine, save it with "
            "Dataset.save_to_disk(), and point `hf_disk:` at that directory, or export it to "
            "jsonl/parquet and use `files:`"
        ) from err
    name = source.get("hf") or str(source["hf_disk"])
    for row, record in enumerate(ds, start=1):
        stats.records += 1
        yield name, row, record


def source_bytes(source: dict) -> int | None:
    """Bytes on disk of a files source (for a progress bar); None for a hub dataset."""
    return sum(p.stat().st_size for p in resolve_files(source)) if "files" in source else None


def iter_records(
    source: dict, stats: ReadStats, fields: tuple[str, ...] = (), progress=None
) -> Iterator[tuple[str, int, dict]]:
    """Yield ``(file or dataset name, line or row number, record)`` in a fixed order.

    ``fields`` (dotted paths) are the fields the caller needs: parquet files read only their
    top-level columns (all columns when none are named). ``progress`` (a tqdm bar) advances by the bytes read.
    """
    if "files" in source:
        columns = sorted({f.split(".", 1)[0] for f in fields}) if fields else None
        for path in resolve_files(source):
            fmt = file_format(path, source.get("format"))
            if fmt == "parquet":
                yield from _parquet_rows(path, columns, stats, progress)
            else:
                yield from _json_lines(path, fmt == "jsonl.zst", stats, progress)
    elif "hf" in source or "hf_disk" in source:
        yield from _hf_rows(source, stats)
    else:
        raise SourceError(f"a source needs one of files, hf, hf_disk; got {sorted(source)}")


def text_getter(text_field: str) -> Callable[[dict], str | None]:
    """A function giving a record's text, or None when it has none (absent or not a string)."""
    get = field_getter(text_field)

    def text_of(record: dict) -> str | None:
        try:
            text = get(record)
        except KeyError:
            return None
        return text if isinstance(text, str) else None

    return text_of


def iter_documents(source: dict, stats: ReadStats | None = None) -> Iterator[Document]:
    """Yield the documents of ``source`` in a fixed order; broken records go to ``stats``."""
    stats = stats if stats is not None else ReadStats()
    text_field = source.get("text_field", "text")
    text_of = text_getter(text_field)
    for name, number, record in iter_records(source, stats, (text_field,)):
        text = text_of(record)
        if text is None:
            stats.skip("missing_text", name, f"record {number}: no string {text_field!r}")
            continue
        yield Document(text=text, source=name, record=number, fields=record)
