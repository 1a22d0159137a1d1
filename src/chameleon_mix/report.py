"""Compare mixture methods on one dataset, in the form of the paper's Tables 2-5.

Inputs per method: its mixture, its base model's training log (realised tokens per domain),
per-domain test perplexity and downstream scores. Outputs: one long CSV (every number), a
Markdown report with the tables, and two plots; :func:`weight_trajectories` gathers the
weights over proxy training for the stability figure (the paper's Figure 2).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .io import atomic_path

COMPUTE_NOTES = {
    "chameleon": "Chameleon: proxy training plus embedding (embedding only when the proxy is reused).",
    "doremi": "DoReMi: reference training, proxy training and the reference's forward passes.",
    "doge": "DoGE: proxy training by per-domain gradients, plus their inner products.",
    "regmix": "RegMix: training and validating every small run.",
}


def _load(path):
    return json.loads(Path(path).read_text())


def comparison(methods: dict[str, dict[str, str | Path]], domains: list[str]) -> dict:
    """``methods``: name -> {"mixture", "train_log", "perplexity", "downstream"} paths."""
    if "uniform" not in methods:
        raise ValueError("the comparison needs the `uniform` method as its baseline")
    rows = {}
    for name, files in methods.items():
        mixture, log = _load(files["mixture"]), _load(files["train_log"])
        ppl, tasks = _load(files["perplexity"]), _load(files["downstream"])
        missing = [d for d in domains if d not in ppl]
        if missing:
            raise ValueError(f"method {name!r}: no perplexity for domains {missing}")
        total = sum(log["tokens_per_domain"].values())
        rows[name] = {
            "weights": {d: mixture["weights"][d] for d in domains},
            "realised": {d: log["tokens_per_domain"][d] / total for d in domains},
            "perplexity": {d: ppl[d]["perplexity"] for d in domains},
            "tasks": {t: v["score"] for t, v in tasks.items()},
            "task_metric": {t: v["metric"] for t, v in tasks.items()},
            "compute_flops": mixture.get("compute_flops", 0.0),
        }
    uniform = rows["uniform"]["perplexity"]
    for row in rows.values():
        row["average_perplexity"] = float(np.mean(list(row["perplexity"].values())))
        row["better_than_uniform"] = sum(row["perplexity"][d] < uniform[d] for d in domains)
        accuracies = [v for t, v in row["tasks"].items() if row["task_metric"][t].startswith("acc")]
        row["average_accuracy"] = float(np.mean(accuracies)) if accuracies else None
    return rows


def _markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def _fmt(value, digits=3):
    return "–" if value is None else f"{value:.{digits}f}"


def write_report(
    dataset: str, rows: dict, domains: list[str], out_md, out_csv, perplexity_plot, weights_plot
) -> None:
    methods = list(rows)
    best = {d: min(rows[m]["perplexity"][d] for m in methods) for d in domains}
    ppl_body = [
        [
            d,
            *(
                ("**%s**" if rows[m]["perplexity"][d] == best[d] else "%s")
                % _fmt(rows[m]["perplexity"][d], 2)
                for m in methods
            ),
        ]
        for d in domains
    ]
    ppl_body.append(["Average PPL (↓)", *(_fmt(rows[m]["average_perplexity"], 2) for m in methods)])
    ppl_body.append(
        [
            "Domains better than uniform",
            *(
                "–" if m == "uniform" else f"{rows[m]['better_than_uniform']}/{len(domains)}"
                for m in methods
            ),
        ]
    )
    tasks = sorted({t for m in methods for t in rows[m]["tasks"]})
    task_body = [
        [
            f"{t} ({rows[methods[0]]['task_metric'][t]})",
            *(_fmt(rows[m]["tasks"].get(t)) for m in methods),
        ]
        for t in tasks
    ]
    task_body.append(
        ["Average accuracy (↑)", *(_fmt(rows[m]["average_accuracy"]) for m in methods)]
    )
    weight_body = [
        [d, *(f"{rows[m]['weights'][d]:.3f} ({rows[m]['realised'][d]:.3f})" for m in methods)]
        for d in domains
    ]
    compute_body = [[m, f"{rows[m]['compute_flops']:.3g}"] for m in methods]
    text = "\n\n".join(
        [
            f"# Mixture comparison: {dataset}",
            "## Per-domain test perplexity\n\n" + _markdown_table(["Domain", *methods], ppl_body),
            "## Downstream tasks (lm-eval, averaged over shots)\n\n"
            + _markdown_table(["Task", *methods], task_body),
            "## Domain weights (realised token share in parentheses)\n\n"
            + _markdown_table(["Domain", *methods], weight_body),
            "## Compute spent to obtain the mixture\n\n"
            + _markdown_table(["Method", "FLOPs"], compute_body)
            + "".join(f"\n\n{COMPUTE_NOTES[m]}" for m in methods if m in COMPUTE_NOTES),
        ]
    )
    with atomic_path(out_md) as tmp:
        tmp.write_text(text + "\n")
    with atomic_path(out_csv) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["section", "item", "method", "value"])
        for m in methods:
            row = rows[m]
            for d in domains:
                writer.writerow(["perplexity", d, m, row["perplexity"][d]])
                writer.writerow(["weight", d, m, row["weights"][d]])
                writer.writerow(["realised_share", d, m, row["realised"][d]])
            for t, v in row["tasks"].items():
                writer.writerow([f"task:{row['task_metric'][t]}", t, m, v])
            for key in (
                "average_perplexity",
                "better_than_uniform",
                "average_accuracy",
                "compute_flops",
            ):
                writer.writerow(["summary", key, m, row[key]])
    _plots(rows, domains, perplexity_plot, weights_plot)


def _plots(rows: dict, domains: list[str], perplexity_plot, weights_plot) -> None:
    from .plots import _figure, _save

    plt = _figure()
    methods = list(rows)
    x = np.arange(len(domains))
    width = 0.8 / len(methods)
    for path, key, label in (
        (perplexity_plot, "perplexity", "test perplexity"),
        (weights_plot, "weights", "domain weight"),
    ):
        fig, ax = plt.subplots(figsize=(2 + 0.7 * len(domains), 4.5))
        for i, m in enumerate(methods):
            ax.bar(x + i * width, [rows[m][key][d] for d in domains], width, label=m)
        ax.set_xticks(x + width * (len(methods) - 1) / 2, domains, rotation=60, ha="right")
        ax.set_ylabel(label)
        if key == "perplexity":
            ax.set_yscale("log")
        ax.legend()
        _save(fig, path)


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
        run = _load(path)["reweighting"]
        history = np.array(run["trajectory"])
        steps = list(range(1, len(history) + 1))
        trajectories[method] = (
            steps,
            {d: history[:, i].tolist() for i, d in enumerate(run["domains"])},
        )
    return trajectories
