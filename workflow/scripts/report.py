from chameleon_mix.io import logged
from chameleon_mix.methods import METHODS
from chameleon_mix.plots import plot_weight_trajectories
from chameleon_mix.report import comparison, natural_shares, weight_trajectories, write_report

with logged(snakemake.log[0]):
    kinds = ("train_log", "perplexity", "downstream")
    methods = {
        method: {
            "mixture": snakemake.input[f"mixture_{method}"],
            "runs": [
                {
                    "seed": seed,
                    **{kind: snakemake.input[f"{kind}_{method}_{seed}"] for kind in kinds},
                }
                for seed in snakemake.params.seeds
            ],
        }
        for method in snakemake.params.methods
    }
    domains, target = list(snakemake.params.domains), snakemake.params.target
    write_report(
        snakemake.wildcards.dataset,
        comparison(methods, domains, target),
        domains,
        snakemake.output.markdown,
        snakemake.output.table,
        snakemake.output.perplexity_plot,
        snakemake.output.weights_plot,
        natural=natural_shares(snakemake.input.corpus_stats, domains),
        max_epochs=snakemake.params.max_epochs,
        target=target,
    )
    trajectories = {
        name.removeprefix("trajectory_"): path
        for name, path in snakemake.input.items()
        if name.startswith("trajectory_")
    }
    plot_weight_trajectories(
        weight_trajectories(trajectories),
        snakemake.output.stability_plot,
        {method: METHODS[method].title for method in trajectories},
    )
