from pathlib import Path

from chameleon_mix.embed import embed_domain_to_files
from chameleon_mix.io import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    embed_domain_to_files(
        model_dir=snakemake.input.model,
        checkpoint=snakemake.wildcards.ckpt,
        token_dir=Path(snakemake.input.tokens).parent,
        settings=dict(snakemake.params.embedding),
        out_embedding=snakemake.output.embedding,
        out_samples=snakemake.output.samples,
        out_info=snakemake.output.info,
        model_name=snakemake.params.model_name,
    )
