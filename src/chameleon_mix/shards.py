"""Deterministic per-domain train/val/test shards.

Each document gets a key: a seeded hash of its text. A domain's sample is the ``n`` documents
with the smallest keys (a bottom-k sample), found in one pass with ``O(n)`` memory, whatever the
order or size of the source. Consequences the tests rely on:

* same seed and sources => the same documents in the same order => byte-identical parquet;
* identical texts share a key, so exact duplicates are dropped for free (the copy kept is the
  first in (file, record) order, so not even the ``source`` column depends on reading order);
* the splits are consecutive key ranges (test, val, train), hence disjoint;
* the bottom-k of a union is the bottom-k of the parts' bottom-k, so a mixed source is
  partitioned by scatter-gather: one job per group of files keeps a bottom-k per domain value
  (:func:`partition_part`), one merge per domain takes the bottom-k of those
  (:func:`sample_partition`), and the result is exactly what a single pass over the whole
  source, or sampling the domain's records directly, would have picked.
"""

from __future__ import annotations

import glob
import heapq
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import xxhash

from .io import atomic_path, write_json
from .sources import (
    ReadStats,
    SourceError,
    describe,
    field_getter,
    iter_documents,
    iter_records,
    resolve_files,
    source_bytes,
    text_getter,
)

SPLITS = ("train", "val", "test")
# Held-out splits come first in key order so that growing `train` never moves a held-out doc.
KEY_ORDER = ("test", "val", "train")
SCHEMA = pa.schema(
    [
        ("text", pa.string()),
        ("source", pa.string()),
        ("record", pa.int64()),
        ("key", pa.uint64()),
        ("copies", pa.int64()),  # how often the text occurs in the domain's source
    ]
)
# A partition part: every domain value's bottom-k, one row group per value.
PART_SCHEMA = pa.schema(
    [
        ("value", pa.string()),
        ("key", pa.uint64()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("record", pa.int64()),
        ("copies", pa.int64()),  # how often the text occurs in the part's files
    ]
)


def keyed_function(seed: int) -> Callable[[str], tuple[int, int]]:
    """A text's ``(sampling key, UTF-8 bytes)``: the key is the seeded 64-bit XXH3 hash of its
    UTF-8 bytes (a uniform hash; at over 10 GB/s it costs nothing next to parsing the JSON),
    and the bytes are counted from the same encoding, done once."""
    xxh3 = xxhash.xxh3_64_intdigest

    def keyed(text: str) -> tuple[int, int]:
        data = text.encode("utf-8")
        return xxh3(data, seed), len(data)

    return keyed


def document_key(text: str, seed: int) -> int:
    return keyed_function(seed)(text)[0]


class BottomK:
    """The ``n`` distinct texts with the smallest keys offered so far, with their copy counts."""

    def __init__(self, n: int):
        self.n = n
        self.heap: list[int] = []  # -key of every kept text: heap[0] is minus the largest key
        self.rows: dict[int, list] = {}  # key -> [text, source, record, copies]

    def offer(self, key: int, text: str, source: str, record: int, copies: int = 1) -> None:
        heap = self.heap
        full = len(heap) >= self.n
        if full and key > -heap[0]:
            return  # the common case once the sample is full: larger than everything kept
        row = self.rows.get(key)
        if row is not None:  # another copy: keep the first in (source, record) order
            row[3] += copies
            if (source, record) < (row[1], row[2]):
                row[0], row[1], row[2] = text, source, record
            return
        if full:
            del self.rows[-heapq.heapreplace(heap, -key)]
        else:
            heapq.heappush(heap, -key)
        self.rows[key] = [text, source, record, copies]

    def sorted_rows(self) -> list[tuple[int, str, str, int, int]]:
        """Rows ``(key, text, source, record, copies)`` in increasing key order."""
        return [(key, *self.rows[key]) for key in sorted(self.rows)]


def corpus_counts(documents: int, size: int, sample: BottomK) -> dict:
    """What a domain's whole source holds, from the counts of one pass over it and the
    sample: ``documents`` kept (long enough, readable) and their UTF-8 ``bytes`` (copies
    included, as a trainer reading the files sees them), and how many of those are further
    copies of an identical text.

    The sample is a uniform sample of the distinct texts (smallest hash keys) with each one's
    exact number of copies in the source, so the mean copies per sampled text estimates the
    mean over all of them, and ``documents / mean`` the distinct texts; exact (``exact``) when
    every distinct text fits in the sample. Memory stays the sample's, whatever the source.
    """
    kept = len(sample.rows)
    exact = kept < sample.n
    # With every distinct text sampled, the copies sum to `documents` and this is `kept`.
    copies = sum(row[3] for row in sample.rows.values())
    distinct = kept if exact else round(documents * kept / copies)
    return {
        "documents": documents,
        "bytes": size,
        "distinct_documents": distinct,
        "duplicates": documents - distinct,
        "exact": exact,
    }


def write_rows(path: Path, rows: list[tuple]) -> None:
    """A shard of rows ``(key, text, source, record, copies)``."""
    table = pa.table(
        {
            "text": [r[1] for r in rows],
            "source": [r[2] for r in rows],
            "record": [r[3] for r in rows],
            "key": [r[0] for r in rows],
            "copies": [r[4] for r in rows],
        },
        schema=SCHEMA,
    )
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


@dataclass
class ShardStats:
    domain: str
    seed: int
    source: str
    documents: dict  # split -> count
    bytes: dict  # split -> utf-8 bytes
    mean_chars: dict  # split -> mean characters per document
    records_read: int
    duplicates_dropped: int  # further copies of the sampled texts
    too_short: int
    unusable_records: int
    unusable_files: dict  # path -> {"records", "bad", "first"} for the files with unusable records
    # the domain's whole source: documents kept, their bytes, copies (:func:`corpus_counts`)
    corpus: dict


def _write_shards(
    domain: str,
    sample: BottomK,
    splits: dict[str, int],
    out_dir: Path,
    min_chars: int,
    **stats,
) -> ShardStats:
    rows = sample.sorted_rows()
    need = sum(splits[s] for s in SPLITS)
    if len(rows) < need:
        raise SourceError(
            f"domain {domain!r} has {len(rows)} distinct documents of at least {min_chars} "
            f"characters in {stats['source']}, fewer than the {need} that the splits ask for "
            f"({', '.join(f'{s}={splits[s]}' for s in SPLITS)}); lower the split sizes or add data"
        )
    parts, start = {}, 0
    for split in KEY_ORDER:
        parts[split] = rows[start : start + splits[split]]
        start += splits[split]
    for split in SPLITS:
        write_rows(out_dir / f"{split}.parquet", parts[split])
    result = ShardStats(
        domain=domain,
        documents={s: len(parts[s]) for s in SPLITS},
        bytes={s: sum(len(r[1].encode("utf-8")) for r in parts[s]) for s in SPLITS},
        mean_chars={s: sum(len(r[1]) for r in parts[s]) / max(len(parts[s]), 1) for s in SPLITS},
        duplicates_dropped=sum(r[4] for r in rows) - len(rows),
        **stats,
    )
    write_json(out_dir / "stats.json", asdict(result))
    return result


def sample_domain(
    domain: str,
    source: dict,
    splits: dict[str, int],
    seed: int,
    out_dir: str | Path,
    min_chars: int = 1,
    max_bad_fraction: float = 0.01,
) -> ShardStats:
    """Write ``out_dir/{train,val,test}.parquet`` and ``out_dir/stats.json`` for a domain with
    its own source."""
    read = ReadStats()
    sample = BottomK(sum(splits[s] for s in SPLITS))
    keyed = keyed_function(seed)
    candidates = size = 0
    for doc in iter_documents(source, read):
        if len(doc.text.strip()) >= min_chars:
            key, length = keyed(doc.text)
            candidates += 1
            size += length
            sample.offer(key, doc.text, doc.source, doc.record)
    read.check(f"domain {domain!r} ({describe(source)})", max_bad_fraction)
    return _write_shards(
        domain,
        sample,
        splits,
        Path(out_dir),
        min_chars,
        seed=seed,
        source=describe(source),
        records_read=read.records,
        too_short=read.records - read.bad - candidates,
        unusable_records=read.bad,
        unusable_files=read.files,
        corpus=corpus_counts(candidates, size, sample),
    )


def domain_value(value) -> str:
    """A record's domain field as the partition names it: a string, or an integer as its
    decimal text (so `value: 3` in the config selects it); anything else (null, a boolean, a
    list, a number with a fraction) selects no domain and raises ``TypeError``."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"is {value!r}, not a string or an integer")


def partition_groups(source: dict, files_per_job: int) -> list[dict]:
    """The sources of a mixed source's scatter jobs: its files, sorted, ``files_per_job`` to a
    job (each file as an escaped glob matching only itself); a hub dataset is one job."""
    if "files" not in source:
        return [source]
    files = [glob.escape(str(p)) for p in resolve_files(source)]
    return [
        {**source, "files": files[i : i + files_per_job]}
        for i in range(0, len(files), files_per_job)
    ]


def _progress_bar(source: dict):
    from tqdm import tqdm

    return tqdm(
        total=source_bytes(source),
        unit="B",
        unit_scale=True,
        desc="reading",
        mininterval=0.5 if sys.stderr.isatty() else 60,  # a job log gets a line a minute
    )


def valued_texts(
    source: dict, domain_field: str, read: ReadStats, bar
) -> Iterator[tuple[str, int, str, str]]:
    """``(file name, record number, text, domain value)`` of every record of ``source`` (a
    group of a mixed source's files) with a string text and a ``domain_field``; the others are
    skipped and counted in ``read``."""
    text_field = source.get("text_field", "text")
    text_of, value_of = text_getter(text_field), field_getter(domain_field)
    for name, number, record in iter_records(source, read, (text_field, domain_field), bar):
        text = text_of(record)
        if text is None:
            read.skip("missing_text", name, f"record {number}: no string {text_field!r}")
            continue
        try:
            value = domain_value(value_of(record))
        except KeyError:
            read.skip("missing_field", name, f"record {number}: no field {domain_field!r}")
            continue
        except TypeError as err:
            read.skip("missing_field", name, f"record {number}: {domain_field!r} {err}")
            continue
        yield name, number, text, value


def partition_part(
    source: dict,
    domain_field: str,
    per_value: int | dict,
    seed: int,
    out_sample: str | Path,
    out_stats: str | Path,
    min_chars: int = 1,
) -> dict:
    """One scatter job: the ``per_value`` smallest-key documents of every value of
    ``domain_field`` in ``source`` (a group of files), written to ``out_sample`` (parquet, one
    row group per value) and the counts to ``out_stats`` (JSON), which it also returns.
    ``per_value`` is a number, or ``{"default": n, "values": {value: n}}`` for values whose
    domains have splits of their own.

    The part does not depend on which domains are configured, so adding a domain that lives in
    the same source reruns no part. Memory is that of the samples, whatever the files' size.
    """
    keyed = keyed_function(seed)
    sizes = per_value if isinstance(per_value, dict) else {"default": per_value, "values": {}}
    read = ReadStats()
    samples: dict[str, BottomK] = {}
    counts: dict[str, list[int]] = {}  # value -> [records, too short, bytes kept]
    documents = 0
    with _progress_bar(source) as bar:
        for name, number, text, value in valued_texts(source, domain_field, read, bar):
            count = counts.get(value)
            if count is None:
                count = counts[value] = [0, 0, 0]
                samples[value] = BottomK(sizes["values"].get(value, sizes["default"]))
            count[0] += 1
            if len(text) < min_chars or len(text.strip()) < min_chars:
                count[1] += 1
                continue
            key, length = keyed(text)
            count[2] += length
            samples[value].offer(key, text, name, number)
            documents += 1
            if documents % 4096 == 0:
                bar.set_postfix(documents=documents, domains=len(samples), refresh=False)
        bar.set_postfix(documents=documents, domains=len(samples), refresh=False)

    with atomic_path(out_sample) as tmp, pq.ParquetWriter(tmp, PART_SCHEMA) as writer:
        for value in sorted(samples):
            rows = samples[value].sorted_rows()
            columns = [[value] * len(rows)] + [[r[i] for r in rows] for i in range(5)]
            writer.write_table(pa.table(columns, schema=PART_SCHEMA))
    stats = {
        "source": describe(source),
        "domain_field": domain_field,
        "seed": seed,
        "per_value": sizes["default"],
        "per_value_of": sizes["values"],
        "read": read.to_dict(),
        "values": {
            value: {
                "records": records,
                "too_short": short,
                "bytes": size,  # of the documents kept
                "sampled": len(samples[value].rows),
            }
            for value, (records, short, size) in sorted(counts.items())
        },
    }
    write_json(out_stats, stats)
    return stats


def sample_partition(
    domain: str,
    value: str,
    parts: list[tuple[str | Path, str | Path]],
    splits: dict[str, int],
    out_dir: str | Path,
    min_chars: int = 1,
    max_bad_fraction: float = 0.01,
) -> ShardStats:
    """The merge: a domain's shards from the ``(sample, stats)`` files of every
    :func:`partition_part` of its dataset's source, as :func:`sample_domain` writes them."""
    need = sum(splits[s] for s in SPLITS)
    read, values, info = ReadStats(), {}, {}
    for _, stats_path in parts:
        info = json.loads(Path(stats_path).read_text())
        read.add(ReadStats.from_dict(info["read"]))
        for v, count in info["values"].items():
            total = values.setdefault(v, {"records": 0, "too_short": 0, "bytes": 0})
            for kind in total:
                if kind not in count:
                    raise SourceError(
                        f"{stats_path} counts no {kind!r} of {v!r}: it was written by an older "
                        "version; delete it to rerun the partition"
                    )
                total[kind] += count[kind]
        kept = info["per_value_of"].get(value, info["per_value"])
        if kept < need:
            raise SourceError(
                f"{stats_path} keeps {kept} documents of {value!r}, fewer than the {need} that "
                f"domain {domain!r} needs; delete it to rerun the partition"
            )
    field = info["domain_field"]
    if not values:
        raise SourceError(
            f"no record has the field {field!r} ({read.records} records read); check "
            "domain_field (a dotted path such as meta.pile_set_name)"
        )
    read.check(f"domain {domain!r} (the dataset's source, split by {field!r})", max_bad_fraction)
    if value not in values:
        raise SourceError(
            f"domain {domain!r}: no record has {field} == {value!r}; the source holds: "
            + ", ".join(f"{v!r} ({values[v]['records']})" for v in sorted(values))
        )
    sample = BottomK(need)
    columns = ["key", "text", "source", "record", "copies"]
    for sample_path, _ in parts:
        table = pq.read_table(sample_path, columns=columns, filters=[("value", "==", value)])
        for row in zip(*(table.column(c).to_pylist() for c in columns)):
            sample.offer(*row)
    return _write_shards(
        domain,
        sample,
        splits,
        Path(out_dir),
        min_chars,
        seed=info["seed"],
        source=f"records with {field} == {value!r} in the dataset's source",
        records_read=values[value]["records"],
        too_short=values[value]["too_short"],
        unusable_records=read.bad,
        unusable_files=read.files,
        corpus=corpus_counts(
            values[value]["records"] - values[value]["too_short"], values[value]["bytes"], sample
        ),
    )
