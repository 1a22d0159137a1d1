from chameleon_mix.io import logged
from chameleon_mix.shards import partition_source

with logged(snakemake.log[0]):
    index = partition_source(
        dict(snakemake.params.source),
        snakemake.params.domain_field,
        snakemake.params.per_value,
        snakemake.params.seed,
        snakemake.output[0],
        snakemake.params.min_chars,
        snakemake.params.max_bad_fraction,
    )
    for value, entry in index.items():
        print(f"{value}\t{entry['documents']}")
