from chameleon_mix.io import logged
from chameleon_mix.mixtures import chameleon_mixture, human_mixture, uniform_mixture

with logged(snakemake.log[0]):
    out, domains = snakemake.output[0], list(snakemake.params.domains)
    if snakemake.rule == "mixture_uniform":
        uniform_mixture(out, domains)
    elif snakemake.rule == "mixture_human":
        human_mixture(out, domains, dict(snakemake.params.weights))
    else:
        control = snakemake.rule == "mixture_chameleon_pt"
        chameleon_mixture(
            out,
            domains,
            snakemake.input.weights,
            snakemake.input.get("proxy_log"),
            snakemake.params.reused_proxy,
            method="chameleon_pt" if control else "chameleon",
            stage="pretrain" if control else None,
        )
