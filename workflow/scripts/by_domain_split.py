import os

from chameleon_mix.by_domain import split_group
from chameleon_mix.io import logged

# The tokenizers library encodes batches on a Rust thread pool sized when it is first used.
os.environ["RAYON_NUM_THREADS"] = str(snakemake.threads)

with logged(snakemake.log[0]):
    counts = split_group(
        dict(snakemake.params.source),
        snakemake.params.domain_field,
        {value: list(domains) for value, domains in snakemake.params.values.items()},
        int(snakemake.wildcards.group),
        snakemake.params.out_dir,
        snakemake.output[0],
        snakemake.input.tokenizer,
    )
    for domain, parts in counts["parts"].items():
        for part in parts:
            print(f"{domain}\t{part['records']} records\t{part['tokens']} tokens")
    read = counts["read"]
    print(f"{read['records']} records read; unusable: {read['files'] or 'none'}")
