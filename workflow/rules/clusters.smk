# Clustered datasets (`domains: {cluster: {...}}`): the source dataset's documents embedded
# once, clustered, and each cluster's rows written as a domain's shards by sample_shards.


localrules:
    labelled_report,


rule embed_documents:
    """One vector per document of the source dataset's shards (its first embedding.seq_len
    tokens) under the proxy; independent of k, so another k embeds nothing again."""
    input:
        model=get_embedding_model,
        tokens=get_cluster_part_files("tokens/{domain}/stats.json"),
        bins=get_cluster_part_files("tokens/{domain}/{split}.bin"),
        offsets=get_cluster_part_files("tokens/{domain}/{split}.offsets.npy"),
    output:
        vectors="results/{dataset}/clusters/documents.npy",
        info="results/{dataset}/clusters/documents.json",
    log:
        "results/logs/{dataset}/clusters/embed_documents.log",
    benchmark:
        "results/benchmarks/{dataset}/clusters/embed_documents.tsv"
    conda:
        "../../envs/chameleon.yaml"
    threads: 1
    resources:
        gpu=get_gpus("proxy"),
        mem_mb=16000,
        runtime=240,
    params:
        parts=lambda wc: get_dataset(wc).cluster_parts(),
        model_name=lambda wc: get_dataset(wc).embedding_model_name,
        embedding=lambda wc: get_dataset(wc).document_embedding,
    script:
        "../scripts/embed_documents.py"


rule cluster_documents:
    """Seeded k-means of the document vectors; every document's cluster (it keeps its source
    split), the centroids, and what each cluster is (clusters.json, clusters.md)."""
    input:
        vectors="results/{dataset}/clusters/documents.npy",
        info="results/{dataset}/clusters/documents.json",
        shards=get_cluster_part_files("shards/{domain}/{split}.parquet"),
    output:
        assignments="results/{dataset}/clusters/assignments.parquet",
        centroids="results/{dataset}/clusters/centroids.npz",
        json="results/{dataset}/clusters/clusters.json",
        md="results/{dataset}/clusters/clusters.md",
    log:
        "results/logs/{dataset}/clusters/cluster_documents.log",
    benchmark:
        "results/benchmarks/{dataset}/clusters/cluster_documents.tsv"
    conda:
        "../../envs/chameleon.yaml"
    threads: 4
    resources:
        mem_mb=16000,
        runtime=240,
    params:
        parts=lambda wc: get_dataset(wc).cluster_parts(),
        settings=get_setting("clusters"),
        seed=get_setting("seed"),
    script:
        "../scripts/cluster_documents.py"


rule labelled_perplexity:
    """Test perplexity of a clustered dataset's model on the source's labelled domains:
    the source's test token files, the documents its own models are scored on."""
    input:
        model=get_trained_model,
        tokens=lambda wc: get_dataset(wc).cluster_source.token_files("stats.json"),
        bins=lambda wc: get_dataset(wc).cluster_source.token_files("test.bin"),
        offsets=lambda wc: get_dataset(wc).cluster_source.token_files(
            "test.offsets.npy"
        ),
    output:
        "results/{dataset}/eval/{method}/seed-{seed}/labelled.json",
    log:
        "results/logs/{dataset}/eval/{method}/seed-{seed}/labelled.log",
    benchmark:
        "results/benchmarks/{dataset}/eval/{method}/seed-{seed}/labelled.tsv"
    conda:
        "../../envs/chameleon.yaml"
    threads: 1
    resources:
        gpu=get_gpus("base"),
        mem_mb=16000,
        runtime=120,
    params:
        domains=lambda wc: get_dataset(wc).cluster_source.domains,
        batch_size=get_setting("evaluation", "batch_size"),
    script:
        "../scripts/perplexity.py"


rule labelled_report:
    """The clustered dataset's models against the source's, per labelled domain."""
    input:
        lambda wc: [
            f for files in get_dataset(wc).labelled_models().values() for f in files
        ],
    output:
        md="results/{dataset}/report/labelled.md",
        csv="results/{dataset}/report/labelled.csv",
    log:
        "results/logs/{dataset}/report/labelled.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        models=lambda wc: get_dataset(wc).labelled_models(),
        labels=lambda wc: get_dataset(wc).cluster_source.domains,
    script:
        "../scripts/labelled_report.py"
