from pathlib import Path

from chameleon_mix.doge import train_doge
from chameleon_mix.io import logged

with logged(snakemake.log[0], threads=snakemake.threads):
    train_doge(
        tokens={
            domain: Path(stats).parent
            for domain, stats in zip(snakemake.params.domains, snakemake.input.tokens, strict=True)
        },
        tokenizer_dir=snakemake.input.tokenizer,
        model=snakemake.params.model,
        train_config=dict(snakemake.params.train),
        out_dir=Path(snakemake.output.model).parent,
        mu=snakemake.params.mu,
        lr=snakemake.params.lr,
    )
