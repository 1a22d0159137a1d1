from pathlib import Path

from chameleon_mix.evaluate import domain_perplexities
from chameleon_mix.io import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    domain_perplexities(
        snakemake.input.model,
        {
            domain: Path(stats).parent
            for domain, stats in zip(snakemake.params.domains, snakemake.input.tokens, strict=True)
        },
        snakemake.output[0],
        batch_size=snakemake.params.batch_size,
    )
