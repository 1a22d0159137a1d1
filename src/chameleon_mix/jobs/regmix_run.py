from pathlib import Path

from chameleon_mix.corpus_stats import natural_shares
from chameleon_mix.io import logged
from chameleon_mix.regmix import regmix_run
from chameleon_mix.tokens import token_dirs

TARGET_STATS = getattr(snakemake.input, "target_stats_json", None)  # the target's tokens

with logged(snakemake.log[0], threads=snakemake.threads):
    domains = list(snakemake.params.domains)
    settings = dict(snakemake.params.settings)
    regmix_run(
        int(snakemake.wildcards.run),
        tokens=token_dirs(domains, snakemake.input.tokens),
        tokenizer_dir=snakemake.input.tokenizer,
        model=snakemake.params.model,
        train_config=dict(snakemake.params.train),
        out_json=snakemake.output[0],
        seed=settings["seed"],
        concentrations=list(settings["concentrations"]),
        temperature=settings["temperature"],
        prior=dict(settings["prior"] or natural_shares(snakemake.input.corpus_stats, domains)),
        max_usage=settings["max_usage"],
        scored_only={Path(TARGET_STATS).parent.name: Path(TARGET_STATS).parent}
        if TARGET_STATS
        else None,
    )
