from chameleon_mix.export import export_mixture
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    eval_megatron = snakemake.params.eval_megatron
    export_mixture(
        mixture=snakemake.input.mixture,
        domains=snakemake.params.domains,
        manifest=snakemake.input.manifest,
        out_dir=snakemake.output[0],
        data=snakemake.params.data,
        budget=snakemake.params.budget,
        eval_prefixes={"valid": eval_megatron["val"], "test": eval_megatron["test"]},
        **snakemake.params.run,
    )
