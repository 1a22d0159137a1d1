rule mixture:
    """One method's domain weights, with what they cost: the method's registry entry
    (chameleon_mix.methods.METHODS) names its input files and writes the mixture; under the
    dataset's budget, brought within max_epochs of each domain's corpus tokens."""
    input:
        unpack(get_mixture_inputs),
    output:
        "results/{dataset}/mixtures/{method}.json",
    log:
        "results/logs/{dataset}/mixtures/{method}.log",
    benchmark:
        "results/benchmarks/{dataset}/mixtures/{method}.tsv"
    conda:
        "../../envs/chameleon.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        domains=get_domains,
        settings=lambda wc: get_dataset(wc).mixture_settings(wc.method),
        budget=lambda wc: get_dataset(wc).budget,
    script:
        "../scripts/mixture.py"
