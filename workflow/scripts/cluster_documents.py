import faiss

from chameleon_mix.clusters.report import cluster_documents
from chameleon_mix.io import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    faiss.omp_set_num_threads(snakemake.threads)
    report = cluster_documents(
        snakemake.input.vectors,
        snakemake.input.info,
        {tuple(part): path for part, path in zip(snakemake.params.parts, snakemake.input.shards)},
        dict(snakemake.params.settings),
        snakemake.params.seed,
        snakemake.output.assignments,
        snakemake.output.centroids,
        snakemake.output.json,
        snakemake.output.md,
        dataset=snakemake.wildcards.dataset,
    )
    print(f"adjusted Rand index against the source labels: {report['adjusted_rand_index']:.4f}")
