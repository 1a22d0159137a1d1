from pathlib import Path

from chameleon_mix.doge import train_doge
from chameleon_mix.io import logged
from chameleon_mix.tokens import token_dirs

with logged(snakemake.log[0], threads=snakemake.threads):
    train_doge(
        tokens=token_dirs(snakemake.params.domains, snakemake.input.tokens),
        tokenizer_dir=snakemake.input.tokenizer,
        model=snakemake.params.model,
        train_config=dict(snakemake.params.train),
        out_dir=Path(snakemake.output.model).parent,
        mu=snakemake.params.mu,
        lr=snakemake.params.lr,
    )
