rule report:
    """The methods side by side over their seeds: perplexity, downstream accuracy, weights
    beside the corpus's natural shares, repetition of the train splits, compute."""
    input:
        unpack(lambda wc: get_dataset(wc).report_inputs()),
        unpack(lambda wc: get_dataset(wc).trajectory_files()),
        corpus_stats="results/{dataset}/corpus_stats.json",
    output:
        markdown=report(
            "results/{dataset}/report/comparison.md",
            category="Comparison",
            labels={"dataset": "{dataset}", "table": "comparison"},
        ),
        table="results/{dataset}/report/comparison.csv",
        perplexity_plot=report(
            "results/{dataset}/report/perplexity.png",
            category="Comparison",
            labels={"dataset": "{dataset}", "figure": "perplexity"},
        ),
        weights_plot=report(
            "results/{dataset}/report/weights.png",
            category="Comparison",
            labels={"dataset": "{dataset}", "figure": "weights"},
        ),
        stability_plot=report(
            "results/{dataset}/report/stability.png",
            category="Comparison",
            labels={"dataset": "{dataset}", "figure": "stability"},
        ),
    log:
        "results/logs/{dataset}/report.log",
    conda:
        "../../envs/chameleon.yaml"
    params:
        domains=get_domains,
        methods=get_setting("methods"),
        seeds=get_setting("seeds"),
        max_epochs=get_setting("budget", "max_epochs"),
        target=lambda wc: get_dataset(wc).target,
    script:
        "../scripts/report.py"
