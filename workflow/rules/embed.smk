rule embed_domain:
    """Mean hidden state of one domain's samples under a replicate of the dataset's proxy
    (or one of its checkpoints), or under the pretrained model for a finetune dataset.
    """
    input:
        model=get_embedding_model,
        tokens="results/{dataset}/tokens/{domain}/stats.json",
        bins="results/{dataset}/tokens/{domain}/train.bin",
        offsets="results/{dataset}/tokens/{domain}/train.offsets.npy",
    output:
        embedding="results/{dataset}/embeddings/{embedder}/{ckpt}/{domain}.npy",
        samples="results/{dataset}/embeddings/{embedder}/{ckpt}/{domain}.samples.npy",
        info="results/{dataset}/embeddings/{embedder}/{ckpt}/{domain}.json",
    log:
        "results/logs/{dataset}/embeddings/{embedder}/{ckpt}/{domain}.log",
    benchmark:
        "results/benchmarks/{dataset}/embeddings/{embedder}/{ckpt}/{domain}.tsv"
    conda:
        "../../envs/chameleon.yaml"
    threads: 1
    resources:
        gpu=get_gpus("proxy"),
        mem_mb=16000,
        runtime=60,
    params:
        model_name=lambda wc: get_dataset(wc).embedding_model_name,
        embedding=get_setting("embedding"),
    script:
        "../scripts/embed_domain.py"
