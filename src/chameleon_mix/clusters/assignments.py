"""The assignments file: every pooled document once, with its cluster, written by the
cluster_documents rule (:func:`write_assignments`) and read back by each cluster's
sample_shards job as the cluster's shards (:func:`cluster_shards`).

The documents are sorted by (cluster, distance), one row group per cluster, so each cluster's
sample_shards job reads its own row group only.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..io import atomic_path, write_json
from ..shards import SPLITS, ShardStats, write_rows
from .documents import document_texts
from .kmeans import Assignment

ASSIGNMENTS_SCHEMA = pa.schema(
    [
        ("cluster", pa.int32()),
        ("distance", pa.float32()),  # squared L2 to the centroid, in the space clustered
        ("domain", pa.string()),  # the source label
        ("split", pa.string()),
        ("row", pa.int64()),  # the row of the source domain's split shard
        ("text", pa.string()),
        ("source", pa.string()),
        ("record", pa.int64()),
        ("key", pa.uint64()),
    ]
)
PASS_BYTES = 1 << 30  # text held at once while the assignments are written


def write_assignments(
    path: str | Path, result: Assignment, order: np.ndarray, meta: pa.Table, info: dict, shards
) -> None:
    """Every document once, in ``order`` (by cluster), one row group per cluster: its
    assignment in ``result``, ``meta`` (source, record, key, bytes; in document order, from
    :func:`~chameleon_mix.clusters.documents.document_meta`) and the text, read in passes
    over ranges of clusters holding at most :data:`PASS_BYTES` of it."""
    columns = assignment_columns(result)
    sizes = np.bincount(result.cluster, minlength=len(result.centroids))
    k = len(sizes)
    ends = np.cumsum(sizes)
    text_bytes = np.bincount(result.cluster, weights=meta.column("bytes").to_numpy(), minlength=k)
    with (
        atomic_path(path) as tmp,
        pq.ParquetWriter(tmp, ASSIGNMENTS_SCHEMA, compression="zstd") as writer,
    ):
        first = 0
        while first < k:
            last, held = first + 1, text_bytes[first]
            while last < k and held + text_bytes[last] <= PASS_BYTES:
                held += text_bytes[last]
                last += 1
            rows = order[ends[first] - sizes[first] : ends[last - 1]]
            texts = document_texts(info, shards, rows)
            table = pa.Table.from_arrays(
                [
                    *columns.take(rows).columns,
                    pa.array([texts[r] for r in rows.tolist()], pa.string()),
                    *meta.select(["source", "record", "key"]).take(rows).columns,
                ],
                schema=ASSIGNMENTS_SCHEMA,
            )
            start = 0
            for c in range(first, last):
                writer.write_table(table.slice(start, sizes[c]), row_group_size=int(sizes[c]))
                start += sizes[c]
            first = last


def assignment_columns(result: Assignment) -> pa.Table:
    """The assignment's columns of the file (cluster, distance, domain, split, row), in
    document order."""
    return pa.table(
        {
            "cluster": pa.array(result.cluster, pa.int32()),
            "distance": pa.array(result.distance, pa.float32()),
            "domain": pa.DictionaryArray.from_arrays(result.domain, result.labels).cast(
                pa.string()
            ),
            "split": pa.DictionaryArray.from_arrays(result.split, list(SPLITS)).cast(pa.string()),
            "row": pa.array(result.row, pa.int64()),
        }
    )


def cluster_shards(
    domain: str, cluster: int, assignments: str | Path, seed: int, out_dir: str | Path
) -> ShardStats:
    """Write ``out_dir/{train,val,test}.parquet`` and ``stats.json`` of one cluster from its
    row group of the assignments file: each split's documents in key order, as
    :mod:`chameleon_mix.shards` writes a sampled domain."""
    shard = pq.ParquetFile(assignments)
    if cluster >= shard.num_row_groups:
        raise ValueError(
            f"{assignments} holds {shard.num_row_groups} clusters, not cluster {cluster} "
            f"({domain}); rerun cluster_documents"
        )
    table = shard.read_row_group(cluster)
    if pc.any(pc.not_equal(table.column("cluster"), cluster)).as_py():
        raise ValueError(
            f"{assignments}: row group {cluster} is not cluster {domain}'s; rerun cluster_documents"
        )
    out_dir = Path(out_dir)
    documents, size, chars = {}, {}, {}
    for split in SPLITS:
        part = table.filter(pc.equal(table.column("split"), split)).sort_by("key")
        if part.num_rows == 0:
            raise ValueError(
                f"cluster {domain}: no {split} documents in {assignments}; rerun "
                "cluster_documents with cluster.min_documents of at least 1"
            )
        texts = part.column("text").to_pylist()
        rows = list(
            zip(
                part.column("key").to_pylist(),
                texts,
                part.column("source").to_pylist(),
                part.column("record").to_pylist(),
                [1] * len(texts),  # a cluster's corpus is its distinct documents
            )
        )
        write_rows(out_dir / f"{split}.parquet", rows)
        documents[split] = len(rows)
        size[split] = sum(len(t.encode("utf-8")) for t in texts)
        chars[split] = sum(len(t) for t in texts) / len(texts)
    stats = ShardStats(
        domain=domain,
        seed=seed,
        source=f"cluster {cluster} of {assignments}",
        documents=documents,
        bytes=size,
        mean_chars=chars,
        records_read=table.num_rows,
        duplicates_dropped=0,
        too_short=0,
        unusable_records=0,
        unusable_files={},
        # the cluster is its documents: the source dataset's shards, already distinct
        corpus={
            "documents": sum(documents.values()),
            "bytes": sum(size.values()),
            "distinct_documents": sum(documents.values()),
            "duplicates": 0,
            "exact": True,
        },
    )
    write_json(out_dir / "stats.json", asdict(stats))
    return stats
