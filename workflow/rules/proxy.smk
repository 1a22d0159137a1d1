rule train_tokenizer:
    """Byte-level BPE on the proxy's own training shards."""
    input:
        proxy_train_shards,
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
        vocab_size=lambda wc: PROXIES[wc.proxy]["tokenizer"]["vocab_size"],
        train_documents=lambda wc: PROXIES[wc.proxy]["tokenizer"]["train_documents"],
    script:
        "../scripts/train_tokenizer.py"


TRAIN_PROXY = {
    "domains": lambda wc: proxy_domains(wc.proxy),
    "model": lambda wc: PROXIES[wc.proxy]["model"],
    "train": proxy_replicate_schedule,
}


rule train_proxy:
    """One replicate of the proxy LM (its seed apart, all alike), trained with uniform domain
    weights; resumes from its last checkpoint."""
    input:
        tokens=lambda wc: proxy_token_files(wc.proxy, "stats.json"),
        bins=lambda wc: proxy_token_files(wc.proxy, "train.bin"),
        tokenizer=lambda wc: tokenizer_path(wc.proxy),
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
        gpu=lambda wc: proxy_gpus(wc.proxy),
        mem_mb=32000,
        runtime=lambda wc, attempt: 720 * attempt,
    params:
        **TRAIN_PROXY,
        job=training_job(TRAIN_PROXY),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch train_proxy {params.job:q} {log:q} {threads}"
