from pathlib import Path

from chameleon_mix.io import logged
from chameleon_mix.mixtures import read_mixture
from chameleon_mix.tokens import token_dirs
from chameleon_mix.train import train_from_scratch

with logged(snakemake.log[0], threads=snakemake.threads):
    domains = list(snakemake.params.domains)
    train_from_scratch(
        tokens=token_dirs(domains, snakemake.input.tokens),
        tokenizer_dir=snakemake.input.tokenizer,
        model=snakemake.params.model,
        train_config=dict(snakemake.params.train),
        out_dir=Path(snakemake.output.model).parent,
        weights=read_mixture(snakemake.input.mixture, domains),
    )
