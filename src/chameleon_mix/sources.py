"""Read documents from local files (jsonl, jsonl.zst, parquet) or Hugging Face datasets.

A *source* is a dict, as in the config:

    {"files": "data/*.jsonl.zst"}                  # glob, format from the suffix
    {"files": [...], "format": "parquet"}          # explicit list and format
    {"hf": "org/name", "config": None, "split": "train"}   # hub, streamed
    {"hf_disk": "/path/saved/with/save_to_disk", "split": "train"}

plus ``text_field`` (default ``"text"``). Broken records (malformed JSON, undecodable bytes, a
missing text or domain field) are skipped and counted; past ``max_bad_fraction`` of all records
the read is refused, so a mixture is never computed from a mostly broken file.
"""

from __future__ import annotations

import glob
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("jsonl", "jsonl.zst", "parquet")


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

    @property
    def bad(self) -> int:
        return self.bad_json + self.bad_bytes + self.missing_text + self.missing_field

    def check(self, what: str, max_bad_fraction: float) -> None:
        if self.records and self.bad / self.records > max_bad_fraction:
            raise SourceError(
                f"{what}: {self.bad} of {self.records} records are unusable "
                f"(malformed JSON {self.bad_json}, undecodable bytes {self.bad_bytes}, "
                f"missing text {self.missing_text}, missing domain field {self.missing_field}), "
                f"more than max_bad_fraction={max_bad_fraction}; fix the files or raise the limit"
            )


def describe(source: dict) -> str:
    for key in ("files", "hf", "hf_disk"):
        if key in source:
            return f"{key}={source[key]!r}"
    return repr(source)


def get_field(record: dict, dotted: str):
    """``get_field({"meta": {"set": "x"}}, "meta.set") == "x"``; ``KeyError`` when absent."""
    value = record
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            raise KeyError(dotted)
        value = value[part]
    return value


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


def _json_lines(path: Path, compressed: bool, stats: ReadStats) -> Iterator[tuple[int, dict]]:
    raw = open(path, "rb")
    if compressed:
        import zstandard

        stream = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        lines = io.BufferedReader(stream, buffer_size=1 << 20)
    else:
        lines = raw
    with raw, lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            stats.records += 1
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError:
                stats.bad_bytes += 1
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError:
                stats.bad_json += 1
                continue
            if not isinstance(record, dict):
                stats.bad_json += 1
                continue
            yield number, record


def _parquet_rows(path: Path, stats: ReadStats) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    row = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            row += 1
            stats.records += 1
            yield row, record


def _hf_rows(source: dict, stats: ReadStats) -> Iterator[tuple[int, dict]]:
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
    for row, record in enumerate(ds, start=1):
        stats.records += 1
        yield row, record


def iter_documents(source: dict, stats: ReadStats | None = None) -> Iterator[Document]:
    """Yield the documents of ``source`` in a fixed order; broken records go to ``stats``."""
    stats = stats if stats is not None else ReadStats()
    text_field = source.get("text_field", "text")
    if "files" in source:
        streams = []
        for path in resolve_files(source):
            fmt = file_format(path, source.get("format"))
            rows = (
                _parquet_rows(path, stats)
                if fmt == "parquet"
                else _json_lines(path, fmt == "jsonl.zst", stats)
            )
            streams.append((str(path), rows))
    elif "hf" in source or "hf_disk" in source:
        streams = [(source.get("hf") or str(source["hf_disk"]), _hf_rows(source, stats))]
    else:
        raise SourceError(f"a source needs one of files, hf, hf_disk; got {sorted(source)}")
    for name, rows in streams:
        for number, record in rows:
            try:
                text = get_field(record, text_field)
            except KeyError:
                text = None
            if not isinstance(text, str):
                stats.missing_text += 1
                continue
            yield Document(text=text, source=name, record=number, fields=record)
