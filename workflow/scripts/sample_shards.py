from dataclasses import asdict
from pathlib import Path

from chameleon_mix.clusters.assignments import cluster_shards
from chameleon_mix.io import logged
from chameleon_mix.shards import sample_domain, sample_partition

with logged(snakemake.log[0]):
    source = dict(snakemake.params.source)
    out_dir = Path(snakemake.output.train).parent
    if "cluster" in source:  # a clustered dataset's domain: its rows of the assignments
        stats = cluster_shards(
            snakemake.wildcards.domain,
            source["cluster"],
            snakemake.input.assignments,
            snakemake.params.seed,
            out_dir,
        )
    elif "partition" in source:
        stats = sample_partition(
            snakemake.wildcards.domain,
            source["partition"],
            list(zip(snakemake.input.parts, snakemake.input.part_stats)),
            dict(snakemake.params.splits),
            out_dir,
            snakemake.params.min_chars,
            snakemake.params.max_bad_fraction,
        )
    else:
        stats = sample_domain(
            snakemake.wildcards.domain,
            source,
            dict(snakemake.params.splits),
            snakemake.params.seed,
            out_dir,
            snakemake.params.min_chars,
            snakemake.params.max_bad_fraction,
        )
    print(asdict(stats))
