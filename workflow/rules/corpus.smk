rule collect_corpus:
    """Collect one kind of text already on this machine for the embedded demo corpus; it
    reruns when one of the collector's declared packages is installed, upgraded or removed.
    """
    input:
        lambda wc: package_records(wc.collector),
    output:
        documents="results/corpus/{collector}.jsonl",
        manifest="results/corpus/{collector}.manifest.json",
    log:
        "results/logs/corpus/{collector}.log",
    benchmark:
        "results/benchmarks/corpus/{collector}.tsv"
    conda:
        "../../envs/chameleon.yaml"
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        max_documents=config["corpus"]["max_documents"],
        max_chars=config["corpus"]["max_chars"],
        max_rejected_fraction=config["corpus"]["max_rejected_fraction"],
    script:
        "../scripts/collect_corpus.py"
