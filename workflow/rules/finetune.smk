FINETUNE = {
    "domains": get_domains,
    "train": lambda wc: get_dataset(wc).seeded_schedule(wc.seed),
}


rule finetune:
    """The pretrained model finetuned with one mixture and one seed; resumes from its last
    checkpoint."""
    input:
        tokens=get_token_files("stats.json"),
        bins=get_token_files("train.bin"),
        pretrained=get_setting("pretrained"),
        mixture="results/{dataset}/mixtures/{method}.json",
    output:
        model=directory("results/{dataset}/finetune/{method}/seed-{seed}/model"),
        log_json="results/{dataset}/finetune/{method}/seed-{seed}/train_log.json",
    log:
        "results/logs/{dataset}/finetune/{method}/seed-{seed}.log",
    benchmark:
        "results/benchmarks/{dataset}/finetune/{method}/seed-{seed}.tsv"
    retries: 2
    conda:
        "../../envs/chameleon.yaml"
    threads: 2
    resources:
        gpu=get_gpus("pretrained"),
        mem_mb=32000,
        runtime=lambda wc, attempt: 1440 * attempt,
    params:
        **FINETUNE,
        job=training_job(FINETUNE),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch finetune {params.job:q} {log:q} {threads}"
