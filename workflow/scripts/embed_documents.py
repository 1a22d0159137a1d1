from pathlib import Path

from chameleon_mix.clusters.documents import embed_documents_to_files
from chameleon_mix.io import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    # Every part's token directory; `tokens` holds one stats.json per part, in part order.
    embed_documents_to_files(
        model_dir=snakemake.input.model,
        parts=[
            (domain, split, Path(stats).parent)
            for (domain, split), stats in zip(snakemake.params.parts, snakemake.input.tokens)
        ],
        settings=dict(snakemake.params.embedding),
        out_vectors=snakemake.output.vectors,
        out_info=snakemake.output.info,
        model_name=snakemake.params.model_name,
    )
