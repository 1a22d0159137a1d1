from pathlib import Path

from chameleon_mix.doremi import train_doremi
from chameleon_mix.io import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    train_doremi(
        tokens={
            domain: Path(stats).parent
            for domain, stats in zip(snakemake.params.domains, snakemake.input.tokens, strict=True)
        },
        tokenizer_dir=snakemake.input.tokenizer,
        reference_dir=snakemake.input.reference,
        model=snakemake.params.model,
        train_config=dict(snakemake.params.train),
        out_dir=Path(snakemake.output.model).parent,
        eta=snakemake.params.eta,
        eps=snakemake.params.eps,
    )
