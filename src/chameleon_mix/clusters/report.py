"""The cluster_documents rule: the k-means assignment written out and described.

``clusters.json`` describes each cluster for a person (its size per split, the share of each
source label, the three documents nearest its centroid, its top terms by class-based TF-IDF)
and overall the adjusted Rand index between clusters and source labels; ``clusters.md`` is
its table. :func:`labelled_comparison` (rule ``labelled_report``) compares the models of a
clustered dataset on the source's labelled test domains.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..io import atomic_path, write_json
from ..shards import SPLITS
from . import cluster_names
from .assignments import write_assignments
from .documents import document_meta, document_texts
from .kmeans import Assignment, assign

SNIPPETS = 3  # representative documents per cluster, the nearest to its centroid
SNIPPET_CHARS = 200
TERMS = 10  # top terms per cluster
TERM_DOCUMENTS = 32  # the nearest documents whose text describes a cluster's terms ...
TERM_CHARS = 1000  # ... each cut to its first characters


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
    """The cluster_documents rule: :func:`~chameleon_mix.clusters.kmeans.assign` on the
    document vectors of :func:`~chameleon_mix.clusters.documents.embed_documents_to_files`
    (index in ``info_path``; ``shards[(domain, split)]`` the source's parquet shards they came
    from); writes the assignments parquet, the centroids (``.npz``: ``centroids`` in the
    clustered space, the centring ``mean``, empty when not centred) and ``clusters.json`` /
    ``clusters.md``, and returns the report."""
    from sklearn.metrics import adjusted_rand_score

    info = json.loads(Path(info_path).read_text())
    meta = document_meta(info["parts"], shards)  # checks the shards before the fit
    result = assign(np.load(vectors_path, mmap_mode="r"), info["parts"], settings, seed, dataset)
    # Each cluster's documents from the nearest to its centroid, ties in document order.
    order = np.lexsort((np.arange(len(result.cluster)), result.distance, result.cluster))
    write_assignments(out_assignments, result, order, meta, info, shards)
    with atomic_path(out_centroids) as tmp, open(tmp, "wb") as f:
        mean = np.zeros(0) if result.mean is None else result.mean
        np.savez(f, centroids=result.centroids, mean=mean)
    described = describe_clusters(result, order, info, shards)
    report = {
        "dataset": dataset,
        "source": settings["dataset"],
        "labels": result.labels,
        "settings": settings,
        "seed": seed,
        "model": info["model"],
        "layer": info["layer"],
        "seq_len": info["seq_len"],
        "documents": {s: int((result.split == i).sum()) for i, s in enumerate(SPLITS)},
        "fit_documents": result.fit_documents,
        "objective": result.objective,
        "adjusted_rand_index": float(adjusted_rand_score(result.domain, result.cluster)),
        "reassigned": {s: int(result.moved[s].sum()) for s in SPLITS},
        "assignments": str(out_assignments),
        "centroids": str(out_centroids),
        "clusters": described,
    }
    write_json(out_json, report)
    with atomic_path(out_md) as tmp:
        tmp.write_text(clusters_markdown(report))
    return report


def describe_clusters(result: Assignment, order: np.ndarray, info: dict, shards) -> list[dict]:
    """Each cluster for a person: its documents per split, the share of each source label
    (largest first), its mean distance, the documents moved into it, the :data:`SNIPPETS`
    documents nearest its centroid and its top terms. ``order``: the documents by cluster,
    each cluster's nearest first."""
    labels, clusters, k = result.labels, result.cluster, len(result.centroids)
    sizes = np.bincount(clusters, minlength=k)
    per_split = np.zeros((k, len(SPLITS)), dtype=np.int64)
    np.add.at(per_split, (clusters, result.split), 1)
    per_label = np.zeros((k, len(labels)), dtype=np.int64)
    np.add.at(per_label, (clusters, result.domain), 1)
    starts = np.cumsum(sizes) - sizes
    nearest_rows = [order[starts[c] : starts[c] + min(sizes[c], TERM_DOCUMENTS)] for c in range(k)]
    texts = document_texts(info, shards, np.concatenate(nearest_rows))
    terms = top_terms([" ".join(texts[r][:TERM_CHARS] for r in rows) for rows in nearest_rows])
    mean_distance = np.bincount(clusters, weights=result.distance, minlength=k) / sizes
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
                "reassigned": {s: int(result.moved[s][c]) for s in SPLITS},
                "snippets": [
                    {
                        "domain": labels[result.domain[r]],
                        "split": SPLITS[result.split[r]],
                        "text": texts[r][:SNIPPET_CHARS],
                    }
                    for r in nearest_rows[c][:SNIPPETS]
                ],
                "terms": terms[c],
            }
        )
    return described


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
