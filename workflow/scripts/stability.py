from chameleon_mix.io import logged
from chameleon_mix.weights import embedding_table, stability_stage

with logged(snakemake.log[0]):
    stability_stage(
        embedding_files={
            int(name.removeprefix("step_")): embedding_table(
                snakemake.params.embedders, snakemake.params.domains, files
            )
            for name, files in snakemake.input.items()
        },
        settings=dict(snakemake.params.settings),
        out_table=snakemake.output.table,
        out_plot=snakemake.output.plot,
    )
