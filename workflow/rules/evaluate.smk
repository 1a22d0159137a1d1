rule local_tasks:
    """lm-eval tasks built from the dataset's held-out text, for offline downstream scores."""
    input:
        shards=lambda wc: get_dataset(wc).shards("test"),
        tokenizer=get_tokenizer,
    output:
        directory("results/{dataset}/eval/tasks"),
    log:
        "results/logs/{dataset}/eval/tasks.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=get_domains,
        seed=get_setting("seed"),
        examples=get_setting("evaluation", "local_examples"),
    script:
        "../scripts/local_tasks.py"


rule perplexity:
    """Token-level test perplexity of one trained model (method, seed) on every domain and
    the dataset's target."""
    input:
        model=get_trained_model,
        tokens=get_evaluated_files("stats.json"),
        bins=get_evaluated_files("test.bin"),
        offsets=get_evaluated_files("test.offsets.npy"),
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
        gpu=get_gpus("base"),
        mem_mb=16000,
        runtime=120,
    params:
        domains=lambda wc: get_dataset(wc).evaluated_domains,
        batch_size=get_setting("evaluation", "batch_size"),
    script:
        "../scripts/perplexity.py"


rule downstream:
    """Downstream accuracy of one trained model (method, seed) with lm-eval (local and/or hub
    tasks)."""
    input:
        model=get_trained_model,
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
        gpu=get_gpus("base"),
        mem_mb=16000,
        runtime=480,
    params:
        evaluation=get_setting("evaluation"),
    script:
        "../scripts/downstream.py"
