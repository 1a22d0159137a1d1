from chameleon_mix.evaluate import domain_perplexities
from chameleon_mix.io import logged
from chameleon_mix.tokens import token_dirs

with logged(snakemake.log[0], threads=snakemake.threads):
    domain_perplexities(
        snakemake.input.model,
        token_dirs(snakemake.params.domains, snakemake.input.tokens),
        snakemake.output[0],
        batch_size=snakemake.params.batch_size,
    )
