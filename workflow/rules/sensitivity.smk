rule sensitivity:
    """Chameleon weights with tau, lambda, the embedding samples, the proxy checkpoint and
    the proxy replicate moved one at a time from the configured setting (the paper's Table
    14)."""
    input:
        # Each kept proxy checkpoint's embeddings (step_<N>); a finetune dataset has none.
        unpack(lambda wc: {} if is_finetune(wc.dataset) else stability_inputs(wc)),
        embeddings=lambda wc: embeddings(wc.dataset),
        samples=lambda wc: embedding_samples(wc.dataset),
    output:
        table="results/{dataset}/sensitivity.csv",
        markdown="results/{dataset}/sensitivity.md",
        plot="results/{dataset}/plots/sensitivity.png",
    log:
        "results/logs/{dataset}/sensitivity.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        settings=weight_params,
        domains=lambda wc: domains(wc.dataset),
        embedders=lambda wc: embedders(wc.dataset),
    script:
        "../scripts/sensitivity.py"
