from chameleon_mix.export import export_mixture
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    export_mixture(
        mixture=snakemake.input.mixture,
        domains=snakemake.params.domains,
        manifest=snakemake.input.manifest,
        out_dir=snakemake.output[0],
        data=snakemake.params.data,
        budget=snakemake.params.budget,
        eval_prefixes={blend: dict(p) for blend, p in snakemake.params.eval_prefixes.items()},
        **snakemake.params.run,
    )
