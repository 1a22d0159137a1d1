import os

from chameleon_mix.by_domain import own_source_parts
from chameleon_mix.io import logged

# The tokenizers library encodes batches on a Rust thread pool sized when it is first used.
os.environ["RAYON_NUM_THREADS"] = str(snakemake.threads)

with logged(snakemake.log[0]):
    counts = own_source_parts(
        snakemake.wildcards.domain,
        dict(snakemake.params.source),
        snakemake.params.first_part,
        snakemake.params.out_dir,
        snakemake.output[0],
        snakemake.input.tokenizer,
    )
    for part in counts["parts"].get(snakemake.wildcards.domain, []):
        print(f"{part['text']}\t{part['records']} records\t{part['tokens']} tokens")
