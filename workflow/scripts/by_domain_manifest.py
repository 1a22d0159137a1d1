from chameleon_mix.by_domain import write_manifest
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    manifest = write_manifest(
        snakemake.wildcards.dataset,
        list(snakemake.input),
        list(snakemake.params.domains),
        snakemake.params.tokenizer_source,
        snakemake.params.max_bad_fraction,
        snakemake.output[0],
    )
    for domain, entry in manifest["domains"].items():
        print(
            f"{domain}\t{len(entry['parts'])} parts\t{entry['records']} records\t"
            f"{entry['tokens']} tokens"
        )
