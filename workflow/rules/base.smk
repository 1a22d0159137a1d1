TRAIN_BASE = {
    "domains": get_domains,
    "model": get_setting("models", "base"),
    "train": lambda wc: get_dataset(wc).seeded_schedule(wc.seed),
}


rule train_base:
    """A base model trained on the dataset with one mixture and one seed; resumes from its
    last checkpoint."""
    input:
        tokens=get_token_files("stats.json"),
        bins=get_token_files("train.bin"),
        tokenizer=get_tokenizer,
        mixture="results/{dataset}/mixtures/{method}.json",
    output:
        model=directory("results/{dataset}/base/{method}/seed-{seed}/model"),
        log_json="results/{dataset}/base/{method}/seed-{seed}/train_log.json",
    log:
        "results/logs/{dataset}/base/{method}/seed-{seed}.log",
    benchmark:
        "results/benchmarks/{dataset}/base/{method}/seed-{seed}.tsv"
    retries: 2
    conda:
        "../../envs/chameleon.yaml"
    threads: 2
    resources:
        gpu=get_gpus("base"),
        mem_mb=32000,
        runtime=lambda wc, attempt: 1440 * attempt,
    params:
        **TRAIN_BASE,
        job=training_job(TRAIN_BASE),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch train_base {params.job:q} {log:q} {threads}"
