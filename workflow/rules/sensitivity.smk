rule sensitivity:
    """Chameleon weights with tau, lambda, the embedding samples, the proxy checkpoint and
    the proxy replicate moved one at a time from the configured setting (the paper's Table
    14)."""
    input:
        # Each kept proxy checkpoint's embeddings (step_<N>); a finetune dataset has none.
        unpack(lambda wc: get_dataset(wc).checkpoint_embeddings()),
        embeddings=lambda wc: get_dataset(wc).embeddings(),
        samples=lambda wc: get_dataset(wc).embedding_samples(),
    output:
        table="results/{dataset}/sensitivity.csv",
        markdown="results/{dataset}/sensitivity.md",
        plot="results/{dataset}/plots/sensitivity.png",
    log:
        "results/logs/{dataset}/sensitivity.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        settings=get_setting("weights"),
        domains=get_domains,
        embedders=lambda wc: get_dataset(wc).embedders,
    script:
        "../scripts/sensitivity.py"
