from pathlib import Path

from chameleon_mix.doge import train_doge
from chameleon_mix.io import logged
from chameleon_mix.tokens import token_dirs

with logged(snakemake.log[0], threads=snakemake.threads):
    method = snakemake.params.method  # the dataset's baselines.doge, without its train
    train_doge(
        tokens=token_dirs(snakemake.params.domains, snakemake.input.tokens),
        tokenizer_dir=snakemake.input.tokenizer,
        model=snakemake.params.model,
        train_config=dict(snakemake.params.train),
        out_dir=Path(snakemake.output.model).parent,
        mu=method["mu"],
        lr=method["lr"],
        grad_clip=method["grad_clip"],
        target=method["target"],
    )
