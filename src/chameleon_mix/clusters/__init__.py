"""Clustered datasets: the documents of a labelled dataset regrouped into k embedding clusters.

A dataset with ``domains: {cluster: {k, dataset, ...}}`` pools every document of the train,
val and test shards of another pretraining dataset (the *source*) and makes each of k k-means
clusters of their embeddings a domain (``c00``, ``c01``, ...), so every later stage (domain
embeddings, weights, base training, evaluation, export) runs on clusters unchanged.

1. :mod:`.documents` (rule ``embed_documents``): one vector per document, its first window
   embedded by the dataset's proxy; the documents' texts read back from the source's shards.
2. :mod:`.kmeans`: seeded k-means on a sample of the train documents, every document assigned
   to its nearest centroid within its own split, each cluster filled to a minimum per split.
3. :mod:`.report` (rule ``cluster_documents``): the assignment written out (the assignments
   file of :mod:`.assignments`, the centroids) with ``clusters.json``/``clusters.md``, which
   describe each cluster for a person; and the comparison of the models of a clustered dataset
   on the source's labelled test domains (rule ``labelled_report``).
4. :mod:`.assignments` (rule ``sample_shards``, per cluster): the cluster's rows of the
   assignments file, one row group per cluster, as the usual train/val/test shards.

``python -m chameleon_mix.clusters <cluster dir> --k K`` refits the clusters with another k
(:func:`.kmeans.refit`) and prints their adjusted Rand index against the source labels.
"""


def cluster_names(k: int) -> list[str]:
    """Domain names of k clusters: "c00", "c01", ..., zero-padded to the width of k - 1 and
    at least 2 digits."""
    if k < 1:
        raise ValueError(f"a clustered dataset needs cluster.k >= 1 clusters, got {k}")
    width = max(2, len(str(k - 1)))
    return [f"c{i:0{width}d}" for i in range(k)]
