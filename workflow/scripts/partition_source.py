from chameleon_mix.io import logged
from chameleon_mix.shards import partition_part

with logged(snakemake.log[0]):
    stats = partition_part(
        dict(snakemake.params.source),
        snakemake.params.domain_field,
        dict(snakemake.params.sample_sizes),
        snakemake.params.seed,
        snakemake.output.sample,
        snakemake.output.stats,
        snakemake.params.min_chars,
    )
    for value, count in stats["values"].items():
        print(f"{value}\t{count['records']} records\t{count['sampled']} sampled")
    read = stats["read"]
    print(f"{read['records']} records read; unusable: {read['files'] or 'none'}")
