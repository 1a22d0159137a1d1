rule local_tasks:
    """lm-eval tasks built from the dataset's held-out text, for offline downstream scores."""
    input:
        shards=lambda wc: shards(wc.dataset, "test"),
        tokenizer=lambda wc: dataset_tokenizer(wc.dataset),
    output:
        directory("results/{dataset}/eval/tasks"),
    log:
        "results/logs/{dataset}/eval/tasks.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=lambda wc: domains(wc.dataset),
        seed=lambda wc: DATASETS[wc.dataset]["seed"],
        examples=lambda wc: DATASETS[wc.dataset]["evaluation"]["local_examples"],
    script:
        "../scripts/local_tasks.py"


rule perplexity:
    """Token-level test perplexity of one trained model (method, seed) on every domain."""
    input:
        model=trained_model,
        tokens=lambda wc: token_files(wc.dataset, "stats.json"),
        bins=lambda wc: token_files(wc.dataset, "test.bin"),
        offsets=lambda wc: token_files(wc.dataset, "test.offsets.npy"),
    output:
        "results/{dataset}/eval/{method}/seed-{seed}/perplexity.json",
    log:
        "results/logs/{dataset}/eval/{method}/seed-{seed}/perplexity.log",
    benchmark:
        "results/benchmarks/{dataset}/eval/{method}/seed-{seed}/perplexity.tsv"
    conda:
        "../../envs/chameleon.yaml"
    threads: 1
    resources:
        gpu=lambda wc: model_gpus(wc.dataset),
        mem_mb=16000,
        runtime=120,
    params:
        domains=lambda wc: domains(wc.dataset),
        batch_size=lambda wc: DATASETS[wc.dataset]["evaluation"]["batch_size"],
    script:
        "../scripts/perplexity.py"


rule downstream:
    """Downstream accuracy of one trained model (method, seed) with lm-eval (local and/or hub
    tasks)."""
    input:
        model=trained_model,
        tasks="results/{dataset}/eval/tasks",
    output:
        "results/{dataset}/eval/{method}/seed-{seed}/downstream.json",
    log:
        "results/logs/{dataset}/eval/{method}/seed-{seed}/downstream.log",
    benchmark:
        "results/benchmarks/{dataset}/eval/{method}/seed-{seed}/downstream.tsv"
    conda:
        "../../envs/chameleon.yaml"
    threads: 1
    resources:
        gpu=lambda wc: model_gpus(wc.dataset),
        mem_mb=16000,
        runtime=480,
    params:
        evaluation=lambda wc: DATASETS[wc.dataset]["evaluation"],
    script:
        "../scripts/downstream.py"
