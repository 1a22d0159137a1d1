from pathlib import Path

from chameleon_mix.doremi import train_doremi
from chameleon_mix.io import logged
from chameleon_mix.tokens import token_dirs

with logged(snakemake.log[0], threads=snakemake.threads):
    method = snakemake.params.method  # the dataset's baselines.doremi, without its train
    train_doremi(
        tokens=token_dirs(snakemake.params.domains, snakemake.input.tokens),
        tokenizer_dir=snakemake.input.tokenizer,
        reference_dir=snakemake.input.reference,
        model=snakemake.params.model,
        train_config=dict(snakemake.params.train),
        out_dir=Path(snakemake.output.model).parent,
        eta=method["eta"],
        eps=method["eps"],
    )
