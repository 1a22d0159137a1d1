from chameleon_mix.evaluate import build_local_tasks
from chameleon_mix.io import logged

with logged(snakemake.log[0]):
    names = build_local_tasks(
        snakemake.wildcards.dataset,
        dict(zip(snakemake.params.domains, snakemake.input.shards, strict=True)),
        snakemake.input.tokenizer,
        snakemake.output[0],
        seed=snakemake.params.seed,
        examples_per_domain=snakemake.params.examples,
    )
    print("tasks:", ", ".join(names))
