"""How much of the demo's mixture is signal: the workflow's weights across proxy seeds and
under a 0.3% change of the train documents, with the main job's time, for the shipped demo and
the settings it replaced.

    python benchmarks/weight_stability.py                     # both options, as committed
    python benchmarks/weight_stability.py --options shipped --clusters  # and demo-clusters

Each option is the shipped ``config/config.yaml`` cut down to the ``demo`` dataset and its
proxy, with the option's changes. Per option, in workdirs of their own under ``--work``, with
``snakemake --cores 2``:

* ``main``: ``snakemake results/demo/weights.json`` from nothing, corpus collection included:
  the README's main job, timed;
* ``seeds``: the same with the proxy's ``seeds: [0, 1, 2]``: weights.json holds each
  replicate's own mixture (``replicates``); their standard deviation per domain (ddof 1) is the
  spread across proxy seeds;
* ``changed``: seed 0 on the corpus with one train document of each domain replaced (the one
  with the largest sampling key leaves the collected corpus, the next one enters the sample:
  9 of the 2,700 train documents, 0.33%); the largest change of a weight from seed 0's
  mixture on the unchanged corpus.

With ``--clusters``, the ``seeds`` workdir then weighs ``demo-clusters`` too: its 64 clusters
are made once, from the first replicate's document embeddings, and every replicate weighs
them, so the spread is the proxy seed's alone.

Every ``main`` run collects the corpus afresh, as a new user's would; the other runs copy the
first option's, so every option weighs the same text. Results:
``benchmarks/results/weight_stability.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

from chameleon_mix.io import write_json
from chameleon_mix.shards import document_key

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results" / "weight_stability.json"
SEEDS = [0, 1, 2]
# The demo before issue 22: a 300-step proxy with a 4096-token vocabulary, 256 windows per
# domain, and the corpus it then read.
OPTIONS = {
    "before": {
        "proxy": {
            "tokenizer": {"vocab_size": 4096, "train_documents": 200},
            "train": {"steps": 300, "warmup_steps": 30, "checkpoints": [100, 200]},
        },
        "embedding": {"samples": 256},
    },
    "shipped": {"proxy": {}, "embedding": {}},
}


def option_config(option: dict, clusters: bool = False) -> dict:
    """The shipped config with only the demo (and ``demo-clusters``) and its proxy, the
    option's changes applied."""
    shipped = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    names = ["demo", "demo-clusters"] if clusters else ["demo"]
    datasets = {name: copy.deepcopy(shipped["datasets"][name]) for name in names}
    demo = datasets["demo"]
    proxy = copy.deepcopy(shipped["proxies"][demo["proxy"]])
    for key, value in option["proxy"].items():
        proxy[key] = {**proxy[key], **value} if isinstance(value, dict) else value
    demo["embedding"] = {**demo["embedding"], **option["embedding"]}
    return {"corpus": shipped["corpus"], "datasets": datasets, "proxies": {demo["proxy"]: proxy}}


def snakemake(workdir: Path, config: dict, target: str) -> float:
    """Run ``target`` in ``workdir`` with ``config``; wall seconds."""
    (workdir / "config").mkdir(parents=True, exist_ok=True)
    (workdir / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile"),
               "--directory", str(workdir), "--cores", "2", target]  # fmt: skip
    start = time.perf_counter()
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"{workdir}: {target} failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return time.perf_counter() - start


def copy_corpus(source: Path, workdir: Path) -> None:
    shutil.copytree(source / "results/corpus", workdir / "results/corpus", dirs_exist_ok=True)


def change_one_train_document(workdir: Path, demo: dict) -> None:
    """Remove from each domain's collected corpus its train document with the largest key (the
    splits are consecutive key ranges, train last), so the next document enters train."""
    need = sum(demo["splits"].values())
    for domain in demo["domains"]:
        path = workdir / f"results/corpus/{domain['collect']}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        keys = {}
        for i, line in enumerate(lines):
            text = json.loads(line)["text"]
            if len(text.strip()) >= demo["min_chars"]:
                keys.setdefault(document_key(text, demo["seed"]), i)
        last_train = keys[sorted(keys)[need - 1]]
        path.write_text("".join(line for i, line in enumerate(lines) if i != last_train))


def weights_of(workdir: Path) -> dict:
    return json.loads((workdir / "results/demo/weights.json").read_text())


def spread(report: dict) -> np.ndarray:
    """(seeds, k) replicate mixtures of a weights.json, in its domain order."""
    return np.array(
        [[report["replicates"][f"seed-{s}"][n] for n in report["domains"]] for s in SEEDS]
    )


def measure(name: str, option: dict, work: Path, corpus_from: Path | None, clusters: bool) -> dict:
    config = option_config(option)
    proxy = next(iter(config["proxies"].values()))
    main = work / name / "main"
    main_seconds = snakemake(main, config, "results/demo/weights.json")
    print(f"{name}: main job {main_seconds:.0f} s", flush=True)

    seeds = work / name / "seeds"
    copy_corpus(corpus_from or main, seeds)
    replicated = copy.deepcopy(config)
    next(iter(replicated["proxies"].values()))["seeds"] = SEEDS
    snakemake(seeds, replicated, "results/demo/weights.json")
    report = weights_of(seeds)
    names = report["domains"]
    by_seed = spread(report)
    sd = by_seed.std(axis=0, ddof=1)

    changed = work / name / "changed"
    copy_corpus(corpus_from or main, changed)
    change_one_train_document(changed, config["datasets"]["demo"])
    single = copy.deepcopy(config)
    next(iter(single["proxies"].values()))["seeds"] = [SEEDS[0]]
    snakemake(changed, single, "results/demo/weights.json")
    moved = np.array([weights_of(changed)["weights"][n] for n in names]) - by_seed[0]
    result = {
        "proxy": {"vocab_size": proxy["tokenizer"]["vocab_size"], **proxy["train"],
                  "seeds": proxy.get("seeds", [proxy["train"].get("seed", 0)])},
        "embedding_samples": config["datasets"]["demo"]["embedding"]["samples"],
        "main_job_seconds": round(main_seconds, 1),
        "domains": names,
        "weights": weights_of(main)["weights"],
        "intervals": weights_of(main)["intervals"],
        "weights_by_seed": {f"seed-{s}": dict(zip(names, w.round(4).tolist()))
                            for s, w in zip(SEEDS, by_seed)},
        "sd_across_seeds": dict(zip(names, sd.round(4).tolist())),
        "max_sd_across_seeds": float(sd.max()),
        "max_change_under_document_change": float(np.abs(moved).max()),
        "change_under_document_change": dict(zip(names, moved.round(4).tolist())),
    }  # fmt: skip
    print(
        f"{name}: largest sd across seeds {sd.max():.3f} ({names[int(sd.argmax())]}), largest "
        f"change under 0.33% of the documents {np.abs(moved).max():.3f}",
        flush=True,
    )
    if clusters:
        # The clusters are the first replicate's; every replicate weighs them.
        with_clusters = option_config(option, clusters=True)
        next(iter(with_clusters["proxies"].values()))["seeds"] = SEEDS
        snakemake(seeds, with_clusters, "results/demo-clusters/weights.json")
        clustered = json.loads((seeds / "results/demo-clusters/weights.json").read_text())
        cluster_sd = spread(clustered).std(axis=0, ddof=1)
        weights = np.array(list(clustered["weights"].values()))
        result["clusters"] = {
            "max_sd_across_seeds": float(cluster_sd.max()),
            "largest_weight": float(weights.max()),
            "normalized_entropy": float(-(weights * np.log(weights)).sum() / np.log(len(weights))),
        }
        print(f"{name}: clusters' largest sd across seeds {cluster_sd.max():.3f}", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--options", nargs="+", default=list(OPTIONS), choices=list(OPTIONS))
    parser.add_argument("--work", type=Path, default=Path("/tmp/weight_stability"))
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--clusters", action="store_true", help="demo-clusters' spread too")
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    # Options measured before and not now keep their figures.
    report = json.loads(args.out.read_text()) if args.out.is_file() else {"options": {}}
    report.update(machine=platform.processor() or platform.machine(), cores=2)
    corpus_from = None
    for name in args.options:
        report["options"][name] = measure(
            name, OPTIONS[name], args.work, corpus_from, args.clusters
        )
        corpus_from = corpus_from or args.work / name / "main"
    write_json(args.out, report)


if __name__ == "__main__":
    main()
