rule by_domain_split:
    """Every record of one group of a mixed source's files (the partition's groups), written
    as one part per domain: its text (jsonl.zst) and its tokens (a Megatron dataset), in one
    read. These jobs run side by side; the manifest gathers their counts."""
    input:
        files=lambda wc: get_dataset(wc).partition_files(int(wc.group)),
        tokenizer=lambda wc: get_dataset(wc).by_domain_tokenizer,
    output:
        "results/{dataset}/by_domain/counts/part-{group}.json",
    log:
        "results/logs/{dataset}/by_domain/part-{group}.log",
    benchmark:
        "results/benchmarks/{dataset}/by_domain/part-{group}.tsv"
    wildcard_constraints:
        group=r"\d{5}",
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        source=lambda wc: get_dataset(wc).partition_sources[int(wc.group)],
        domain_field=get_setting("domain_field"),
        values=lambda wc: get_dataset(wc).by_domain_values,
        out_dir=lambda wc: get_dataset(wc).file("by_domain"),
    script:
        "../scripts/by_domain_split.py"


rule by_domain_source:
    """One group of a domain's own source files: each file is its own part as it is (no text
    rewritten), tokenized into a Megatron dataset; a hub dataset's records are written as a
    part."""
    input:
        files=lambda wc: get_dataset(wc).by_domain_source_files(
            wc.domain, int(wc.group)
        ),
        tokenizer=lambda wc: get_dataset(wc).by_domain_tokenizer,
    output:
        "results/{dataset}/by_domain/counts/{domain}/part-{group}.json",
    log:
        "results/logs/{dataset}/by_domain/{domain}/part-{group}.log",
    benchmark:
        "results/benchmarks/{dataset}/by_domain/{domain}/part-{group}.tsv"
    wildcard_constraints:
        group=r"\d{5}",
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        source=lambda wc: get_dataset(wc).by_domain_sources(wc.domain)[int(wc.group)],
        first_part=lambda wc: get_dataset(wc).by_domain_first_part(
            wc.domain, int(wc.group)
        ),
        out_dir=lambda wc: get_dataset(wc).file("by_domain"),
    script:
        "../scripts/by_domain_source.py"


rule by_domain_manifest:
    """The whole corpus per domain: every part of every domain, with its records, bytes and
    tokens, gathered from the jobs' counts (the exports read it)."""
    input:
        lambda wc: get_dataset(wc).by_domain_counts(),
    output:
        "results/{dataset}/by_domain/manifest.json",
    log:
        "results/logs/{dataset}/by_domain/manifest.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=lambda wc: get_dataset(wc).by_domain_domains,
        tokenizer_source=lambda wc: get_dataset(wc).by_domain_tokenizer_source,
        max_bad_fraction=get_setting("max_bad_fraction"),
    script:
        "../scripts/by_domain_manifest.py"
