rule megatron_dataset:
    """One domain's train tokens as a Megatron indexed dataset (.bin/.idx, megatron-core's own
    builder), shared by every method's export."""
    input:
        tokens="results/{dataset}/tokens/{domain}/train.bin",
        offsets="results/{dataset}/tokens/{domain}/train.offsets.npy",
        stats="results/{dataset}/tokens/{domain}/stats.json",
    output:
        bin="results/{dataset}/export/megatron_data/{domain}.bin",
        idx="results/{dataset}/export/megatron_data/{domain}.idx",
    log:
        "results/logs/{dataset}/export/megatron_data/{domain}.log",
    conda:
        "../../envs/chameleon.yaml"
    resources:
        mem_mb=4000,
        runtime=120,
    script:
        "../scripts/export_megatron.py"


rule export:
    """A method's mixture as the inputs of Megatron-LM / NeMo, OLMo-core, MosaicML streaming,
    LitData, Hugging Face datasets and Nanotron, with a README on each file's unit."""
    input:
        mixture="results/{dataset}/mixtures/{method}.json",
        stats=get_token_files("stats.json"),
        train_shards=lambda wc: get_dataset(wc).shards("train"),
        megatron=lambda wc: [
            f"results/{wc.dataset}/export/megatron_data/{domain}.{ext}"
            for domain in get_domains(wc)
            for ext in ("bin", "idx")
        ],
    output:
        directory("results/{dataset}/export/{method}"),
    log:
        "results/logs/{dataset}/export/{method}.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=get_domains,
        global_batch_tokens=lambda wc: get_dataset(wc).batch_tokens,
    script:
        "../scripts/export_mixture.py"
