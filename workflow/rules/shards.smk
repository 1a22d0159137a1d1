rule partition_source:
    """One pass over a dataset's mixed source, keeping a sample of every domain value."""
    output:
        directory("results/{dataset}/partition"),
    log:
        "results/logs/{dataset}/partition.log",
    benchmark:
        "results/benchmarks/{dataset}/partition.tsv"
    conda:
        "../../envs/chameleon.yaml"
    resources:
        mem_mb=16000,
        runtime=720,
    params:
        source=lambda wc: DATASETS[wc.dataset]["source"],
        domain_field=lambda wc: DATASETS[wc.dataset]["domain_field"],
        per_value=lambda wc: sum(splits(wc).values()),
        seed=lambda wc: DATASETS[wc.dataset]["seed"],
        min_chars=lambda wc: DATASETS[wc.dataset]["min_chars"],
        max_bad_fraction=lambda wc: DATASETS[wc.dataset]["max_bad_fraction"],
    script:
        "../scripts/partition_source.py"


rule sample_shards:
    """Deterministic train/val/test shards of one domain."""
    input:
        unpack(shard_inputs),
    output:
        train="results/{dataset}/shards/{domain}/train.parquet",
        val="results/{dataset}/shards/{domain}/val.parquet",
        test="results/{dataset}/shards/{domain}/test.parquet",
        stats="results/{dataset}/shards/{domain}/stats.json",
    log:
        "results/logs/{dataset}/shards/{domain}.log",
    benchmark:
        "results/benchmarks/{dataset}/shards/{domain}.tsv"
    conda:
        "../../envs/chameleon.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
    params:
        source=shard_source,
        splits=splits,
        seed=lambda wc: DATASETS[wc.dataset]["seed"],
        min_chars=lambda wc: DATASETS[wc.dataset]["min_chars"],
        max_bad_fraction=lambda wc: DATASETS[wc.dataset]["max_bad_fraction"],
    script:
        "../scripts/sample_shards.py"
