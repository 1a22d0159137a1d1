DOREMI_REFERENCE = {
    "domains": lambda wc: domains(wc.dataset),
    "model": lambda wc: PROXIES[proxy_of(wc.dataset)]["model"],
    "train": lambda wc: proxy_schedule(wc.dataset),
}


rule doremi_reference:
    """DoReMi's reference model, uniform over the dataset's domains with the proxy's model
    and schedule; only when the uniform proxy was trained on other domains."""
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
        "{params.launcher} -m chameleon_mix.launch train_proxy {params.job:q} {log:q} {threads}"


TRAIN_DOREMI = {
    "domains": lambda wc: domains(wc.dataset),
    "model": lambda wc: PROXIES[proxy_of(wc.dataset)]["model"],
    "train": lambda wc: proxy_schedule(
        wc.dataset, baseline(wc.dataset, "doremi")["steps"]
    ),
    "eta": lambda wc: baseline(wc.dataset, "doremi")["eta"],
    "eps": lambda wc: baseline(wc.dataset, "doremi")["eps"],
}


rule train_doremi:
    """DoReMi's proxy, trained with Group DRO against the reference; records the weights."""
    input:
        tokens=lambda wc: token_files(wc.dataset, "stats.json"),
        bins=lambda wc: token_files(wc.dataset, "train.bin"),
        tokenizer=lambda wc: tokenizer_path(proxy_of(wc.dataset)),
        reference=lambda wc: f"{doremi_reference(wc.dataset)}/model",
    output:
        model=directory("results/{dataset}/doremi/proxy/model"),
        log_json="results/{dataset}/doremi/proxy/train_log.json",
    log:
        "results/logs/{dataset}/doremi/proxy.log",
    benchmark:
        "results/benchmarks/{dataset}/doremi/proxy.tsv"
    retries: 2
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        gpu=lambda wc: proxy_gpus(proxy_of(wc.dataset)),
        mem_mb=32000,
        runtime=lambda wc, attempt: 720 * attempt,
    params:
        **TRAIN_DOREMI,
        job=training_job(TRAIN_DOREMI),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch train_doremi {params.job:q} {log:q} {threads}"


rule mixture_doremi:
    """DoReMi's averaged weights, with the FLOPs of the reference and the proxy."""
    input:
        proxy_log="results/{dataset}/doremi/proxy/train_log.json",
        reference_log=lambda wc: f"{doremi_reference(wc.dataset)}/train_log.json",
    output:
        "results/{dataset}/mixtures/doremi.json",
    log:
        "results/logs/{dataset}/mixtures/doremi.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=lambda wc: domains(wc.dataset),
        reference_reused=lambda wc: doremi_reference_reused(wc.dataset),
    script:
        "../scripts/baseline_mixture.py"


TRAIN_DOGE = {
    "domains": lambda wc: domains(wc.dataset),
    "model": lambda wc: PROXIES[proxy_of(wc.dataset)]["model"],
    "train": lambda wc: proxy_schedule(
        wc.dataset, baseline(wc.dataset, "doge")["steps"]
    ),
    "mu": lambda wc: baseline(wc.dataset, "doge")["mu"],
    "lr": lambda wc: baseline(wc.dataset, "doge")["lr"],
}


rule train_doge:
    """DoGE's proxy, its update the weighted sum of per-domain gradients; records the weights."""
    input:
        tokens=lambda wc: token_files(wc.dataset, "stats.json"),
        bins=lambda wc: token_files(wc.dataset, "train.bin"),
        tokenizer=lambda wc: tokenizer_path(proxy_of(wc.dataset)),
    output:
        model=directory("results/{dataset}/doge/proxy/model"),
        log_json="results/{dataset}/doge/proxy/train_log.json",
    log:
        "results/logs/{dataset}/doge/proxy.log",
    benchmark:
        "results/benchmarks/{dataset}/doge/proxy.tsv"
    retries: 2
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        gpu=lambda wc: proxy_gpus(proxy_of(wc.dataset)),
        mem_mb=32000,
        runtime=lambda wc, attempt: 720 * attempt,
    params:
        **TRAIN_DOGE,
        job=training_job(TRAIN_DOGE),
        launcher=job_launcher,
    shell:
        "{params.launcher} -m chameleon_mix.launch train_doge {params.job:q} {log:q} {threads}"


rule mixture_doge:
    """DoGE's averaged weights, with the FLOPs of its proxy and gradient products."""
    input:
        proxy_log="results/{dataset}/doge/proxy/train_log.json",
    output:
        "results/{dataset}/mixtures/doge.json",
    log:
        "results/logs/{dataset}/mixtures/doge.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=lambda wc: domains(wc.dataset),
    script:
        "../scripts/baseline_mixture.py"


REGMIX_RUN = {
    "domains": lambda wc: domains(wc.dataset),
    "model": lambda wc: regmix_model(wc.dataset),
    "train": lambda wc: proxy_schedule(
        wc.dataset, baseline(wc.dataset, "regmix")["steps"]
    ),
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


rule mixture_regmix:
    """RegMix's mixture: the regression over the runs, then the best simulated mixtures."""
    input:
        regmix_runs,
    output:
        "results/{dataset}/mixtures/regmix.json",
    log:
        "results/logs/{dataset}/mixtures/regmix.log",
    benchmark:
        "results/benchmarks/{dataset}/regmix/fit.tsv"
    conda:
        "../../envs/chameleon.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        domains=lambda wc: domains(wc.dataset),
        target=lambda wc: baseline(wc.dataset, "regmix")["target"],
        candidates=lambda wc: baseline(wc.dataset, "regmix")["candidates"],
        top_k=lambda wc: baseline(wc.dataset, "regmix")["top_k"],
        seed=lambda wc: baseline(wc.dataset, "regmix")["seed"],
    script:
        "../scripts/regmix_fit.py"
