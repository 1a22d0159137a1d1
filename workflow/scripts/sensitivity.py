from chameleon_mix.io import logged
from chameleon_mix.sensitivity import sensitivity_stage

domains = snakemake.params.domains
with logged(snakemake.log[0]):
    sensitivity_stage(
        embedding_files=dict(zip(domains, snakemake.input.embeddings, strict=True)),
        sample_files=dict(zip(domains, snakemake.input.samples, strict=True)),
        settings=dict(snakemake.params.settings),
        outputs=dict(snakemake.output.items()),
        dataset=snakemake.wildcards.dataset,
        checkpoint_files={
            int(name.removeprefix("step_")): dict(zip(domains, files, strict=True))
            for name, files in snakemake.input.items()
            if name.startswith("step_")
        },
    )
