import os
from pathlib import Path

from chameleon_mix.io import logged
from chameleon_mix.tokens import write_token_files

# The tokenizers library encodes batches on a Rust thread pool sized when it is first used.
os.environ["RAYON_NUM_THREADS"] = str(snakemake.threads)

with logged(snakemake.log[0]):
    write_token_files(
        shards={split: snakemake.input[split] for split in ("train", "val", "test")},
        tokenizer_dir=snakemake.input.tokenizer,
        out_dir=Path(snakemake.output.stats).parent,
    )
