"""Clustered datasets: the documents of a labelled dataset regrouped into k embedding clusters.

A dataset with ``domains: {cluster: {k, dataset, ...}}`` pools every document of the train,
val and test shards of another pretraining dataset (the *source*) and makes each of k k-means
clusters of their embeddings a domain (``c00``, ``c01``, ...), so every later stage (domain
embeddings, weights, base training, evaluation, export) runs on clusters unchanged.

1. :func:`embed_documents_to_files` (rule ``embed_documents``): each document is one window,
   its first ``embedding.seq_len`` tokens read from the source's token files, embedded by the
   dataset's proxy exactly as :mod:`chameleon_mix.embed` embeds a domain's windows (hidden
   state after block ``embedding.layer``, mean over real tokens). The first window, not a
   random one, because a document's beginning (title, header, shebang) says most about what
   it is, and so a document's vector depends on no sampling seed. It does not depend on k
   either: changing k refits the clusters without embedding again.
2. :func:`cluster_documents` (rule ``cluster_documents``): faiss k-means, seeded, fitted on a
   seeded sample of the *train* documents only (so the held-out text defines nothing); every
   document is then assigned to its nearest centroid and **keeps its source split**, so the
   clustered dataset's test documents are exactly the source's, and models of both datasets
   are compared on the same held-out text (:func:`labelled_comparison`). ``spherical`` (the
   default) clusters directions: the vectors are centred by the fit sample's mean (mean-pooled
   hidden states share one large common direction that would dominate every cosine) and
   L2-normalised, and faiss renormalises the centroids at each iteration, which is k-means
   under the cosine, the usual measure between mean-pooled LM embeddings. A cluster short of
   ``min_documents`` in a split takes the documents of that split nearest to its centroid from
   clusters that have more than their minimum (a minimum-size constrained assignment), so no
   domain gets an empty or near-empty shard; the moves are counted in ``clusters.json``.
3. :func:`cluster_shards` (rule ``sample_shards``, per cluster): the cluster's rows of the
   assignments file, one row group per cluster, as the usual train/val/test shards.

``clusters.json`` describes each cluster for a person (its size per split, the share of each
source label, the three documents nearest its centroid, its top terms by class-based TF-IDF)
and overall the adjusted Rand index between clusters and source labels.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .io import atomic_path, write_json
from .shards import SPLITS, ShardStats, write_rows

# The assignments file: every pooled document once, sorted by (cluster, distance), one row
# group per cluster, so each cluster's sample_shards job reads its own row group only.
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
SNIPPETS = 3  # representative documents per cluster, the nearest to its centroid
SNIPPET_CHARS = 200
TERMS = 10  # top terms per cluster
TERM_DOCUMENTS = 32  # the nearest documents whose text describes a cluster's terms ...
TERM_CHARS = 1000  # ... each cut to its first characters
PASS_BYTES = 1 << 30  # text held at once while the assignments are written


def cluster_names(k: int) -> list[str]:
    """Domain names of k clusters: "c00", "c01", ..., zero-padded to the width of k - 1 and
    at least 2 digits."""
    if k < 1:
        raise ValueError(f"a clustered dataset needs cluster.k >= 1 clusters, got {k}")
    width = max(2, len(str(k - 1)))
    return [f"c{i:0{width}d}" for i in range(k)]


# --- 1. document embeddings -------------------------------------------------------------


def embed_documents_to_files(
    model_dir: str | Path,
    parts: list[tuple[str, str, str | Path]],
    settings: dict,
    out_vectors: str | Path,
    out_info: str | Path,
    model_name: str,
    device: str | None = None,
    chunk_documents: int = 4096,
) -> dict:
    """The embed_documents rule: one vector per document of every ``(domain, split,
    token_dir)`` part, in that order, as ``out_vectors`` (.npy, float32, documents x hidden),
    and the index of the parts in ``out_info`` (JSON). ``settings`` is the dataset's
    ``embedding`` (``layer``, ``seq_len``, ``batch_size``, ``include_padding``).

    Memory is one chunk of ``chunk_documents`` windows: the token files are memory-mapped and
    the vectors written straight into a memory-mapped ``.npy``.
    """
    import torch

    from .embed import embed_windows, middle_layer, truncate_to_layer
    from .model import load_pretrained
    from .tokens import check_tokenizer, read_offsets, read_tokens

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_pretrained(model_dir)
    layer = settings["layer"] or middle_layer(model.config.num_hidden_layers)
    seq_len = min(settings["seq_len"], model.config.max_position_embeddings)
    trunk = truncate_to_layer(model, layer)
    streams, index, total = [], [], 0
    for domain, split, token_dir in parts:
        stats = check_tokenizer(token_dir, tokenizer, f"the tokenizer of {model_dir}")
        offsets = read_offsets(token_dir, split)
        streams.append((read_tokens(token_dir, split), offsets))
        index.append(
            {
                "domain": domain,
                "split": split,
                "start": total,
                "documents": len(offsets) - 1,
                "tokens_sha256": stats["splits"][split]["sha256"],
            }
        )
        total += len(offsets) - 1
    with atomic_path(out_vectors) as tmp:
        vectors = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(total, trunk.hidden_size)
        )
        for (tokens, offsets), part in zip(streams, index):
            for first in range(0, part["documents"], chunk_documents):
                last = min(first + chunk_documents, part["documents"])
                # A document's first seq_len tokens, without its EOS (an empty one: the EOS).
                windows = [
                    np.asarray(tokens[s : max(s + 1, min(e - 1, s + seq_len))], dtype=np.int64)
                    for s, e in zip(offsets[first:last], offsets[first + 1 : last + 1])
                ]
                start = part["start"] + first
                vectors[start : start + len(windows)] = embed_windows(
                    trunk,
                    windows,
                    tokenizer.pad_token_id,
                    settings["batch_size"],
                    settings["include_padding"],
                    device,
                )
            print(f"{part['domain']}/{part['split']}: {part['documents']} documents", flush=True)
        vectors.flush()
        del vectors
    info = {
        "model": model_name,
        "layer": layer,
        "seq_len": seq_len,
        "include_padding": settings["include_padding"],
        "documents": total,
        "hidden_size": trunk.hidden_size,
        "parts": index,
    }
    write_json(out_info, info)
    return info


# --- 2. k-means -----------------------------------------------------------------------


def prepared(vectors: np.ndarray, mean: np.ndarray | None, spherical: bool) -> np.ndarray:
    """Vectors in the space clustered: centred by ``mean`` (when given), L2-normalised when
    ``spherical``; float32, as faiss wants them."""
    x = np.asarray(vectors, dtype=np.float32)
    if mean is not None:
        x = x - mean.astype(np.float32)
    if spherical:
        norms = np.linalg.norm(x, axis=1, keepdims=True)
        x = x / np.maximum(norms, np.finfo(np.float32).tiny)
    return np.ascontiguousarray(x, dtype=np.float32)


def fit_centroids(
    x: np.ndarray, k: int, niter: int, seed: int, spherical: bool
) -> tuple[np.ndarray, float]:
    """faiss k-means on the prepared rows ``x``: (centroids (k, d) float32, objective)."""
    import faiss

    kmeans = faiss.Kmeans(
        x.shape[1],
        k,
        niter=niter,
        seed=seed,
        spherical=spherical,
        # x is already the sample to fit on: faiss must not subsample it again, nor warn that
        # a small demo has fewer than its 39 points per centroid.
        max_points_per_centroid=len(x) // k + 1,
        min_points_per_centroid=1,
        verbose=False,
    )
    kmeans.train(x)
    return np.asarray(kmeans.centroids, dtype=np.float32), float(kmeans.obj[-1])


def chunks(vectors, rows: np.ndarray, mean, spherical: bool, size: int = 1 << 16):
    """The prepared vectors of ``rows`` of the (memory-mapped) ``vectors``, ``size`` at a time:
    ``(first, x)`` pairs, so memory is one chunk whatever the number of documents."""
    for first in range(0, len(rows), size):
        yield first, prepared(vectors[rows[first : first + size]], mean, spherical)


def nearest(parts, n: int, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each of the ``n`` rows' nearest centroid and its squared L2 distance (for unit vectors
    and unit centroids, the largest cosine), from the ``(first, x)`` chunks of :func:`chunks`."""
    import faiss

    index = faiss.IndexFlatL2(centroids.shape[1])
    index.add(centroids)
    ids, distances = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.float32)
    for first, x in parts:
        d, i = index.search(x, 1)
        ids[first : first + len(x)], distances[first : first + len(x)] = i[:, 0], d[:, 0]
    return ids, distances


def enforce_minimum(
    gaps_to, clusters: np.ndarray, distances: np.ndarray, k: int, minimum: int
) -> np.ndarray:
    """Give each of the ``k`` clusters at least ``minimum`` of these rows (one split's
    documents): a short cluster takes the rows nearest to its centroid (``gaps_to(j)``: every
    row's squared distance to centroid j) from clusters holding more than ``minimum``, in
    cluster order. Updates ``clusters`` and ``distances`` in place; returns the rows moved
    into each cluster."""
    counts = np.bincount(clusters, minlength=k)
    moved = np.zeros(k, dtype=np.int64)
    for j in np.flatnonzero(counts < minimum):
        gap = gaps_to(j)
        for row in np.argsort(gap, kind="stable"):
            if counts[j] >= minimum:
                break
            owner = clusters[row]
            if owner != j and counts[owner] > minimum:
                counts[owner] -= 1
                counts[j] += 1
                moved[j] += 1
                clusters[row], distances[row] = j, gap[row]
    return moved


def _read_meta(parts: list[dict], shards: dict) -> pa.Table:
    """The small columns (``source``, ``record``, ``key``, the text's ``bytes``) of the
    parts' shards (``shards[(domain, split)]``) in document order, after checking that each
    shard holds the documents its token files held when they were embedded."""
    pieces = []
    for part in parts:
        path = shards[(part["domain"], part["split"])]
        shard = pq.ParquetFile(path)
        if shard.metadata.num_rows != part["documents"]:
            raise ValueError(
                f"{path} holds {shard.metadata.num_rows} documents, but its token files held "
                f"{part['documents']} when they were embedded; rerun tokenize_domain and "
                "embed_documents"
            )
        for batch in shard.iter_batches(
            batch_size=4096, columns=["source", "record", "key", "text"]
        ):
            pieces.append(
                pa.record_batch(
                    [*batch.columns[:3], pc.binary_length(batch.column(3))],
                    names=["source", "record", "key", "bytes"],
                )
            )
    return pa.Table.from_batches(pieces)


def _texts(info: dict, shards: dict, rows: np.ndarray) -> dict[int, str]:
    """The texts of the documents ``rows`` (global document numbers), read in record batches."""
    wanted = np.zeros(info["documents"], dtype=bool)
    wanted[rows] = True
    texts = {}
    for part in info["parts"]:
        start = part["start"]
        if not wanted[start : start + part["documents"]].any():
            continue
        shard = pq.ParquetFile(shards[(part["domain"], part["split"])])
        for batch in shard.iter_batches(batch_size=4096, columns=["text"]):
            take = np.flatnonzero(wanted[start : start + batch.num_rows])
            column = batch.column(0)
            for i in take:
                texts[start + int(i)] = column[int(i)].as_py()
            start += batch.num_rows
    return texts


@dataclass
class Assignment:
    """Every pooled document's cluster, in the document order of the vectors."""

    labels: list[str]  # the source labels, in the order of the parts
    domain: np.ndarray  # (n,) index into labels
    split: np.ndarray  # (n,) index into SPLITS
    row: np.ndarray  # (n,) row of the document's source shard
    cluster: np.ndarray  # (n,) int32
    distance: np.ndarray  # (n,) squared L2 to the cluster's centroid, in the clustered space
    moved: dict  # split -> (k,) documents moved into each cluster to reach its minimum
    centroids: np.ndarray  # (k, d) float32, in the clustered space
    mean: np.ndarray | None  # the centring mean (None when not centred)
    fit_documents: int
    objective: float


def assign(
    vectors: np.ndarray, parts: list[dict], settings: dict, seed: int, dataset: str
) -> Assignment:
    """Fit the k-means of ``settings`` (a dataset's ``domains.cluster``), seeded by ``seed``,
    on a sample of the train documents' ``vectors`` (parts as :func:`embed_documents_to_files`
    lists them), then assign every document, each split filled to its minimum."""
    k, spherical = settings["k"], settings["spherical"]
    labels = list(dict.fromkeys(p["domain"] for p in parts))
    domain_of = np.concatenate(
        [np.full(p["documents"], labels.index(p["domain"]), dtype=np.int32) for p in parts]
    )
    split_of = np.concatenate(
        [np.full(p["documents"], SPLITS.index(p["split"]), dtype=np.int8) for p in parts]
    )
    rows_of = {split: np.flatnonzero(split_of == i) for i, split in enumerate(SPLITS)}
    for split, rows in rows_of.items():
        minimum = settings["min_documents"][split]
        if len(rows) < k * minimum:
            raise ValueError(
                f"dataset {dataset!r}: {k} clusters of at least {minimum} {split} documents "
                f"need {k * minimum}, but the source dataset {settings['dataset']!r} has "
                f"{len(rows)} {split} documents; lower cluster.k or "
                f"cluster.min_documents.{split}"
            )
    train = rows_of["train"]
    fit = np.random.default_rng(seed).choice(
        train, size=min(settings["fit_documents"], len(train)), replace=False
    )
    fit.sort()
    mean = vectors[fit].astype(np.float64).mean(axis=0) if settings["center"] else None
    centroids, objective = fit_centroids(
        prepared(vectors[fit], mean, spherical), k, settings["niter"], seed, spherical
    )
    clusters = np.empty(len(split_of), dtype=np.int32)
    distances = np.empty(len(split_of), dtype=np.float32)
    moved = {}
    for split, rows in rows_of.items():

        def gaps_to(j, rows=rows):
            return np.concatenate(
                [
                    ((x - centroids[j]) ** 2).sum(axis=1)
                    for _, x in chunks(vectors, rows, mean, spherical)
                ]
            )

        ids, dist = nearest(chunks(vectors, rows, mean, spherical), len(rows), centroids)
        moved[split] = enforce_minimum(gaps_to, ids, dist, k, settings["min_documents"][split])
        clusters[rows], distances[rows] = ids, dist
    return Assignment(
        labels=labels,
        domain=domain_of,
        split=split_of,
        row=np.concatenate([np.arange(p["documents"], dtype=np.int64) for p in parts]),
        cluster=clusters,
        distance=distances,
        moved=moved,
        centroids=centroids,
        mean=mean,
        fit_documents=len(fit),
        objective=objective,
    )


def cluster_documents(
    vectors_path: str | Path,
    info_path: str | Path,
    shards: dict[tuple[str, str], str | Path],
    settings: dict,
    seed: int,
    out_assignments: str | Path,
    out_centroids: str | Path,
    out_json: str | Path,
    out_md: str | Path,
    dataset: str,
) -> dict:
    """The cluster_documents rule: :func:`assign` on the document vectors of
    :func:`embed_documents_to_files` (index in ``info_path``; ``shards[(domain, split)]`` the
    source's parquet shards they came from); writes the assignments parquet, the centroids
    (``.npz``: ``centroids`` in the clustered space, the centring ``mean``, empty when not
    centred) and ``clusters.json`` / ``clusters.md``, and returns the report."""
    from sklearn.metrics import adjusted_rand_score

    info = json.loads(Path(info_path).read_text())
    meta = _read_meta(info["parts"], shards)
    result = assign(np.load(vectors_path, mmap_mode="r"), info["parts"], settings, seed, dataset)
    k, labels = settings["k"], result.labels
    clusters, distances, moved = result.cluster, result.distance, result.moved
    domain_of, split_of, row_of = result.domain, result.split, result.row
    mean, centroids = result.mean, result.centroids

    order = np.lexsort((np.arange(len(clusters)), distances, clusters))
    sizes = np.bincount(clusters, minlength=k)
    _write_assignments(
        out_assignments,
        order,
        sizes,
        pa.table(
            {
                "cluster": pa.array(clusters, pa.int32()),
                "distance": pa.array(distances, pa.float32()),
                "domain": pa.DictionaryArray.from_arrays(domain_of, labels).cast(pa.string()),
                "split": pa.DictionaryArray.from_arrays(split_of, list(SPLITS)).cast(pa.string()),
                "row": pa.array(row_of, pa.int64()),
            }
        ),
        meta,
        info,
        shards,
    )
    with atomic_path(out_centroids) as tmp, open(tmp, "wb") as f:
        np.savez(f, centroids=centroids, mean=np.zeros(0) if mean is None else mean)

    per_split = np.zeros((k, len(SPLITS)), dtype=np.int64)
    np.add.at(per_split, (clusters, split_of), 1)
    per_label = np.zeros((k, len(labels)), dtype=np.int64)
    np.add.at(per_label, (clusters, domain_of), 1)
    starts = np.cumsum(sizes) - sizes
    nearest_rows = [order[starts[c] : starts[c] + min(sizes[c], TERM_DOCUMENTS)] for c in range(k)]
    texts = _texts(info, shards, np.concatenate(nearest_rows))
    terms = top_terms([" ".join(texts[r][:TERM_CHARS] for r in rows) for rows in nearest_rows])
    mean_distance = np.bincount(clusters, weights=distances, minlength=k) / sizes
    described = []
    for c, name in enumerate(cluster_names(k)):
        shares = per_label[c] / sizes[c]
        described.append(
            {
                "name": name,
                "cluster": c,
                "documents": {s: int(per_split[c, i]) for i, s in enumerate(SPLITS)},
                "labels": {
                    labels[i]: round(float(shares[i]), 4)
                    for i in np.argsort(-shares, kind="stable")
                    if shares[i] > 0
                },
                "mean_distance": float(mean_distance[c]),
                "reassigned": {s: int(moved[s][c]) for s in SPLITS},
                "snippets": [
                    {
                        "domain": labels[domain_of[r]],
                        "split": SPLITS[split_of[r]],
                        "text": texts[r][:SNIPPET_CHARS],
                    }
                    for r in nearest_rows[c][:SNIPPETS]
                ],
                "terms": terms[c],
            }
        )
    report = {
        "dataset": dataset,
        "source": settings["dataset"],
        "labels": labels,
        "settings": settings,
        "seed": seed,
        "model": info["model"],
        "layer": info["layer"],
        "seq_len": info["seq_len"],
        "documents": {s: int((split_of == i).sum()) for i, s in enumerate(SPLITS)},
        "fit_documents": result.fit_documents,
        "objective": result.objective,
        "adjusted_rand_index": float(adjusted_rand_score(domain_of, clusters)),
        "reassigned": {s: int(moved[s].sum()) for s in SPLITS},
        "assignments": str(out_assignments),
        "centroids": str(out_centroids),
        "clusters": described,
    }
    write_json(out_json, report)
    with atomic_path(out_md) as tmp:
        tmp.write_text(clusters_markdown(report))
    return report


def _write_assignments(path, order, sizes, columns, meta, info, shards) -> None:
    """Every document once, in ``order`` (by cluster), one row group per cluster: ``columns``
    (cluster, distance, domain, split, row) and ``meta`` (source, record, key, bytes) in
    document order, and the text, read in passes over ranges of clusters holding at most
    :data:`PASS_BYTES` of it."""
    k = len(sizes)
    ends = np.cumsum(sizes)
    cluster = columns.column("cluster").to_numpy()
    text_bytes = np.bincount(cluster, weights=meta.column("bytes").to_numpy(), minlength=k)
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
            texts = _texts(info, shards, rows)
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


def top_terms(cluster_texts: list[str], n: int = TERMS) -> list[list[str]]:
    """Each cluster's ``n`` highest-scoring words under class-based TF-IDF: a cluster's text is
    one document of the TF-IDF corpus, so a word scores high when it is frequent in that
    cluster and rare in the others (English stop words and words under 3 letters left out)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(
        stop_words="english", token_pattern=r"(?u)\b[^\W\d_]{3,}\b", sublinear_tf=True
    )
    try:
        scores = vectorizer.fit_transform(cluster_texts)
    except ValueError:  # no word at all in any cluster (e.g. only numbers)
        return [[] for _ in cluster_texts]
    vocabulary = vectorizer.get_feature_names_out()
    out = []
    for row in scores:
        row = row.tocoo()
        best = np.lexsort((row.col, -row.data))[:n]
        out.append([str(vocabulary[row.col[i]]) for i in best])
    return out


def clusters_markdown(report: dict) -> str:
    """``clusters.md``: the overall numbers, then one row per cluster."""
    docs = report["documents"]
    lines = [
        f"# Clusters of {report['dataset']}",
        "",
        f"{report['settings']['k']} clusters of the {sum(docs.values())} documents of "
        f"{report['source']} (train {docs['train']}, val {docs['val']}, test {docs['test']}; "
        f"labels {', '.join(report['labels'])}), embedded by {report['model']} "
        f"(block {report['layer']}, first {report['seq_len']} tokens).",
        "",
        f"- adjusted Rand index against the source labels: {report['adjusted_rand_index']:.3f}",
        "- documents reassigned to fill short clusters: "
        + ", ".join(f"{s} {n}" for s, n in report["reassigned"].items()),
        "",
        "| cluster | train | val | test | labels | terms | nearest document |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for c in report["clusters"]:
        labels = ", ".join(f"{d} {s:.0%}" for d, s in list(c["labels"].items())[:3])
        snippet = c["snippets"][0]["text"] if c["snippets"] else ""
        snippet = " ".join(snippet.split())[:120].replace("|", "\\|")
        lines.append(
            f"| {c['name']} | {c['documents']['train']} | {c['documents']['val']} | "
            f"{c['documents']['test']} | {labels} | {', '.join(c['terms'][:6])} | {snippet} |"
        )
    return "\n".join(lines) + "\n"


# --- 3. the clusters' shards ------------------------------------------------------------


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
    )
    write_json(out_dir / "stats.json", asdict(stats))
    return stats


# --- the comparison on the source's labelled domains -------------------------------------


def labelled_comparison(
    models: dict[str, list[str | Path]], labels: list[str], out_md: str | Path, out_csv: str | Path
) -> dict:
    """Test perplexity per source label of each model (``models``: "dataset/method" -> its
    ``perplexity.json`` files, one per training seed, each holding every label); the first
    model is the baseline of the "better" column. Writes a Markdown table and a long CSV
    (model, seed file, label, perplexity); returns model -> label -> mean over seeds."""
    import csv

    table, spread, rows = {}, {}, []
    for name, files in models.items():
        runs = [json.loads(Path(f).read_text()) for f in files]
        for f, run in zip(files, runs):
            missing = [d for d in labels if d not in run]
            if missing:
                raise ValueError(f"{f}: no perplexity for the labelled domains {missing}")
            rows.extend([name, str(f), d, run[d]["perplexity"]] for d in labels)
        values = np.array([[run[d]["perplexity"] for d in labels] for run in runs])
        table[name] = dict(zip(labels, values.mean(axis=0).tolist()))
        spread[name] = dict(zip(labels, values.std(axis=0).tolist()))
    baseline = next(iter(table))
    header = ["model", *labels, "average", f"better than {baseline}"]
    lines = [
        "# Models of the clustered dataset on the source's labelled test domains",
        "",
        "Test perplexity per labelled domain (mean over training seeds, ± their standard "
        "deviation when there are several); every model is scored on the same test documents.",
        "",
        "| " + " | ".join(header) + " |",
        "|---|" + "---:|" * (len(header) - 1),
    ]
    for name, values in table.items():
        cells = [
            f"{values[d]:.2f}" + (f" ± {spread[name][d]:.2f}" if len(models[name]) > 1 else "")
            for d in labels
        ]
        better = sum(values[d] < table[baseline][d] for d in labels)
        average = float(np.mean(list(values.values())))
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {average:.2f} | {better} |")
    with atomic_path(out_md) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["model", "perplexity_file", "domain", "perplexity"])
        writer.writerows(rows)
    return table


def refit(cluster_dir: str | Path, k: int) -> dict:
    """The clusters of ``cluster_dir`` (``results/<dataset>/clusters``) as
    :func:`cluster_documents` would make them with ``k`` clusters, from the same document
    vectors and settings, writing nothing: ``{"k", "adjusted_rand_index", "clusters"}``, with
    each cluster's documents per source label."""
    from sklearn.metrics import adjusted_rand_score

    cluster_dir = Path(cluster_dir)
    report = json.loads((cluster_dir / "clusters.json").read_text())
    info = json.loads((cluster_dir / "documents.json").read_text())
    vectors = np.load(cluster_dir / "documents.npy", mmap_mode="r")
    result = assign(
        vectors, info["parts"], {**report["settings"], "k": k}, report["seed"], report["dataset"]
    )
    counts = np.zeros((k, len(result.labels)), dtype=np.int64)
    np.add.at(counts, (result.cluster, result.domain), 1)
    return {
        "k": k,
        "adjusted_rand_index": float(adjusted_rand_score(result.domain, result.cluster)),
        "clusters": {
            name: {result.labels[i]: int(n) for i, n in enumerate(row) if n}
            for name, row in zip(cluster_names(k), counts)
        },
    }


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="ARI of a clustered dataset's documents refitted with another k, e.g. "
        "python -m chameleon_mix.clusters results/demo-clusters/clusters --k 9"
    )
    parser.add_argument("cluster_dir", help="results/<clustered dataset>/clusters")
    parser.add_argument("--k", type=int, required=True, help="clusters to fit")
    print(json.dumps(refit(**vars(parser.parse_args())), indent=2))
