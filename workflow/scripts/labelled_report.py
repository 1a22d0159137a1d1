from chameleon_mix.clusters.report import labelled_comparison
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    labelled_comparison(
        {name: list(files) for name, files in snakemake.params.models.items()},
        list(snakemake.params.labels),
        snakemake.output.md,
        snakemake.output.csv,
    )
