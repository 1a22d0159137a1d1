from pathlib import Path

from chameleon_mix.export import export_mixture
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    domains = snakemake.params.domains
    export_mixture(
        mixture=snakemake.input.mixture,
        domains=domains,
        token_dirs=dict(zip(domains, (Path(s).parent for s in snakemake.input.stats))),
        train_shards=dict(zip(domains, snakemake.input.train_shards)),
        data_root=Path(snakemake.output[0]).parent,
        out_dir=snakemake.output[0],
        global_batch_tokens=snakemake.params.global_batch_tokens,
    )
