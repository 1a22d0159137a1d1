"""A mixing method from outside the package runs through every stage of the workflow: the
planner, the mixture rule, the compared models and the report, with no file of the project
changed. It is tests/method_plugin/temperature_sampling.py, found through its entry point."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "method_plugin"
DOMAINS = ["python_code", "licenses", "man_pages"]


def config():
    return {
        "corpus": {"max_documents": 40, "max_chars": 1500},
        "datasets": {
            "small": {
                "proxy": "tiny",
                "seed": 5,
                "min_chars": 200,
                "splits": {"train": 20, "val": 4, "test": 4},
                "domains": [{"name": d, "collect": d} for d in DOMAINS],
                "methods": ["uniform", "temperature"],
                "base": {
                    "model": {"n_layer": 1, "n_head": 2, "n_embd": 32},
                    "train": {"steps": 4, "batch_size": 4, "seq_len": 32, "warmup_steps": 1},
                },
                "evaluation": {"tasks": ["local"], "shots": [0], "local_examples": 4},
            }
        },
        "proxies": {
            "tiny": {
                "dataset": "small",
                "domains": DOMAINS,
                "model": {"n_layer": 2, "n_head": 2, "n_embd": 32},
                "tokenizer": {"vocab_size": 400, "train_documents": 20},
                "train": {"steps": 4, "batch_size": 4, "seq_len": 32, "warmup_steps": 1},
            }
        },
    }


def test_an_installed_method_runs_from_mixture_to_report(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config()))
    paths = [str(PLUGIN), os.environ.get("PYTHONPATH", "")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]
        + ["--directory", str(tmp_path), "--cores", "2", "results/small/report/comparison.md"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    results = tmp_path / "results" / "small"

    # The mixture is the method's own: train tokens to the power 1/T, normalised.
    mixture = json.loads((results / "mixtures" / "temperature.json").read_text())
    tokens = {
        d: json.loads((results / "tokens" / d / "stats.json").read_text())["splits"]["train"][
            "tokens"
        ]
        for d in DOMAINS
    }
    total = sum(n**0.5 for n in tokens.values())
    assert mixture["method"] == "temperature"
    assert mixture["weights"] == pytest.approx({d: n**0.5 / total for d, n in tokens.items()})
    assert len(set(mixture["weights"].values())) == len(DOMAINS)  # not uniform by accident

    # A base model trained on it, evaluated, and compared in the report beside uniform.
    log = json.loads((results / "base" / "temperature" / "seed-0" / "train_log.json").read_text())
    assert log["weights"] == pytest.approx(mixture["weights"])
    report = (results / "report" / "comparison.md").read_text()
    assert "| Domain | uniform | temperature |" in report
    assert "temperature: nothing: the domains' token counts." in report
    with open(results / "report" / "comparison.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["method"] == "temperature"]
    assert {row["section"] for row in rows} >= {"perplexity", "weight"}
