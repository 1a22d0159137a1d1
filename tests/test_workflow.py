"""The workflow end to end on a small demo, and what reruns when domains or datasets are added."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
DOMAINS = ["python_code", "licenses", "man_pages"]


def small_config(domains, extra_datasets=None):
    dataset = {
        "proxy": "tiny",
        "seed": 3,
        "min_chars": 200,
        "splits": {"train": 30, "val": 4, "test": 4},
        "domains": [{"name": d, "collect": d} for d in domains],
        "embedding": {"samples": 12, "seq_len": 32, "batch_size": 12},
        "methods": ["uniform", "human", "chameleon"],
        "human_weights": {d: 1 / len(domains) for d in domains},
        "base": {
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 32},
            "train": {"steps": 10, "batch_size": 8, "seq_len": 32, "warmup_steps": 2},
        },
        "evaluation": {"tasks": ["local"], "shots": [0], "local_examples": 4},
    }
    return {
        "corpus": {"max_documents": 60, "max_chars": 2000},
        "datasets": {"small": dataset, **(extra_datasets or {})},
        "proxies": {
            "tiny": {
                "dataset": "small",
                "domains": DOMAINS,
                "model": {"n_layer": 2, "n_head": 2, "n_embd": 32},
                "tokenizer": {"vocab_size": 500, "train_documents": 30},
                "train": {
                    "steps": 12,
                    "batch_size": 4,
                    "seq_len": 32,
                    "lr": 3e-3,
                    "min_lr": 3e-4,
                    "warmup_steps": 2,
                    "checkpoints": [6],
                    "checkpoint_every": 6,
                },
            }
        },
    }


def snakemake(workdir, *args, succeed=True):
    """Run the project's Snakefile in ``workdir``; returns stdout + stderr."""
    command = ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2"]
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", *command, *args], capture_output=True, text=True
    )
    assert (run.returncode == 0) == succeed, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


def planned_jobs(workdir, target):
    """(rule, wildcards) of every job a dry run would run."""
    out = snakemake(workdir, "-n", target)
    jobs = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        if head:
            wildcards = re.search(r"wildcards: (.*)", block)
            jobs.append((head.group(1), wildcards.group(1) if wildcards else ""))
    return sorted(jobs)


def write_config(workdir, config):
    (workdir / "config").mkdir(exist_ok=True)
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    write_config(workdir, small_config(DOMAINS))
    snakemake(
        workdir,
        "results/small/weights.json",
        "results/small/stability.csv",
        "results/small/report/comparison.md",
    )
    return workdir


def test_weights_end_to_end(workdir):
    report = json.loads((workdir / "results/small/weights.json").read_text())
    assert report["domains"] == DOMAINS
    assert sum(report["weights"].values()) == pytest.approx(1.0)
    assert all(0 < s < 1 for s in report["scores"].values())
    assert report["proxy"] == "tiny" and report["stage"] == "pretrain"
    assert report["params"]["lam_scaled"] == pytest.approx(30.0)
    for name in DOMAINS:
        assert report["embeddings"][name]["layer"] == 1
        assert len(report["embeddings"][name]["sha256"]) == 64
    for plot in ("affinity", "embedding_map", "weights", "stability"):
        assert (workdir / f"results/small/plots/{plot}.png").stat().st_size > 1000
    stability = (workdir / "results/small/stability.csv").read_text().splitlines()
    assert stability[0] == "step," + ",".join(DOMAINS) and len(stability) == 3  # steps 6 and 12


def test_comparison_report(workdir):
    report = (workdir / "results/small/report/comparison.md").read_text()
    for name in ["uniform", "human", "chameleon", *DOMAINS, "cmix_small_continuation"]:
        assert name in report
    assert "Domains better than uniform" in report and "Average PPL" in report
    table = (workdir / "results/small/report/comparison.csv").read_text()
    rows = [line.split(",") for line in table.splitlines()]
    assert sum(r[0] == "perplexity" for r in rows) == 3 * len(DOMAINS)
    chameleon = json.loads((workdir / "results/small/mixtures/chameleon.json").read_text())
    assert chameleon["compute_flops"] > chameleon["embedding_flops"] > 0  # proxy trained here
    log = json.loads((workdir / "results/small/base/chameleon/train_log.json").read_text())
    examples = 10 * 8
    for domain, weight in chameleon["weights"].items():
        share = log["tokens_per_domain"][domain] / log["tokens_total"]
        assert abs(share - weight) < 4 * (weight * (1 - weight) / examples) ** 0.5 + 1e-9


def test_snakemake_report_holds_the_comparison(workdir):
    snakemake(workdir, "results/small/report/comparison.md", "--report", "report.html")
    html = (workdir / "report.html").read_text(errors="replace")
    assert "Comparison" in html and "comparison.md" in html


def test_resampling_a_domain_is_byte_identical(workdir):
    shard = workdir / "results/small/shards/licenses/train.parquet"
    before = shard.read_bytes()
    snakemake(workdir, str(shard.relative_to(workdir)), "--forcerun", "sample_shards")
    assert shard.read_bytes() == before


def test_adding_a_domain_reruns_only_that_domain_and_the_weights(workdir):
    model = workdir / "results/proxies/tiny/model/model.safetensors"
    stamp = model.stat().st_mtime_ns
    write_config(workdir, small_config([*DOMAINS, "changelogs"]))
    jobs = planned_jobs(workdir, "results/small/weights.json")
    assert jobs == [
        ("collect_corpus", "collector=changelogs"),
        ("embed_domain", "dataset=small, ckpt=final, domain=changelogs"),
        ("sample_shards", "dataset=small, domain=changelogs"),
        ("weights", "dataset=small"),
    ]
    snakemake(workdir, "results/small/weights.json")
    report = json.loads((workdir / "results/small/weights.json").read_text())
    assert report["domains"] == [*DOMAINS, "changelogs"]
    assert model.stat().st_mtime_ns == stamp


def test_a_new_dataset_reusing_the_proxy_trains_nothing(workdir):
    other = {
        "proxy": "tiny",
        "splits": {"train": 30, "val": 4, "test": 4},
        "min_chars": 200,
        "domains": [{"name": d, "collect": d} for d in ["licenses", "perl_modules"]],
        "embedding": {"samples": 12, "seq_len": 32},
    }
    write_config(workdir, small_config([*DOMAINS, "changelogs"], {"other": other}))
    rules = {rule for rule, _ in planned_jobs(workdir, "results/other/weights.json")}
    assert rules == {"collect_corpus", "sample_shards", "embed_domain", "weights"}


def test_a_failing_domain_leaves_no_partial_output(workdir, tmp_path):
    shutil.copytree(workdir / "results", tmp_path / "results")
    config = small_config(DOMAINS)
    config["datasets"]["small"]["splits"]["train"] = 5000  # more than the collector gathered
    write_config(tmp_path, config)
    out = snakemake(
        tmp_path,
        "results/small/shards/licenses/train.parquet",
        "--forcerun",
        "sample_shards",
        succeed=False,
    )
    assert "domain 'licenses' has" in out
    assert not list((tmp_path / "results/small/shards/licenses").glob("*.parquet"))
