from chameleon_mix.io import logged
from chameleon_mix.weights import stability_stage

with logged(snakemake.log[0]):
    stability_stage(
        embedding_files={
            int(name.removeprefix("step_")): dict(zip(snakemake.params.domains, files, strict=True))
            for name, files in snakemake.input.items()
        },
        settings=dict(snakemake.params.settings),
        out_table=snakemake.output.table,
        out_plot=snakemake.output.plot,
    )
