rule partition_source:
    """A sample of every domain value in one group of a mixed source's files: these jobs
    run side by side, and each domain's sample_shards merges their samples."""
    input:
        lambda wc: get_dataset(wc).partition_files(int(wc.part)),
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
        source=lambda wc: get_dataset(wc).partition_sources[int(wc.part)],
        domain_field=get_setting("domain_field"),
        sample_sizes=lambda wc: get_dataset(wc).partition_sample_sizes,
        seed=get_setting("seed"),
        min_chars=get_setting("min_chars"),
    script:
        "../scripts/partition_source.py"


rule sample_shards:
    """Deterministic train/val/test shards of one domain (for a domain of a mixed source, the
    merge of the partition's parts)."""
    input:
        unpack(lambda wc: get_dataset(wc).shard_inputs(wc.domain)),
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
        source=lambda wc: get_dataset(wc).shard_source(wc.domain),
        splits=lambda wc: get_dataset(wc).splits(wc.domain),
        seed=get_setting("seed"),
        min_chars=get_setting("min_chars"),
        max_bad_fraction=get_setting("max_bad_fraction"),
    script:
        "../scripts/sample_shards.py"
