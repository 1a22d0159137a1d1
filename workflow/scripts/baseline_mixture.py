from chameleon_mix.doge import doge_mixture
from chameleon_mix.doremi import doremi_mixture
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    out, domains = snakemake.output[0], list(snakemake.params.domains)
    if snakemake.rule == "mixture_doremi":
        doremi_mixture(
            out,
            domains,
            snakemake.input.proxy_log,
            snakemake.input.reference_log,
            snakemake.params.reference_reused,
        )
    else:
        doge_mixture(out, domains, snakemake.input.proxy_log)
