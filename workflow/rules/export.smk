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
        stats=lambda wc: token_files(wc.dataset, "stats.json"),
        train_shards=lambda wc: shards(wc.dataset, "train"),
        megatron=lambda wc: expand(
            "results/{dataset}/export/megatron_data/{domain}.{ext}",
            dataset=wc.dataset,
            domain=domains(wc.dataset),
            ext=("bin", "idx"),
        ),
    output:
        directory("results/{dataset}/export/{method}"),
    log:
        "results/logs/{dataset}/export/{method}.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=lambda wc: domains(wc.dataset),
        global_batch_tokens=lambda wc: batch_tokens(wc.dataset),
    script:
        "../scripts/export_mixture.py"
