from chameleon_mix.io import logged
from chameleon_mix.weights import embedding_table, weights_stage

with logged(snakemake.log[0]):
    weights_stage(
        embedding_files=embedding_table(
            snakemake.params.embedders, snakemake.params.domains, snakemake.input.embeddings
        ),
        corpus_manifests=dict(
            zip(snakemake.params.collected_domains, snakemake.input.corpus_manifests, strict=True)
        ),
        settings=dict(snakemake.params.settings),
        outputs=dict(snakemake.output.items()),
        metadata={
            "dataset": snakemake.wildcards.dataset,
            "proxy": snakemake.params.proxy,
            "embedding_model": snakemake.params.model_name,
        },
    )
