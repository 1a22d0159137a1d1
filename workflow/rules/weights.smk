rule weights:
    """Chameleon domain weights from the domain embeddings (KRLS) of every proxy replicate,
    with 90% intervals, affinity and plots."""
    input:
        embeddings=lambda wc: get_dataset(wc).embeddings(),
        samples=lambda wc: get_dataset(wc).embedding_samples(),
        corpus_manifests=lambda wc: list(get_dataset(wc).corpus_manifests().values()),
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
        settings=get_setting("weights"),
        domains=get_domains,
        embedders=lambda wc: get_dataset(wc).embedders,
        collected_domains=lambda wc: list(get_dataset(wc).corpus_manifests()),
        model_name=lambda wc: get_dataset(wc).embedding_model_name,
        proxy=lambda wc: get_dataset(wc).proxy_name,
    script:
        "../scripts/compute_weights.py"


rule stability:
    """Weights from every kept proxy checkpoint against its step (the paper's Figure 2)."""
    input:
        unpack(lambda wc: get_dataset(wc).stability_inputs()),
    output:
        table="results/{dataset}/stability.csv",
        plot="results/{dataset}/plots/stability.png",
    log:
        "results/logs/{dataset}/stability.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        settings=get_setting("weights"),
        domains=get_domains,
        embedders=lambda wc: get_dataset(wc).embedders,
    script:
        "../scripts/stability.py"
