"""Chameleon data mixing: sample domains, train a proxy, embed domains, weight them by KRLS."""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


include: "workflow/rules/common.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/shards.smk"
include: "workflow/rules/clusters.smk"
include: "workflow/rules/tokens.smk"
include: "workflow/rules/proxy.smk"
include: "workflow/rules/embed.smk"
include: "workflow/rules/weights.smk"
include: "workflow/rules/sensitivity.smk"
include: "workflow/rules/mixtures.smk"
include: "workflow/rules/base.smk"
include: "workflow/rules/baselines.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/by_domain.smk"


# Light rules run where snakemake runs, also under the SLURM profile (profiles/slurm).
localrules:
    all,
    finetune_demo,
    weights,
    stability,
    sensitivity,
    mixture,
    corpus_stats,
    report,
    export,
    by_domain_manifest,


rule all:
    default_target: True
    input:
        f"results/{DEFAULT_DATASET}/weights.json",


# The finetuning scenario end to end on the embedded demos: pretrain (demo) -> FT weights ->
# finetune uniform / chameleon / chameleon_pt -> reports.
rule finetune_demo:
    input:
        [
            f"results/{dataset}/report/comparison.md"
            for dataset in ("demo-languages", "demo-code")
            if dataset in PLAN.datasets
        ],
