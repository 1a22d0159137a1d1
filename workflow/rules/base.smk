rule mixture_uniform:
    """Every domain weighted 1/k."""
    output:
        "results/{dataset}/mixtures/uniform.json",
    log:
        "results/logs/{dataset}/mixtures/uniform.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=lambda wc: domains(wc.dataset),
    script:
        "../scripts/mixture.py"


rule mixture_human:
    """Hand-given weights from the config (e.g. the Pile paper's)."""
    output:
        "results/{dataset}/mixtures/human.json",
    log:
        "results/logs/{dataset}/mixtures/human.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=lambda wc: domains(wc.dataset),
        weights=lambda wc: DATASETS[wc.dataset].get("human_weights", {}),
    script:
        "../scripts/mixture.py"


rule mixture_chameleon:
    """Chameleon's weights, with the FLOPs spent on proxy training and embedding."""
    input:
        unpack(chameleon_inputs),
    output:
        "results/{dataset}/mixtures/chameleon.json",
    log:
        "results/logs/{dataset}/mixtures/chameleon.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=lambda wc: domains(wc.dataset),
        reused_proxy=lambda wc: reused_proxy(wc.dataset),
    script:
        "../scripts/mixture.py"


rule mixture_chameleon_pt:
    """Finetuning control (paper Appendix B.8): pretraining's inverse weights on the same S."""
    input:
        unpack(chameleon_inputs),
    output:
        "results/{dataset}/mixtures/chameleon_pt.json",
    log:
        "results/logs/{dataset}/mixtures/chameleon_pt.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=lambda wc: domains(wc.dataset),
        reused_proxy=lambda wc: reused_proxy(wc.dataset),
    script:
        "../scripts/mixture.py"


TRAIN_BASE = {
    "domains": lambda wc: domains(wc.dataset),
    "model": lambda wc: base_settings(wc.dataset)["model"],
    "train": lambda wc: base_settings(wc.dataset)["train"],
}


rule train_base:
    """A base model trained on the dataset with one mixture; resumes from its last checkpoint."""
    input:
        tokens=lambda wc: token_files(wc.dataset, "stats.json"),
        bins=lambda wc: token_files(wc.dataset, "train.bin"),
        tokenizer=lambda wc: tokenizer_path(proxy_of(wc.dataset)),
        mixture="results/{dataset}/mixtures/{method}.json",
    output:
        model=directory("results/{dataset}/base/{method}/model"),
        log_json="results/{dataset}/base/{method}/train_log.json",
    log:
        "results/logs/{dataset}/base/{method}.log",
    benchmark:
        "results/benchmarks/{dataset}/base/{method}.tsv"
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
