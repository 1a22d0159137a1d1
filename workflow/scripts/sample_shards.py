from dataclasses import asdict
from pathlib import Path

from chameleon_mix.io import logged
from chameleon_mix.shards import sample_domain

with logged(snakemake.log[0]):
    stats = sample_domain(
        snakemake.wildcards.domain,
        dict(snakemake.params.source),
        dict(snakemake.params.splits),
        snakemake.params.seed,
        Path(snakemake.output.train).parent,
        snakemake.params.min_chars,
        snakemake.params.max_bad_fraction,
        partition_dir=snakemake.input.get("partition"),
    )
    print(asdict(stats))
