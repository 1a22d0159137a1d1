from chameleon_mix.io import logged
from chameleon_mix.regmix import regmix_mixture

with logged(snakemake.log[0]):
    regmix_mixture(
        snakemake.output[0],
        list(snakemake.params.domains),
        list(snakemake.input),
        target=snakemake.params.target,
        candidates=snakemake.params.candidates,
        top_k=snakemake.params.top_k,
        seed=snakemake.params.seed,
    )
