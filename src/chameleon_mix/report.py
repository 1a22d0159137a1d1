"""Compare mixture methods on one dataset, in the form of the paper's Tables 2-5.

Inputs per method: its mixture (with its epochs under the token budget, if any) and, for
each training seed, its base model's training log (realised tokens per domain, repetition of
each train split), per-domain test perplexity and downstream scores; per dataset, the corpus's
token shares (the ``natural`` weights) and the repetition limit ``max_epochs``. Every number
is reported as mean ± standard deviation over the seeds, and a method is marked better or
worse than uniform only where Welch's t-test over the seeds finds the difference (p <
:data:`SIGNIFICANCE`): a difference inside the seeds' spread is left unmarked, and with one
seed nothing is tested. Outputs: one long CSV (every number, per seed and summarised), a
Markdown report with the tables, and two plots; :func:`weight_trajectories` gathers the
weights over proxy training for the stability figure (the paper's Figure 2).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .io import atomic_path

SIGNIFICANCE = 0.05  # Welch's t-test level at which a difference from uniform is marked
UNTESTED, WITHIN = "untested", "within spread"  # verdicts besides "better" and "worse"
NATURAL = "natural (corpus)"  # the weight table's column and plot's series of corpus shares


def _load(path, what: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} does not exist; run the rule that makes it")
    return json.loads(path.read_text())


def seed_summary(values: list[float]) -> dict:
    """``{"values", "mean", "sd"}`` over seeds; ``sd`` (sample standard deviation) is None
    for one seed."""
    array = np.asarray(values, dtype=np.float64)
    return {
        "values": array.tolist(),
        "mean": float(array.mean()),
        "sd": float(array.std(ddof=1)) if len(array) > 1 else None,
    }


def verdict(method: dict | None, uniform: dict | None, higher: bool) -> str | None:
    """``better``/``worse`` than uniform (``higher``: whether higher is better) when Welch's t-test over the seeds gives p <
    :data:`SIGNIFICANCE`, ``within spread`` otherwise, ``untested`` when either side has a
    single seed (no spread to compare with); None for uniform's own numbers (``method is
    uniform``) and for a number uniform lacks."""
    from scipy.stats import ttest_ind_from_stats

    if method is None or uniform is None or method is uniform:
        return None
    n, n_uniform = len(method["values"]), len(uniform["values"])
    if n < 2 or n_uniform < 2:
        return UNTESTED
    test = ttest_ind_from_stats(
        method["mean"], method["sd"], n, uniform["mean"], uniform["sd"], n_uniform, equal_var=False
    )
    if not test.pvalue < SIGNIFICANCE:  # NaN when both are constant and equal
        return WITHIN
    return "better" if (method["mean"] > uniform["mean"]) == higher else "worse"


def higher_is_better(metric: str) -> bool:
    """Accuracies rise as a model improves; ``bits_per_byte`` and perplexities fall."""
    return metric.startswith("acc")


def _method_runs(name: str, files: dict, domains: list[str], target: str | None) -> dict:
    """One method's mixture and its runs' numbers, one list entry per seed (``target``: the
    dataset's target, whose test perplexity is read beside the domains')."""
    mixture = _load(files["mixture"], f"method {name!r}: mixture")
    runs = sorted(files["runs"], key=lambda run: run["seed"])
    seeds = [run["seed"] for run in runs]
    if not runs or len(set(seeds)) != len(seeds):
        raise ValueError(f"method {name!r}: needs one run per seed, got seeds {seeds}")
    shares, perplexities, tasks, metrics, split_epochs = [], [], [], {}, []
    target_perplexities = []
    for run in runs:
        where = f"method {name!r}, seed {run['seed']}:"
        log = _load(run["train_log"], f"{where} training log")
        ppl = _load(run["perplexity"], f"{where} perplexity")
        scores = _load(run["downstream"], f"{where} downstream scores")
        missing = [d for d in [*domains, *([target] if target else [])] if d not in ppl]
        if missing:
            raise ValueError(f"{where} {run['perplexity']} has no perplexity for {missing}")
        untrained = [d for d in domains if d not in log["tokens_per_domain"]]
        if untrained:
            raise ValueError(
                f"{where} {run['train_log']} trained on no tokens of {untrained}; the model was "
                "trained on other domains: delete it so that it is trained again"
            )
        total = sum(log["tokens_per_domain"][d] for d in domains)
        shares.append({d: log["tokens_per_domain"][d] / total for d in domains})
        split_epochs.append(log.get("epochs"))  # absent from logs written before it was recorded
        perplexities.append({d: ppl[d]["perplexity"] for d in domains})
        if target:
            target_perplexities.append(ppl[target]["perplexity"])
        tasks.append({t: v["score"] for t, v in scores.items()})
        metrics.update({t: v["metric"] for t, v in scores.items()})
        if tasks[-1].keys() != tasks[0].keys():
            raise ValueError(
                f"{where} {run['downstream']} scores tasks {sorted(tasks[-1])}, seed "
                f"{seeds[0]} scored {sorted(tasks[0])}; evaluate every seed on the same tasks"
            )
    accuracy = [t for t in tasks[0] if higher_is_better(metrics[t])]
    return {
        "seeds": seeds,
        "weights": {d: mixture["weights"][d] for d in domains},
        "budget": _budget(mixture, domains),
        "compute_flops": float(mixture["compute_flops"]),
        "realised": {d: seed_summary([s[d] for s in shares]) for d in domains},
        "split_epochs": {d: _seeds_epochs(split_epochs, d) for d in domains},
        "perplexity": {d: seed_summary([p[d] for p in perplexities]) for d in domains},
        "average_perplexity": seed_summary([np.mean(list(p.values())) for p in perplexities]),
        "target_perplexity": seed_summary(target_perplexities) if target else None,
        "tasks": {t: seed_summary([s[t] for s in tasks]) for t in tasks[0]},
        "task_metric": metrics,
        "average_accuracy": seed_summary([np.mean([s[t] for t in accuracy]) for s in tasks])
        if accuracy
        else None,
    }


def _seeds_epochs(split_epochs: list[dict | None], domain: str) -> dict | None:
    """The repetition of ``domain``'s train split summarised over the seeds' logs; None
    (unknown) when a log does not record it."""
    if any(epochs is None or domain not in epochs for epochs in split_epochs):
        return None
    return seed_summary([epochs[domain] for epochs in split_epochs])


def _budget(mixture: dict, domains: list[str]) -> dict | None:
    """The mixture's token budget: ``tokens``, ``max_epochs``, each domain's ``epochs`` (times
    the planned run repeats its corpus), the ``capped`` domains and the
    ``unconstrained_weights`` before capping; None for a mixture planned without a budget."""
    if "budget" not in mixture:
        return None
    return {
        "tokens": float(mixture["budget"]["tokens"]),
        "max_epochs": float(mixture["budget"]["max_epochs"]),
        "epochs": {d: float(mixture["epochs"][d]) for d in domains},
        "capped": [d for d in domains if d in mixture["capped"]],
        "unconstrained_weights": {d: mixture["unconstrained_weights"][d] for d in domains},
    }


def natural_shares(corpus_stats: str | Path, domains: list[str]) -> dict[str, float]:
    """Each domain's share of the corpus's tokens, from ``corpus_stats.json`` (its
    ``natural``): the weights of sampling the corpus as it is."""
    natural = _load(corpus_stats, "corpus statistics")["natural"]
    missing = [d for d in domains if d not in natural]
    if missing:
        raise ValueError(f"corpus statistics {corpus_stats} have no token share for {missing}")
    return {d: float(natural[d]) for d in domains}


def comparison(methods: dict[str, dict], domains: list[str], target: str | None = None) -> dict:
    """``methods``: name -> {"mixture": path, "runs": [{"seed", "train_log", "perplexity",
    "downstream"}, ...]}, one run per training seed; ``target``: the dataset's target, if
    any (its test perplexity is compared too). Returns name -> that method's numbers
    summarised over seeds (``split_epochs``: None for a domain where a log lacks it), each
    compared with uniform's (``versus_uniform``), the domains where it is significantly
    better/worse than uniform, and its compute relative to Chameleon's."""
    if "uniform" not in methods:
        raise ValueError("the comparison needs the `uniform` method as its baseline")
    rows = {name: _method_runs(name, files, domains, target) for name, files in methods.items()}
    uniform = rows["uniform"]
    chameleon = rows.get("chameleon", {}).get("compute_flops")
    for row in rows.values():
        versus = {
            "perplexity": {
                d: verdict(row["perplexity"][d], uniform["perplexity"][d], False) for d in domains
            },
            "average_perplexity": verdict(
                row["average_perplexity"], uniform["average_perplexity"], False
            ),
            "target_perplexity": verdict(
                row["target_perplexity"], uniform["target_perplexity"], False
            ),
            "tasks": {
                t: verdict(s, uniform["tasks"].get(t), higher_is_better(row["task_metric"][t]))
                for t, s in row["tasks"].items()
            },
            "average_accuracy": verdict(row["average_accuracy"], uniform["average_accuracy"], True),
        }
        row["versus_uniform"] = versus
        tested = [v for v in versus["perplexity"].values() if v not in (None, UNTESTED)]
        row["domains_better"] = tested.count("better") if tested else None
        row["domains_worse"] = tested.count("worse") if tested else None
        row["compute_ratio"] = row["compute_flops"] / chameleon if chameleon else None
    return rows


def _markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _cell(summary: dict | None, digits: int, mark: str | None = None) -> str:
    """``mean ± sd``, bold when better than uniform, italic when worse."""
    if summary is None:
        return "–"
    text = f"{summary['mean']:.{digits}f}"
    if summary["sd"] is not None:
        text += f" ± {summary['sd']:.{digits}f}"
    return {"better": f"**{text}**", "worse": f"_{text}_"}.get(mark, text)


def _rule_text(rows: dict) -> str:
    seeds = {m: row["seeds"] for m, row in rows.items()}
    if max(len(s) for s in seeds.values()) < 2:
        return (
            "One training seed per method: differences between methods are not tested, so "
            "nothing is marked. Training seeds alone move a small model's perplexity by several "
            "percent; set the dataset's `seeds:` to compare methods under several."
        )
    common = next(iter(seeds.values()))
    trained = (
        f"the {len(common)} training seeds {', '.join(map(str, common))}"
        if all(s == common for s in seeds.values())
        else "each method's training seeds ("
        + "; ".join(f"{m}: {', '.join(map(str, s))}" for m, s in seeds.items())
        + ")"
    )
    return (
        f"Each cell is the mean ± standard deviation over {trained}. **Bold**: better than "
        f"uniform, _italic_: worse, where Welch's t-test over the seeds gives p < "
        f"{SIGNIFICANCE} (the difference exceeds what the seeds' spread explains); unmarked "
        "cells are within the spread (or a side has one seed, so they are not tested)."
    )


def write_report(
    dataset: str,
    rows: dict,
    domains: list[str],
    out_md,
    out_csv,
    perplexity_plot,
    weights_plot,
    natural: dict[str, float] | None = None,
    max_epochs: float = 4.0,
    target: str | None = None,
) -> None:
    """The comparison of the methods in ``rows`` on ``dataset``: the Markdown report, the long
    CSV and the two plots. ``natural``: the corpus's token shares (:func:`natural_shares`), shown
    beside the weights; ``max_epochs``: the dataset's repetition limit, above which a train
    split's repetition is marked."""
    text = "\n\n".join(
        [
            f"# Mixture comparison: {dataset}",
            _rule_text(rows),
            "## Per-domain test perplexity\n\n" + _perplexity_table(rows, domains, target),
            "## Downstream tasks (lm-eval, averaged over shots)\n\n" + _task_table(rows),
            "## Domain weights\n\n" + _weight_section(rows, domains, natural),
            "## Repetition of each domain's train split in these models\n\n"
            + _repetition_section(rows, domains, max_epochs),
            "## Compute spent to obtain the mixture\n\n" + _compute_section(rows),
        ]
    )
    with atomic_path(out_md) as tmp:
        tmp.write_text(text + "\n")
    _write_csv(rows, domains, out_csv, natural, max_epochs)
    _perplexity_plot(rows, domains, perplexity_plot)
    _weights_plot(rows, domains, natural, max_epochs, weights_plot)


def _perplexity_table(rows: dict, domains: list[str], target: str | None = None) -> str:
    """Each domain's test perplexity per method, their average, and how many domains each
    method does significantly better or worse on than uniform."""
    methods = list(rows)
    body = [
        [
            d,
            *(
                _cell(rows[m]["perplexity"][d], 2, rows[m]["versus_uniform"]["perplexity"][d])
                for m in methods
            ),
        ]
        for d in domains
    ]
    body.append(
        [
            "Average PPL (↓)",
            *(
                _cell(
                    rows[m]["average_perplexity"],
                    2,
                    rows[m]["versus_uniform"]["average_perplexity"],
                )
                for m in methods
            ),
        ]
    )
    body.append(
        [
            "Domains significantly better / worse than uniform",
            *(
                "–"
                if rows[m]["domains_better"] is None
                else f"{rows[m]['domains_better']} / {rows[m]['domains_worse']} of {len(domains)}"
                for m in methods
            ),
        ]
    )
    if target:
        body.append(
            [
                f"Target: {target} (↓)",
                *(
                    _cell(
                        rows[m]["target_perplexity"],
                        2,
                        rows[m]["versus_uniform"]["target_perplexity"],
                    )
                    for m in methods
                ),
            ]
        )
    return _markdown_table(["Domain", *methods], body)


def _task_table(rows: dict) -> str:
    """Each downstream task's score per method (any method's tasks), and their average."""
    methods = list(rows)
    tasks = sorted({t for m in methods for t in rows[m]["tasks"]})
    metric = {
        t: next(rows[m]["task_metric"][t] for m in methods if t in rows[m]["tasks"]) for t in tasks
    }
    body = [
        [
            f"{t} ({metric[t]})",
            *(
                _cell(rows[m]["tasks"].get(t), 3, rows[m]["versus_uniform"]["tasks"].get(t))
                for m in methods
            ),
        ]
        for t in tasks
    ]
    body.append(
        [
            "Average accuracy (↑)",
            *(
                _cell(rows[m]["average_accuracy"], 3, rows[m]["versus_uniform"]["average_accuracy"])
                for m in methods
            ),
        ]
    )
    return _markdown_table(["Task", *methods], body)


def _weight_section(rows: dict, domains: list[str], natural: dict | None) -> str:
    """What the weight table's numbers are, and the table: each domain's weight per method
    (with its realised share, and its epochs under a budget), and its natural share."""
    notes = [
        "Each cell: the method's weight, in parentheses the token share its models realised "
        "(mean over seeds).",
        _budget_note(rows),
    ]
    if natural:
        notes.append(
            f"`{NATURAL}`: the domain's share of the corpus's tokens (corpus_stats.json), the "
            "weights of sampling the corpus as it is."
        )
    methods = list(rows)
    header = ["Domain", *methods, *([NATURAL] if natural else [])]
    body = [
        [
            d,
            *(_weight_cell(rows[m], d) for m in methods),
            *([f"{natural[d]:.3f}"] if natural else []),
        ]
        for d in domains
    ]
    return " ".join(filter(None, notes)) + "\n\n" + _markdown_table(header, body)


def _budget_note(rows: dict) -> str | None:
    """What ``· N×`` and ``capped from w`` in the weight table mean, and the budget (each
    method's where they differ); None when no mixture has a budget."""
    budgets = {
        m: f"{row['budget']['tokens']:.3g} tokens, at most {row['budget']['max_epochs']:g} epochs"
        for m, row in rows.items()
        if row["budget"]
    }
    if not budgets:
        return None
    plans = set(budgets.values())
    plan = plans.pop() if len(plans) == 1 else "; ".join(f"{m}: {b}" for m, b in budgets.items())
    return (
        "`· N×`: the times the planned run repeats the domain's corpus under the token budget "
        f"(weight × budget tokens / the domain's corpus tokens; {plan}); `capped from w`: the "
        "repetition limit lowered the method's own weight w."
    )


def _weight_cell(row: dict, domain: str) -> str:
    """``weight (realised share)``, then ``· epochs×`` under a budget, and the weight before
    capping where the repetition limit capped it."""
    text = f"{row['weights'][domain]:.3f} ({row['realised'][domain]['mean']:.3f})"
    budget = row["budget"]
    if budget is None:
        return text
    text += f" · {budget['epochs'][domain]:.1f}×"
    if domain in budget["capped"]:
        text += f", capped from {budget['unconstrained_weights'][domain]:.3f}"
    return text


def _overrepeated(rows: dict, domains: list[str], max_epochs: float) -> dict[str, dict]:
    """domain -> {method: mean epochs of its train split} for the methods whose models cycle
    the domain's train split more than ``max_epochs`` times."""
    over = {}
    for d in domains:
        epochs = {m: row["split_epochs"][d] for m, row in rows.items()}
        above = {m: s["mean"] for m, s in epochs.items() if s and s["mean"] > max_epochs}
        if above:
            over[d] = above
    return over


def _repetition_section(rows: dict, domains: list[str], max_epochs: float) -> str:
    """How many times each method's models cycled each domain's train split, their largest
    repetition, and the domains repeated more than ``max_epochs`` with the fix."""
    methods = list(rows)
    over = _overrepeated(rows, domains, max_epochs)

    def cell(m, d):
        summary = rows[m]["split_epochs"][d]
        if summary is None:
            return "–"
        text = f"{summary['mean']:.1f}×"
        return f"**{text}** †" if m in over.get(d, {}) else text

    def largest(m):
        known = {d: s["mean"] for d, s in rows[m]["split_epochs"].items() if s is not None}
        if not known:
            return "–"
        d = max(known, key=known.get)
        return f"{known[d]:.1f}× ({d})"

    body = [[d, *(cell(m, d) for m in methods)] for d in domains]
    body.append(["Largest repetition", *(largest(m) for m in methods)])
    unknown = any(s is None for row in rows.values() for s in row["split_epochs"].values())
    limit = f"the dataset's `budget.max_epochs` ({max_epochs:g})"
    text = (
        "Each cell: the times the models cycled the domain's train split (tokens drawn from "
        "the domain / tokens in its train split), mean over seeds. "
        + (
            f"**Bold** †: more than {limit}."
            if over
            else f"None of the known repetitions is more than {limit}."
        )
        + "\n\n"
        + _markdown_table(["Domain", *methods], body)
    )
    for d, above in over.items():
        worst = max(above.values())
        text += (
            f"\n\n† raise `splits.train` (domain {d} repeats {worst:.1f}× its train split; "
            f"> max_epochs {max_epochs:g}): "
            + ", ".join(f"{m} {e:.1f}×" for m, e in above.items())
            + "."
        )
    if unknown:
        text += (
            "\n\n–: unknown; the model's train_log.json does not record `epochs` (it was "
            "trained before the log did): train it again to see its repetition."
        )
    return text


def _compute_section(rows: dict) -> str:
    """The FLOPs each method spent on its mixture, relative to Chameleon's, and how each
    method's compute is counted."""
    from .methods import METHODS

    body = [
        [
            m,
            f"{rows[m]['compute_flops']:.3g}",
            "–" if rows[m]["compute_ratio"] is None else f"{rows[m]['compute_ratio']:.3g}×",
        ]
        for m in rows
    ]
    notes = [f"{m}: {METHODS[m].compute}." for m in rows if m in METHODS and METHODS[m].compute]
    return (
        _markdown_table(["Method", "FLOPs", "× Chameleon"], body)
        + "\n\nFLOPs count every matrix product, the LM head's included (chameleon_mix.flops)."
        + "".join(f"\n\n{note}" for note in notes)
    )


def _write_csv(
    rows: dict, domains: list[str], out_csv, natural: dict | None, max_epochs: float
) -> None:
    """Long form: ``section, item, method, seed, statistic, value``; per-seed rows have
    statistic ``value``, the summaries ``mean``, ``sd`` and ``versus_uniform`` an empty seed.
    Budgeted mixtures add ``unconstrained_weight`` and ``budget_epochs`` (statistics ``value``
    and ``capped``); ``split_epochs`` adds ``exceeds_max_epochs`` where known. Dataset-wide
    rows (``natural_share``, ``max_epochs``) have an empty method."""

    def summarised(writer, section, item, method, summary, versus):
        if summary is None:
            return
        for seed, value in zip(rows[method]["seeds"], summary["values"]):
            writer.writerow([section, item, method, seed, "value", value])
        writer.writerow([section, item, method, "", "mean", summary["mean"]])
        writer.writerow(
            [section, item, method, "", "sd", "" if summary["sd"] is None else summary["sd"]]
        )
        if versus is not None:
            writer.writerow([section, item, method, "", "versus_uniform", versus])

    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["section", "item", "method", "seed", "statistic", "value"])
        writer.writerow(["summary", "max_epochs", "", "", "value", max_epochs])
        for d, share in (natural or {}).items():
            writer.writerow(["natural_share", d, "", "", "value", share])
        for m, row in rows.items():
            versus, budget = row["versus_uniform"], row["budget"]
            for d in domains:
                writer.writerow(["weight", d, m, "", "value", row["weights"][d]])
                if budget:
                    weight = budget["unconstrained_weights"][d]
                    writer.writerow(["unconstrained_weight", d, m, "", "value", weight])
                    writer.writerow(["budget_epochs", d, m, "", "value", budget["epochs"][d]])
                    writer.writerow(["budget_epochs", d, m, "", "capped", d in budget["capped"]])
                summarised(writer, "realised_share", d, m, row["realised"][d], None)
                split = row["split_epochs"][d]
                summarised(writer, "split_epochs", d, m, split, None)
                if split is not None:
                    exceeds = split["mean"] > max_epochs
                    writer.writerow(["split_epochs", d, m, "", "exceeds_max_epochs", exceeds])
                summarised(
                    writer, "perplexity", d, m, row["perplexity"][d], versus["perplexity"][d]
                )
            for t, summary in row["tasks"].items():
                section = f"task:{row['task_metric'][t]}"
                summarised(writer, section, t, m, summary, versus["tasks"].get(t))
            summarised(
                writer,
                "summary",
                "average_perplexity",
                m,
                row["average_perplexity"],
                versus["average_perplexity"],
            )
            summarised(
                writer,
                "summary",
                "target_perplexity",
                m,
                row["target_perplexity"],
                versus["target_perplexity"],
            )
            summarised(
                writer,
                "summary",
                "average_accuracy",
                m,
                row["average_accuracy"],
                versus["average_accuracy"],
            )
            for key in ("domains_better", "domains_worse", "compute_flops", "compute_ratio"):
                value = row[key]
                writer.writerow(["summary", key, m, "", "value", "" if value is None else value])
            if budget:
                writer.writerow(["summary", "budget_tokens", m, "", "value", budget["tokens"]])


def _grouped_bars(ax, domains: list[str], series: dict[str, dict]) -> None:
    """One bar per series beside each other at each domain; ``series``: label -> keyword
    arguments of ``ax.bar`` (``height`` included)."""
    x = np.arange(len(domains))
    width = 0.8 / len(series)
    for i, (label, bars) in enumerate(series.items()):
        ax.bar(x + i * width, width=width, label=label, **bars)
    ax.set_xticks(x + width * (len(series) - 1) / 2, domains, rotation=60, ha="right")


def _perplexity_plot(rows: dict, domains: list[str], path) -> None:
    from .plots import _figure, _save

    fig, ax = _figure().subplots(figsize=(2 + 0.7 * len(domains), 4.5))
    series = {
        m: {
            "height": [row["perplexity"][d]["mean"] for d in domains],
            "yerr": [row["perplexity"][d]["sd"] or 0.0 for d in domains],
            "capsize": 2,
        }
        for m, row in rows.items()
    }
    _grouped_bars(ax, domains, series)
    ax.set_ylabel("test perplexity (mean ± sd over seeds)")
    ax.set_yscale("log")
    ax.legend()
    _save(fig, path)


def _weights_plot(
    rows: dict, domains: list[str], natural: dict | None, max_epochs: float, path
) -> None:
    """Above: each method's weights beside the natural shares. Below: :func:`_repetition_panel`."""
    from .plots import _figure, _save

    fig, (top, bottom) = _figure().subplots(
        2, 1, figsize=(2 + 0.7 * len(domains), 9), layout="constrained"
    )
    color = {m: f"C{i}" for i, m in enumerate(rows)}  # a method's colour in both panels
    weights = {
        m: {"height": [row["weights"][d] for d in domains], "color": color[m]}
        for m, row in rows.items()
    }
    if natural:
        weights[NATURAL] = {
            "height": [natural[d] for d in domains],
            "color": "lightgrey",
            "hatch": "//",
            "edgecolor": "grey",
        }
    _grouped_bars(top, domains, weights)
    top.set_ylabel("domain weight")
    top.legend()

    _repetition_panel(bottom, rows, domains, max_epochs, color)
    _save(fig, path)


def _repetition_panel(ax, rows: dict, domains: list[str], max_epochs: float, color: dict) -> None:
    """Each domain's epochs under the token budget per budgeted method, or without a budget
    the models' repetition of its train split (mean over seeds); a line at ``max_epochs``."""
    budgeted = {m: row["budget"]["epochs"] for m, row in rows.items() if row["budget"]}
    if budgeted:
        epochs = budgeted
        ax.set_ylabel("epochs of each corpus under the token budget")
    else:
        epochs = {
            m: {d: s["mean"] if s else np.nan for d, s in row["split_epochs"].items()}
            for m, row in rows.items()
            if any(row["split_epochs"].values())
        }
        ax.set_ylabel("repetition of the train split (mean over seeds)")
    if epochs:
        series = {
            m: {"height": [e[d] for d in domains], "color": color[m]} for m, e in epochs.items()
        }
        _grouped_bars(ax, domains, series)
    else:
        message = "the training logs do not record repetition"
        ax.text(0.5, 0.8, message, ha="center", transform=ax.transAxes)
        ax.set(xticks=[], ylim=(0, 1.5 * max_epochs))
    ax.axhline(max_epochs, color="red", linestyle="--", label=f"max_epochs {max_epochs:g}")
    ax.legend()


def weight_trajectories(files: dict[str, str | Path]) -> dict[str, tuple[list[int], dict]]:
    """Domain weights against proxy training steps, per method: ``files`` maps ``chameleon``
    to ``stability.csv`` (weights per kept checkpoint) and ``doremi``/``doge`` to their proxy's
    ``train_log.json`` (weights after every step). Returns method -> (steps, domain -> weights).
    """
    trajectories = {}
    for method, path in files.items():
        if method == "chameleon":
            with open(path, newline="") as f:
                rows = list(csv.DictReader(f))
            steps = [int(row.pop("step")) for row in rows]
            names = list(rows[0]) if rows else []
            trajectories[method] = (steps, {d: [float(r[d]) for r in rows] for d in names})
            continue
        run = _load(path, f"{method} proxy training log")["reweighting"]
        history = np.array(run["trajectory"])
        steps = list(range(1, len(history) + 1))
        trajectories[method] = (
            steps,
            {d: history[:, i].tolist() for i, d in enumerate(run["domains"])},
        )
    return trajectories
