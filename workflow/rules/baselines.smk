DOREMI_REFERENCE = {
    "domains": get_domains,
    "model": get_setting("models", "doremi"),
    "train": lambda wc: get_dataset(wc).schedule("doremi_reference"),
    "mixture": get_setting("baselines", "doremi", "reference"),
}


rule doremi_reference:
    """DoReMi's reference model on the dataset's domains, uniform or by their corpus token
    shares (baselines.doremi.reference), with DoReMi's model and schedule; only when the uniform
    proxy is not that model already."""
    input:
        unpack(lambda wc: get_dataset(wc).doremi_reference_inputs()),
        tokens=get_token_files("stats.json"),
        bins=get_token_files("train.bin"),
        tokenizer=get_tokenizer,
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
        gpu=get_gpus("doremi"),
        mem_mb=32000,
        runtime=lambda wc, attempt: 720 * attempt,
    params:
        **DOREMI_REFERENCE,
        job=training_job(DOREMI_REFERENCE),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch train_doremi_reference {params.job:q} {log:q} {threads}"


REWEIGHTED_PROXY = {
    "domains": get_domains,
    "model": lambda wc: get_setting("models", wc.method)(wc),
    "train": lambda wc: get_dataset(wc).schedule(wc.method),
    "method": lambda wc: get_dataset(wc).baseline_settings(wc.method),
}


rule train_reweighted_proxy:
    """The proxy of a method that reweights the domains while it trains (DoReMi: Group DRO
    against the reference; DoGE: per-domain gradient alignment); records the weights."""
    input:
        unpack(get_reweighted_proxy_inputs),
        tokens=get_token_files("stats.json"),
        bins=get_token_files("train.bin"),
        tokenizer=get_tokenizer,
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
        gpu=lambda wc: get_dataset(wc).gpus(wc.method),
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
    "domains": get_domains,
    "model": get_setting("models", "regmix"),
    "train": lambda wc: get_dataset(wc).schedule("regmix"),
    "settings": lambda wc: get_dataset(wc).regmix_run_settings(),
}


rule regmix_run:
    """One RegMix run: a small model trained on the run's sampled mixture, then its
    validation loss on every domain (independent jobs, in parallel on a cluster)."""
    input:
        unpack(lambda wc: get_dataset(wc).regmix_run_inputs()),
        tokens=get_token_files("stats.json"),
        bins=get_token_files("train.bin"),
        val_bins=get_token_files("val.bin"),
        val_offsets=get_token_files("val.offsets.npy"),
        tokenizer=get_tokenizer,
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
        gpu=get_gpus("regmix"),
        mem_mb=16000,
        runtime=lambda wc, attempt: 240 * attempt,
    params:
        **REGMIX_RUN,
        job=training_job(REGMIX_RUN),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch regmix_run {params.job:q} {log:q} {threads}"
