from chameleon_mix.io import logged
from chameleon_mix.methods import method

with logged(snakemake.log[0]):
    method(snakemake.wildcards.method).make(
        snakemake.output[0],
        list(snakemake.params.domains),
        dict(snakemake.input.items()),
        dict(snakemake.params.settings),
    )
