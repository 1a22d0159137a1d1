rule train_tokenizer:
    """Byte-level BPE on the proxy's own training shards."""
    input:
        lambda wc: get_proxy(wc).train_shards(),
    output:
        directory("results/proxies/{proxy}/tokenizer"),
    log:
        "results/logs/proxies/{proxy}/tokenizer.log",
    benchmark:
        "results/benchmarks/proxies/{proxy}/tokenizer.tsv"
    conda:
        "../../envs/chameleon.yaml"
    resources:
        mem_mb=16000,
        runtime=120,
    params:
        vocab_size=lambda wc: get_proxy(wc).settings["tokenizer"]["vocab_size"],
        train_documents=lambda wc: get_proxy(wc).settings["tokenizer"][
            "train_documents"
        ],
    script:
        "../scripts/train_tokenizer.py"


TRAIN_PROXY = {
    "domains": lambda wc: get_proxy(wc).domains,
    "model": lambda wc: get_proxy(wc).settings["model"],
    "train": lambda wc: get_proxy(wc).schedule(wc.seed),
}


rule train_proxy:
    """One replicate of the proxy LM (its seed apart, all alike), trained with uniform domain
    weights; resumes from its last checkpoint."""
    input:
        tokens=lambda wc: get_proxy(wc).token_files("stats.json"),
        bins=lambda wc: get_proxy(wc).token_files("train.bin"),
        tokenizer=lambda wc: get_proxy(wc).tokenizer,
    output:
        model=directory("results/proxies/{proxy}/seed-{seed}/model"),
        log_json="results/proxies/{proxy}/seed-{seed}/train_log.json",
    log:
        "results/logs/proxies/{proxy}/seed-{seed}/train.log",
    benchmark:
        "results/benchmarks/proxies/{proxy}/seed-{seed}/train.tsv"
    retries: 2
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        gpu=lambda wc: get_proxy(wc).gpus,
        mem_mb=32000,
        runtime=lambda wc, attempt: 720 * attempt,
    params:
        **TRAIN_PROXY,
        job=training_job(TRAIN_PROXY),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch train_proxy {params.job:q} {log:q} {threads}"
