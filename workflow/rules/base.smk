TRAIN_BASE = {
    "domains": lambda wc: domains(wc.dataset),
    "model": lambda wc: DATASETS[wc.dataset]["models"]["base"],
    "train": seeded_schedule,
}


rule train_base:
    """A base model trained on the dataset with one mixture and one seed; resumes from its
    last checkpoint."""
    input:
        tokens=lambda wc: token_files(wc.dataset, "stats.json"),
        bins=lambda wc: token_files(wc.dataset, "train.bin"),
        tokenizer=lambda wc: tokenizer_path(proxy_of(wc.dataset)),
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
        gpu=lambda wc: model_gpus(wc.dataset),
        mem_mb=32000,
        runtime=lambda wc, attempt: 1440 * attempt,
    params:
        **TRAIN_BASE,
        job=training_job(TRAIN_BASE),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch train_base {params.job:q} {log:q} {threads}"
