rule mixture:
    """One method's domain weights, with what they cost: the method's registry entry
    (chameleon_mix.methods.METHODS) names its input files and writes the mixture."""
    input:
        unpack(mixture_inputs),
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
        domains=lambda wc: domains(wc.dataset),
        settings=mixture_settings,
    script:
        "../scripts/mixture.py"
