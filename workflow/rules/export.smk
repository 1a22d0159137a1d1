rule megatron_eval_data:
    """One domain's val and test shards as Megatron indexed datasets (megatron-core's own
    builder), tokenized as the by-domain parts are: the valid/test blends of Megatron's
    per-split data, shared by every method's export."""
    input:
        val="results/{dataset}/shards/{domain}/val.parquet",
        test="results/{dataset}/shards/{domain}/test.parquet",
        tokenizer=lambda wc: get_dataset(wc).by_domain_tokenizer,
    output:
        multiext("results/{dataset}/export/megatron_data/val/{domain}", ".bin", ".idx"),
        multiext("results/{dataset}/export/megatron_data/test/{domain}", ".bin", ".idx"),
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
    """A method's mixture over the whole corpus of each domain (the by-domain split, or the
    domain's `data:`) as the inputs of Megatron-LM / NeMo, OLMo-core, MosaicML streaming,
    LitData, Hugging Face datasets, Nanotron and torchtitan, with the run's budget in each
    trainer's terms and a README on each file's unit."""
    input:
        unpack(lambda wc: get_dataset(wc).export_inputs(wc.method)),
    output:
        directory("results/{dataset}/export/{method}"),
    log:
        "results/logs/{dataset}/export/{method}.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=get_domains,
        data=lambda wc: get_dataset(wc).declared_data,
        budget=lambda wc: get_dataset(wc).budget,
        run=lambda wc: get_dataset(wc).export_run,
        eval_prefixes=lambda wc: get_dataset(wc).eval_megatron_prefixes,
    script:
        "../scripts/export_mixture.py"
