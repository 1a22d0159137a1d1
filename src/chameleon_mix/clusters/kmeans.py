"""The k-means of a clustered dataset's document vectors, and the assignment of every document.

faiss k-means, seeded, fitted on a seeded sample of the *train* documents only (so the
held-out text defines nothing); every document is then assigned to its nearest centroid and
**keeps its source split**, so the clustered dataset's test documents are exactly the
source's, and models of both datasets are compared on the same held-out text
(:func:`~chameleon_mix.clusters.report.labelled_comparison`). ``spherical`` (the default)
clusters directions: the vectors are centred by the fit sample's mean (mean-pooled hidden
states share one large common direction that would dominate every cosine) and
L2-normalised, and faiss renormalises the centroids at each iteration, which is k-means under
the cosine, the usual measure between mean-pooled LM embeddings. A cluster short of
``min_documents`` in a split takes the documents of that split nearest to its centroid from
clusters that have more than their minimum (a minimum-size constrained assignment), so no
domain gets an empty or near-empty shard; the moves are counted in ``clusters.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..shards import SPLITS
from . import cluster_names


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
    on a sample of the train documents' ``vectors`` (parts as
    :func:`~chameleon_mix.clusters.documents.embed_documents_to_files` lists them), then assign
    every document, each split filled to its minimum."""
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


def refit(cluster_dir: str | Path, k: int) -> dict:
    """The clusters of ``cluster_dir`` (``results/<dataset>/clusters``) as
    :func:`~chameleon_mix.clusters.report.cluster_documents` would make them with ``k``
    clusters, from the same document vectors and settings, writing nothing: ``{"k",
    "adjusted_rand_index", "clusters"}``, with each cluster's documents per source label."""
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
