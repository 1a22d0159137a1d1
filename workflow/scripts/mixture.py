from chameleon_mix.io import logged
from chameleon_mix.mixtures import make_mixture

with logged(snakemake.log[0]):
    make_mixture(
        snakemake.wildcards.method,
        snakemake.output[0],
        list(snakemake.params.domains),
        dict(snakemake.input.items()),
        dict(snakemake.params.settings),
        snakemake.params.budget,
        f"datasets.{snakemake.wildcards.dataset}.budget",
    )
