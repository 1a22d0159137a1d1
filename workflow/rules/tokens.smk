rule tokenize_domain:
    """One domain's shards as flat token files (ids, document offsets, stats), written once with
    the dataset's tokenizer; training, embedding and perplexity memory-map them."""
    input:
        train="results/{dataset}/shards/{domain}/train.parquet",
        val="results/{dataset}/shards/{domain}/val.parquet",
        test="results/{dataset}/shards/{domain}/test.parquet",
        tokenizer=get_tokenizer,
    output:
        train="results/{dataset}/tokens/{domain}/train.bin",
        train_offsets="results/{dataset}/tokens/{domain}/train.offsets.npy",
        val="results/{dataset}/tokens/{domain}/val.bin",
        val_offsets="results/{dataset}/tokens/{domain}/val.offsets.npy",
        test="results/{dataset}/tokens/{domain}/test.bin",
        test_offsets="results/{dataset}/tokens/{domain}/test.offsets.npy",
        stats="results/{dataset}/tokens/{domain}/stats.json",
    log:
        "results/logs/{dataset}/tokens/{domain}.log",
    benchmark:
        "results/benchmarks/{dataset}/tokens/{domain}.tsv"
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        mem_mb=8000,
        runtime=240,
    script:
        "../scripts/tokenize_domain.py"


rule corpus_stats:
    """Each domain's documents, bytes and estimated tokens over its whole source, and their
    shares (the natural mixture): from the counts the sampling jobs made while reading and
    the tokens per byte of the tokenized shards."""
    input:
        unpack(lambda wc: get_dataset(wc).corpus_stats_inputs()),
    output:
        "results/{dataset}/corpus_stats.json",
    log:
        "results/logs/{dataset}/corpus_stats.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=get_domains,
    script:
        "../scripts/corpus_stats.py"
