from chameleon_mix.io import logged
from chameleon_mix.sensitivity import sensitivity_stage
from chameleon_mix.weights import embedding_table

embedders, domains = snakemake.params.embedders, snakemake.params.domains
with logged(snakemake.log[0]):
    sensitivity_stage(
        embedding_files=embedding_table(embedders, domains, snakemake.input.embeddings),
        settings=dict(snakemake.params.settings),
        outputs=dict(snakemake.output.items()),
        dataset=snakemake.wildcards.dataset,
        checkpoint_files={
            int(name.removeprefix("step_")): embedding_table(embedders, domains, files)
            for name, files in snakemake.input.items()
            if name.startswith("step_")
        },
    )
