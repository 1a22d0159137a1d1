DOREMI_REFERENCE = {
    "domains": lambda wc: domains(wc.dataset),
    "model": lambda wc: DATASETS[wc.dataset]["models"]["doremi"],
    "train": lambda wc: schedule(wc.dataset, "doremi_reference"),
    "mixture": lambda wc: DATASETS[wc.dataset]["baselines"]["doremi"]["reference"],
}


rule doremi_reference:
    """DoReMi's reference model on the dataset's domains, uniform or by their token shares
    (baselines.doremi.reference), with DoReMi's model and schedule; only when the uniform
    proxy is not that model already."""
    input:
        tokens=lambda wc: token_files(wc.dataset, "stats.json"),
        bins=lambda wc: token_files(wc.dataset, "train.bin"),
        tokenizer=lambda wc: tokenizer_path(proxy_of(wc.dataset)),
    output:
        model=directory("results/{dataset}/doremi/reference/model"),
        log_json="results/{dataset}/doremi/reference/train_log.json",
    log:
        "results/logs/{dataset}/doremi/reference.log",
    benchmark:
        "results/benchmarks/{dataset}/doremi/reference.tsv"
    retries: 2
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        gpu=lambda wc: proxy_gpus(proxy_of(wc.dataset)),
        mem_mb=32000,
        runtime=lambda wc, attempt: 720 * attempt,
    params:
        **DOREMI_REFERENCE,
        job=training_job(DOREMI_REFERENCE),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch train_doremi_reference {params.job:q} {log:q} {threads}"


REWEIGHTED_PROXY = {
    "domains": lambda wc: domains(wc.dataset),
    "model": lambda wc: DATASETS[wc.dataset]["models"][wc.method],
    "train": lambda wc: schedule(wc.dataset, wc.method),
    "method": method_settings,
}


rule train_reweighted_proxy:
    """The proxy of a method that reweights the domains while it trains (DoReMi: Group DRO
    against the reference; DoGE: per-domain gradient alignment); records the weights."""
    input:
        unpack(reweighted_proxy_inputs),
        tokens=lambda wc: token_files(wc.dataset, "stats.json"),
        bins=lambda wc: token_files(wc.dataset, "train.bin"),
        tokenizer=lambda wc: tokenizer_path(proxy_of(wc.dataset)),
    output:
        model=directory("results/{dataset}/{method}/proxy/model"),
        log_json="results/{dataset}/{method}/proxy/train_log.json",
    log:
        "results/logs/{dataset}/{method}/proxy.log",
    benchmark:
        "results/benchmarks/{dataset}/{method}/proxy.tsv"
    wildcard_constraints:
        method="|".join(reweighted_proxies()),
    retries: 2
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        gpu=lambda wc: proxy_gpus(proxy_of(wc.dataset)),
        mem_mb=32000,
        runtime=lambda wc, attempt: 720 * attempt,
    params:
        **REWEIGHTED_PROXY,
        job=training_job(REWEIGHTED_PROXY),
        module=lambda wc: METHODS[wc.method].job,
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch {params.module} {params.job:q} {log:q} {threads}"


REGMIX_RUN = {
    "domains": lambda wc: domains(wc.dataset),
    "model": lambda wc: DATASETS[wc.dataset]["models"]["regmix"],
    "train": lambda wc: schedule(wc.dataset, "regmix"),
    "settings": lambda wc: regmix_run_settings(wc.dataset),
}


rule regmix_run:
    """One RegMix run: a small model trained on the run's sampled mixture, then its
    validation loss on every domain (independent jobs, in parallel on a cluster)."""
    input:
        tokens=lambda wc: token_files(wc.dataset, "stats.json"),
        bins=lambda wc: token_files(wc.dataset, "train.bin"),
        val_bins=lambda wc: token_files(wc.dataset, "val.bin"),
        val_offsets=lambda wc: token_files(wc.dataset, "val.offsets.npy"),
        tokenizer=lambda wc: tokenizer_path(proxy_of(wc.dataset)),
    output:
        "results/{dataset}/regmix/runs/{run}.json",
    log:
        "results/logs/{dataset}/regmix/runs/{run}.log",
    benchmark:
        "results/benchmarks/{dataset}/regmix/runs/{run}.tsv"
    wildcard_constraints:
        run=r"\d+",
    retries: 2
    conda:
        "../../envs/chameleon.yaml"
    threads: 1
    resources:
        gpu=lambda wc: proxy_gpus(proxy_of(wc.dataset)),
        mem_mb=16000,
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        **REGMIX_RUN,
        job=training_job(REGMIX_RUN),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch regmix_run {params.job:q} {log:q} {threads}"
