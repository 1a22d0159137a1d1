from chameleon_mix.corpus import collect
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    n = collect(
        snakemake.wildcards.collector,
        snakemake.output.documents,
        snakemake.output.manifest,
        max_documents=snakemake.params.max_documents,
        max_chars=snakemake.params.max_chars,
        max_rejected_fraction=snakemake.params.max_rejected_fraction,
    )
    print(f"{snakemake.wildcards.collector}: {n} documents")
