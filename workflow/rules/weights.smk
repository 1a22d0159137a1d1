rule weights:
    """Chameleon domain weights from the domain embeddings (KRLS) of every proxy replicate,
    with 90% intervals, affinity and plots."""
    input:
        embeddings=lambda wc: embeddings(wc.dataset),
        samples=lambda wc: embedding_samples(wc.dataset),
        corpus_manifests=lambda wc: list(corpus_manifests(wc.dataset).values()),
    output:
        weights="results/{dataset}/weights.json",
        affinity="results/{dataset}/affinity.csv",
        affinity_plot="results/{dataset}/plots/affinity.png",
        map_plot="results/{dataset}/plots/embedding_map.png",
        weights_plot="results/{dataset}/plots/weights.png",
    log:
        "results/logs/{dataset}/weights.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        settings=weight_params,
        domains=lambda wc: domains(wc.dataset),
        embedders=lambda wc: embedders(wc.dataset),
        collected_domains=lambda wc: list(corpus_manifests(wc.dataset)),
        model_name=lambda wc: embedding_model_name(wc.dataset),
        proxy=lambda wc: None if is_finetune(wc.dataset) else proxy_of(wc.dataset),
    script:
        "../scripts/compute_weights.py"


rule stability:
    """Weights from every kept proxy checkpoint against its step (the paper's Figure 2)."""
    input:
        unpack(stability_inputs),
    output:
        table="results/{dataset}/stability.csv",
        plot="results/{dataset}/plots/stability.png",
    log:
        "results/logs/{dataset}/stability.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        settings=weight_params,
        domains=lambda wc: domains(wc.dataset),
        embedders=lambda wc: embedders(wc.dataset),
    script:
        "../scripts/stability.py"
