from chameleon_mix.corpus_stats import write_corpus_stats
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    stats = write_corpus_stats(
        snakemake.output[0],
        snakemake.wildcards.dataset,
        list(snakemake.params.domains),
        list(snakemake.input.shard_stats),
        list(snakemake.input.token_stats),
    )
    for domain, entry in stats["domains"].items():
        print(
            f"{domain}\t{entry['documents']:,} documents\t{entry['bytes']:,} bytes\t"
            f"{entry['tokens']:,.0f} ± {entry['tokens_stderr']:,.0f} tokens\t"
            f"share {stats['natural'][domain]:.4f}"
        )
