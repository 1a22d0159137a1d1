from pathlib import Path

import torch

from chameleon_mix.io import logged
from chameleon_mix.mixtures import read_mixture
from chameleon_mix.train import train_from_scratch

with logged(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)  # share the cores with parallel jobs
    domains = list(snakemake.params.domains)
    train_from_scratch(
        shards=dict(zip(domains, snakemake.input.shards, strict=True)),
        tokenizer_dir=snakemake.input.tokenizer,
        model=snakemake.params.model,
        train_config=dict(snakemake.params.train),
        out_dir=Path(snakemake.output.model).parent,
        weights=read_mixture(snakemake.input.mixture, domains),
    )
