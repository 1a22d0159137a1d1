"""Deterministic per-domain train/val/test shards.

Each document gets a key: a seeded hash of its text. A domain's sample is the ``n`` documents
with the smallest keys (a bottom-k sample), found in one pass with ``O(n)`` memory, whatever the
order or size of the source. Consequences the tests rely on:

* same seed and sources => the same documents in the same order => byte-identical parquet;
* identical texts share a key, so exact duplicates are dropped for free;
* the splits are consecutive key ranges (test, val, train), hence disjoint;
* a mixed source is partitioned in a single pass (one bottom-k per domain value), and sampling
  a domain from its partition picks exactly what sampling the raw source would have picked.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .io import atomic_path, write_json
from .sources import Document, ReadStats, SourceError, describe, get_field, iter_documents

SPLITS = ("train", "val", "test")
# Held-out splits come first in key order so that growing `train` never moves a held-out doc.
KEY_ORDER = ("test", "val", "train")
SCHEMA = pa.schema(
    [("text", pa.string()), ("source", pa.string()), ("record", pa.int64()), ("key", pa.uint64())]
)


def document_key(text: str, seed: int) -> int:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8, salt=seed.to_bytes(16, "little"))
    return int.from_bytes(digest.digest(), "little")


class BottomK:
    """The ``n`` distinct documents with the smallest keys seen so far."""

    def __init__(self, n: int):
        self.n = n
        self.heap: list[tuple[int, str, str, int]] = []  # (-key, text, source, record)
        self.keys: set[int] = set()
        self.duplicates = 0

    def offer(self, key: int, doc: Document) -> None:
        if key in self.keys:
            self.duplicates += 1
            return
        if len(self.heap) < self.n:
            heapq.heappush(self.heap, (-key, doc.text, doc.source, doc.record))
            self.keys.add(key)
        elif key < -self.heap[0][0]:
            evicted = heapq.heapreplace(self.heap, (-key, doc.text, doc.source, doc.record))
            self.keys.discard(-evicted[0])
            self.keys.add(key)

    def sorted_rows(self) -> list[tuple[int, str, str, int]]:
        """Rows ``(key, text, source, record)`` in increasing key order."""
        return sorted((-neg, text, src, rec) for neg, text, src, rec in self.heap)


def write_rows(path: Path, rows: list[tuple[int, str, str, int]]) -> None:
    table = pa.table(
        {
            "text": [r[1] for r in rows],
            "source": [r[2] for r in rows],
            "record": [r[3] for r in rows],
            "key": [r[0] for r in rows],
        },
        schema=SCHEMA,
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def _eligible(docs: Iterable[Document], min_chars: int) -> Iterable[Document]:
    return (d for d in docs if len(d.text.strip()) >= min_chars)


@dataclass
class ShardStats:
    domain: str
    seed: int
    source: str
    documents: dict  # split -> count
    bytes: dict  # split -> utf-8 bytes
    mean_chars: dict  # split -> mean characters per document
    records_read: int
    duplicates_dropped: int
    too_short: int
    unusable_records: int


def sample_domain(
    domain: str,
    source: dict,
    splits: dict[str, int],
    seed: int,
    out_dir: str | Path,
    min_chars: int = 1,
    max_bad_fraction: float = 0.01,
    partition_dir: str | Path | None = None,
) -> ShardStats:
    """Write ``out_dir/{train,val,test}.parquet`` and ``out_dir/stats.json`` for one domain.

    ``source`` may be ``{"partition": value}``: the domain's part of ``partition_dir``, written
    by :func:`partition_source`.
    """
    out_dir = Path(out_dir)
    if "partition" in source:
        source = {"files": str(partition_file(partition_dir, source["partition"]))}
    need = sum(splits[s] for s in SPLITS)
    read = ReadStats()
    sample = BottomK(need)
    candidates = 0
    for doc in _eligible(iter_documents(source, read), min_chars):
        candidates += 1
        sample.offer(document_key(doc.text, seed), doc)
    read.check(f"domain {domain!r} ({describe(source)})", max_bad_fraction)
    rows = sample.sorted_rows()
    if len(rows) < need:
        raise SourceError(
            f"domain {domain!r} has {len(rows)} distinct documents of at least {min_chars} "
            f"characters in {describe(source)}, fewer than the {need} that the splits ask for "
            f"({', '.join(f'{s}={splits[s]}' for s in SPLITS)}); lower the split sizes or add data"
        )
    parts, start = {}, 0
    for split in KEY_ORDER:
        parts[split] = rows[start : start + splits[split]]
        start += splits[split]
    for split in SPLITS:
        write_rows(out_dir / f"{split}.parquet", parts[split])
    nbytes = {s: sum(len(r[1].encode("utf-8")) for r in parts[s]) for s in SPLITS}
    stats = ShardStats(
        domain=domain,
        seed=seed,
        source=describe(source),
        documents={s: len(parts[s]) for s in SPLITS},
        bytes=nbytes,
        mean_chars={s: sum(len(r[1]) for r in parts[s]) / max(len(parts[s]), 1) for s in SPLITS},
        records_read=read.records,
        duplicates_dropped=sample.duplicates,
        too_short=read.records - read.bad - candidates,
        unusable_records=read.bad,
    )
    write_json(out_dir / "stats.json", asdict(stats))
    return stats


def partition_source(
    source: dict,
    domain_field: str,
    per_value: int,
    seed: int,
    out_dir: str | Path,
    min_chars: int = 1,
    max_bad_fraction: float = 0.01,
) -> dict[str, dict]:
    """One pass over a mixed source: the ``per_value`` smallest-key documents of every value of
    ``domain_field``, written as ``out_dir/part-NNNN.parquet`` with ``out_dir/index.json``.

    The partition does not depend on which domains are configured, so adding a domain that
    lives in the same source reuses it.
    """
    out_dir = Path(out_dir)
    read = ReadStats()
    samples: dict[str, BottomK] = {}
    for doc in _eligible(iter_documents(source, read), min_chars):
        try:
            value = get_field(doc.fields, domain_field)
        except KeyError:
            read.missing_field += 1
            continue
        value = str(value)
        if value not in samples:
            samples[value] = BottomK(per_value)
        samples[value].offer(document_key(doc.text, seed), doc)
    what = f"{describe(source)} split by {domain_field!r}"
    if not samples:
        raise SourceError(
            f"{what}: no record has the field {domain_field!r} ({read.records} records read); "
            "check domain_field (a dotted path such as meta.pile_set_name)"
        )
    read.check(what, max_bad_fraction)
    index = {}
    with atomic_path(out_dir, directory=True) as tmp:
        for i, value in enumerate(sorted(samples)):
            rows = samples[value].sorted_rows()
            write_rows(tmp / f"part-{i:04d}.parquet", rows)
            index[value] = {"file": f"part-{i:04d}.parquet", "documents": len(rows)}
        write_json(tmp / "index.json", {"domain_field": domain_field, "values": index})
    return index


def partition_file(partition_dir: str | Path, value: str) -> Path:
    """The partition file holding ``value``; the error lists the values that exist."""
    partition_dir = Path(partition_dir)
    index = json.loads((partition_dir / "index.json").read_text())
    values = index["values"]
    if value not in values:
        raise SourceError(
            f"no record has {index['domain_field']} == {value!r}; the source holds: "
            + ", ".join(f"{v!r} ({values[v]['documents']})" for v in sorted(values))
        )
    return partition_dir / values[value]["file"]
