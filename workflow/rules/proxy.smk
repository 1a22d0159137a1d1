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


rule train_proxy:
    """The proxy LM, trained with uniform domain weights; resumes from its last checkpoint."""
    input:
        shards=proxy_train_shards,
        tokenizer=lambda wc: tokenizer_path(wc.proxy),
    output:
        model=directory("results/proxies/{proxy}/model"),
        log_json="results/proxies/{proxy}/train_log.json",
    log:
        "results/logs/proxies/{proxy}/train.log",
    benchmark:
        "results/benchmarks/proxies/{proxy}/train.tsv"
    retries: 2
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        gpu=lambda wc: proxy_gpus(wc.proxy),
        mem_mb=32000,
        runtime=lambda wc, attempt: 720 * attempt,
    params:
        domains=lambda wc: proxy_domains(wc.proxy),
        model=lambda wc: PROXIES[wc.proxy]["model"],
        train=lambda wc: PROXIES[wc.proxy]["train"],
    script:
        "../scripts/train_proxy.py"
