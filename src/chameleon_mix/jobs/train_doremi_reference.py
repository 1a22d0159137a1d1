from pathlib import Path

from chameleon_mix.doremi import reference_weights
from chameleon_mix.io import logged
from chameleon_mix.tokens import token_dirs
from chameleon_mix.train import train_from_scratch

with logged(snakemake.log[0], threads=snakemake.threads):
    tokens = token_dirs(snakemake.params.domains, snakemake.input.tokens)
    train_from_scratch(
        tokens=tokens,
        tokenizer_dir=snakemake.input.tokenizer,
        model=snakemake.params.model,
        train_config=dict(snakemake.params.train),
        out_dir=Path(snakemake.output.model).parent,
        weights=reference_weights(
            snakemake.params.mixture, list(tokens), getattr(snakemake.input, "corpus_stats", None)
        ),
    )
