rule partition_source:
    """A sample of every domain value in one group of a mixed source's files: these jobs
    run side by side, and each domain's sample_shards merges their samples."""
    input:
        partition_files,
    output:
        sample="results/{dataset}/partition/part-{part}.parquet",
        stats="results/{dataset}/partition/part-{part}.json",
    log:
        "results/logs/{dataset}/partition/part-{part}.log",
    benchmark:
        "results/benchmarks/{dataset}/partition/part-{part}.tsv"
    wildcard_constraints:
        part=r"\d{5}",
    conda:
        "../../envs/chameleon.yaml"
    resources:
        mem_mb=16000,
        runtime=240,
    params:
        source=partition_job_source,
        domain_field=lambda wc: DATASETS[wc.dataset]["domain_field"],
        per_value=lambda wc: sum(splits(wc).values()),
        seed=lambda wc: DATASETS[wc.dataset]["seed"],
        min_chars=lambda wc: DATASETS[wc.dataset]["min_chars"],
    script:
        "../scripts/partition_source.py"


rule sample_shards:
    """Deterministic train/val/test shards of one domain (for a domain of a mixed source, the
    merge of the partition's parts)."""
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
