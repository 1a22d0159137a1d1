"""Mixing toward a target on the demo, leave-one-domain-out (not a timed test).

    python benchmarks/target_mixing.py                 # the three targets, as committed
    python benchmarks/target_mixing.py --work /tmp/tm  # keep (and reuse) the workdir

The demo's nine domains and its proxy (``demo-tiny``), and as the target one of three kinds of
text the proxy never saw (the collectors of ``demo-new``): ``markdown_docs``, ``javascript``,
``shell_scripts``. Per target, one dataset of the shipped config's ``demo`` with that
``target:``, compared with ``snakemake --cores 2 results/<dataset>/report/comparison.md``:
base models with 3 seeds for ``uniform``, ``chameleon``, ``chameleon_target`` (the ridge
regression of the target on the domains), ``target_affinity`` (the cosine baseline) and RegMix
fitted to the target's validation loss. Reads each report's CSV: the target's test perplexity
(mean ± sd over the seeds, Welch's p against uniform) and each method's compute. Results:
``benchmarks/results/target_mixing.json``.
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import yaml
from scipy.stats import ttest_ind_from_stats

from chameleon_mix.io import write_json

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "target_mixing.json"
TARGETS = {"markdown": "markdown_docs", "javascript": "javascript", "shell": "shell_scripts"}
METHODS = ["uniform", "chameleon", "chameleon_target", "target_affinity", "regmix"]


def config() -> dict:
    """The shipped demo and its proxy, once per target."""
    shipped = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    demo = shipped["datasets"]["demo"]
    datasets = {}
    for name, collector in TARGETS.items():
        dataset = copy.deepcopy(demo)
        dataset["description"] = f"the demo toward {collector}"
        # shell_scripts has 138 documents from the declared packages: a task-sized target
        dataset["target"] = {"name": name, "collect": collector,
                             "splits": {"train": 100, "val": 15, "test": 15}}  # fmt: skip
        dataset["methods"] = METHODS
        dataset["baselines"] = {"regmix": {**demo["baselines"]["regmix"], "target": name}}
        dataset.pop("human_weights", None)
        datasets[f"demo-{name}"] = dataset
    proxy = shipped["proxies"][demo["proxy"]]
    proxy["train"]["checkpoints"] = []  # the mixtures need the final proxy only
    datasets = {"demo": demo, **datasets}  # the proxy's own dataset
    return {"corpus": shipped["corpus"], "datasets": datasets, "proxies": {demo["proxy"]: proxy}}


def run(workdir: Path, targets: list[str]) -> float:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(workdir), "--cores", "2", *targets]  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"{workdir}: {targets} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return time.perf_counter() - start


def summary(workdir: Path, dataset: str, target: str) -> dict:
    """Per method: the target's test perplexity over the seeds and the mixture's compute."""
    with open(workdir / f"results/{dataset}/report/comparison.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    found = {}
    for method in METHODS:
        values = [
            float(r["value"])
            for r in rows
            if (r["section"], r["item"], r["method"], r["statistic"])
            == ("summary", "target_perplexity", method, "value")
        ]
        compute = next(
            float(r["value"])
            for r in rows
            if (r["section"], r["item"], r["method"]) == ("summary", "compute_flops", method)
        )
        mixture = json.loads((workdir / f"results/{dataset}/mixtures/{method}.json").read_text())
        found[method] = {"target_perplexity": values, "compute_flops": compute,
                         "weights": mixture["weights"]}  # fmt: skip
    uniform = found["uniform"]["target_perplexity"]
    for method, entry in found.items():
        entry["mean"], entry["sd"] = mean_sd(entry["target_perplexity"])
        if method != "uniform":
            entry["welch_p_vs_uniform"] = float(
                ttest_ind_from_stats(
                    *mean_sd(entry["target_perplexity"]), 3, *mean_sd(uniform), 3, equal_var=False
                ).pvalue  # fmt: skip
            )
    return found


def mean_sd(values: list[float]) -> tuple[float, float]:
    n = len(values)
    mean = sum(values) / n
    return mean, (sum((v - mean) ** 2 for v in values) / (n - 1)) ** 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--work", type=Path, default=Path("/tmp/target_mixing"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--targets", nargs="+", choices=list(TARGETS), default=list(TARGETS))
    args = parser.parse_args()
    (args.work / "config").mkdir(parents=True, exist_ok=True)
    (args.work / "config/config.yaml").write_text(yaml.safe_dump(config(), sort_keys=False))
    reports = [f"results/demo-{name}/report/comparison.md" for name in args.targets]
    seconds = run(args.work, reports)
    results = {name: summary(args.work, f"demo-{name}", name) for name in args.targets}
    print(f"{'target':<11}" + "".join(f"{m:>24}" for m in METHODS))
    for name, found in results.items():
        cells = "".join(
            f"{found[m]['mean']:>12.2f} ± {found[m]['sd']:<5.2f}"
            + (f"{'*' if found[m].get('welch_p_vs_uniform', 1) < 0.05 else ' ':>5}")
            for m in METHODS
        )
        print(f"{name:<11}{cells}")
    first = results[args.targets[0]]
    print("compute (FLOPs): " + ", ".join(f"{m} {first[m]['compute_flops']:.3g}" for m in METHODS))
    write_json(args.out, {
        "machine": {"python": platform.python_version(), "cores": 2},
        "snakemake_seconds_of_this_call": round(seconds, 1),  # 0-ish when the workdir is reused
        "methods": METHODS,
        "targets": {name: TARGETS[name] for name in args.targets},
        "results": results,
    })  # fmt: skip
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
