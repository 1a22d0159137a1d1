"""The workflow end to end on a small demo, and what reruns when domains or datasets are added."""

import copy
import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import load_test_config

from chameleon_mix.budget import constrain
from chameleon_mix.krls import softmax

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "tests" / "method_plugin"  # a mixing method installed from outside the package
DOMAINS = ["python_code", "licenses", "man_pages"]
# Every test here uses the module's whole Snakemake run (about 6 minutes on 2 cores).
pytestmark = pytest.mark.slow


def small_config(domains, extra_datasets=None):
    """.test/config-small.yaml with ``domains`` (collected, equally weighted) as the small
    dataset's, and ``extra_datasets`` beside it."""
    config = load_test_config("config-small")
    small = config["datasets"]["small"]
    small["domains"] = [{"name": d, "collect": d} for d in domains]
    small["human_weights"] = {d: 1 / len(domains) for d in domains}
    config["datasets"].update(copy.deepcopy(extra_datasets or {}))
    return config


def snakemake(workdir, *args, succeed=True):
    """Run the project's Snakefile in ``workdir``, the test plugin's method installed; returns
    stdout + stderr."""
    command = ["--snakefile", str(ROOT / "Snakefile"), "--directory", str(workdir), "--cores", "2"]
    paths = [str(PLUGIN), os.environ.get("PYTHONPATH", "")]
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", *command, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p)},
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


def small_finetune_dataset(pretrained=None, methods=None):
    """.test/config-small-ft.yaml's dataset: finetuning a model on the same kinds of text, no
    proxy, the model itself embeds; by default the small dataset's uniform base model."""
    dataset = load_test_config("config-small-ft")["datasets"]["small-ft"]
    if pretrained is not None:
        dataset["pretrained"] = pretrained
    if methods is not None:
        dataset["methods"] = methods
    return dataset


def workflow_config():
    """The end-to-end run's config: the small dataset with the plugin's method too, and the
    finetuning dataset."""
    config = small_config(DOMAINS, {"small-ft": small_finetune_dataset()})
    config["datasets"]["small"]["methods"].append("temperature")
    return config


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """One run for the pretraining comparison (with a method installed from outside the
    package, tests/method_plugin), a mixture's export over the whole corpus and, from the
    uniform base model, finetuning."""
    workdir = tmp_path_factory.mktemp("run")
    write_config(workdir, workflow_config())
    snakemake(
        workdir,
        "results/small/weights.json",
        "results/small/stability.csv",
        "results/small/report/comparison.md",
        "results/small/export/chameleon",
        "results/small-ft/report/comparison.md",
        "results/small-ft/mixtures/chameleon_pt.json",
    )
    return workdir


def test_weights_end_to_end(workdir):
    report = json.loads((workdir / "results/small/weights.json").read_text())
    assert report["domains"] == DOMAINS
    assert sum(report["weights"].values()) == pytest.approx(1.0)
    assert all(0 < s < 1 for s in report["scores"].values())
    assert report["proxy"] == "tiny" and report["stage"] == "pretrain"
    assert report["params"]["lam_scaled"] == pytest.approx(30.0)
    replicates = ["seed-0", "seed-1"]
    assert list(report["embeddings"]) == replicates == report["params"]["embedders"]
    for replicate in replicates:
        for name in DOMAINS:
            info = report["embeddings"][replicate][name]
            assert info["layer"] == 1 and len(info["sha256"]) == 64
            assert info["model_dir"] == f"results/proxies/tiny/{replicate}/model"
        log = json.loads((workdir / f"results/proxies/tiny/{replicate}/train_log.json").read_text())
        assert log["config"]["seed"] == int(replicate.removeprefix("seed-"))
    # The mixture averages the replicates' scores; each one's mixture and their spread are kept.
    alone = [report["replicates"][r] for r in replicates]
    assert alone[0] != alone[1]
    for name in DOMAINS:
        sd = np.std([a[name] for a in alone], ddof=1)
        assert report["replicate_sd"][name] == pytest.approx(sd)
        low, high = report["intervals"][name]
        assert 0 <= low <= high <= 1
    assert report["uncertainty"]["draws"] == 200
    for plot in ("affinity", "embedding_map", "weights", "stability"):
        assert (workdir / f"results/small/plots/{plot}.png").stat().st_size > 1000
    stability = (workdir / "results/small/stability.csv").read_text().splitlines()
    assert stability[0] == "step," + ",".join(DOMAINS) and len(stability) == 3  # steps 6 and 12


def test_installing_a_package_changes_no_byte_of_the_corpus_or_the_weights(
    workdir, tmp_path, extra_debian_package
):
    """The demo's corpus is a function of declared inputs: with a made-up package installed
    into the directories its Debian collectors read, collecting again and everything after it
    gives byte-identical corpus files and weights.json."""
    shutil.copytree(workdir / "results", tmp_path / "results")
    write_config(tmp_path, workflow_config())
    extra_debian_package()
    # Not one of the collectors' declared packages: its dpkg list is no input, nothing reruns.
    assert planned_jobs(tmp_path, "results/small/weights.json") == []
    out = snakemake(tmp_path, "results/small/weights.json", "--forcerun", "collect_corpus")
    assert "rule collect_corpus" in out and "rule train_proxy" in out  # all made again
    corpus = [
        f"results/corpus/{d}.{suffix}" for d in DOMAINS for suffix in ("jsonl", "manifest.json")
    ]
    for name in [*corpus, "results/small/weights.json"]:
        assert (tmp_path / name).read_bytes() == (workdir / name).read_bytes(), name


def test_comparison_report(workdir):
    report = (workdir / "results/small/report/comparison.md").read_text()
    methods = ["uniform", "natural", "human", "chameleon", "chameleon_target", "target_affinity"]
    methods += ["doremi", "doge", "regmix", "temperature"]  # the last one the installed plugin's
    for name in [*methods, *DOMAINS, "cmix_small_continuation"]:
        assert name in report
    assert "Domains significantly better / worse than uniform" in report
    assert "Average PPL" in report and "One training seed per method" in report
    assert "doremi: reference training" in report
    assert "regmix: training and validating every small run" in report
    with open(workdir / "results/small/report/comparison.csv", newline="") as f:
        rows = list(csv.reader(f))
    perplexity = [r for r in rows if r[0] == "perplexity" and r[4] == "value"]
    assert len(perplexity) == len(methods) * len(DOMAINS)  # one seed
    compute = {r[2]: float(r[5]) for r in rows if r[:2] == ["summary", "compute_flops"]}
    assert compute.keys() == set(methods)
    assert compute["uniform"] == compute["human"] == compute["natural"] == 0
    mixtures = {
        m: json.loads((workdir / f"results/small/mixtures/{m}.json").read_text())
        for m in ("doremi", "doge", "regmix")
    }
    for method, mixture in mixtures.items():
        assert sum(mixture["weights"].values()) == pytest.approx(1.0)
        assert compute[method] == pytest.approx(mixture["compute_flops"])
    doremi, doge, regmix = mixtures.values()
    # The uniform proxy was trained on exactly these domains: it is DoReMi's reference.
    assert doremi["reference_reused"] and not (workdir / "results/small/doremi/reference").exists()
    parts = ("reference_flops", "proxy_flops", "reference_forward_flops")
    assert doremi["compute_flops"] == pytest.approx(sum(doremi[p] for p in parts))
    assert min(doremi[p] for p in parts) > 0
    assert doge["compute_flops"] > doge["proxy_flops"] > 0 and doge["steps"] == 12
    runs = [
        json.loads(f.read_text()) for f in (workdir / "results/small/regmix/runs").glob("*.json")
    ]
    assert regmix["runs"] == len(runs) == 2
    assert regmix["compute_flops"] == pytest.approx(sum(r["compute_flops"] for r in runs))
    assert (workdir / "results/small/report/stability.png").stat().st_size > 1000
    check_budget_and_repetition(workdir, report, methods)
    check_target(workdir, report, rows, methods)
    chameleon = json.loads((workdir / "results/small/mixtures/chameleon.json").read_text())
    assert chameleon["compute_flops"] > chameleon["embedding_flops"] > 0  # proxy trained here
    log = json.loads((workdir / "results/small/base/chameleon/seed-0/train_log.json").read_text())
    examples = 10 * 8
    for domain, weight in chameleon["weights"].items():
        share = log["tokens_per_domain"][domain] / log["tokens_total"]
        assert abs(share - weight) < 4 * (weight * (1 - weight) / examples) ** 0.5 + 1e-9


def check_budget_and_repetition(workdir, report, methods):
    """Every mixture within the budget's 4 passes over each domain's corpus tokens, the
    natural mixture the corpus's shares, and each model's passes over its train splits in
    its log and the report."""
    stats = json.loads((workdir / "results/small/corpus_stats.json").read_text())
    assert set(stats["domains"]) == set(DOMAINS)
    for entry in stats["domains"].values():
        assert entry["documents"] >= 38 and entry["tokens"] > entry["tokens_stderr"] >= 0
    budget = {"tokens": 300000, "max_epochs": 4}
    for method in methods:
        mixture = json.loads((workdir / f"results/small/mixtures/{method}.json").read_text())
        assert mixture["budget"] == budget
        expected = constrain(mixture["unconstrained_weights"], tokens_of(stats), **budget)
        assert mixture["weights"] == pytest.approx(expected["weights"], abs=1e-12)
        assert max(mixture["epochs"].values()) <= 4 + 1e-9
        log = json.loads(
            (workdir / f"results/small/base/{method}/seed-0/train_log.json").read_text()
        )
        for domain in DOMAINS:
            assert (
                log["epochs"][domain]
                == log["tokens_per_domain"][domain] / log["train_tokens"][domain]
            )
    natural = json.loads((workdir / "results/small/mixtures/natural.json").read_text())
    assert natural["unconstrained_weights"] == pytest.approx(stats["natural"], abs=1e-12)
    assert "natural (corpus)" in report
    assert "Repetition of each domain's train split in these models" in report
    assert "†" not in report  # 2,560 tokens per model read no split more than once


def check_target(workdir, report, rows, methods):
    """The target is embedded, weighted toward, scored by RegMix's runs and every model."""
    assert "| Target: docs (↓) |" in report
    scored = [r for r in rows if r[:2] == ["summary", "target_perplexity"] and r[4] == "value"]
    assert len(scored) == len(methods)  # every method's one seed
    toward = json.loads((workdir / "results/small/mixtures/chameleon_target.json").read_text())
    assert toward["target"] == "docs" and toward["compute_flops"] > 0
    assert set(toward["unconstrained_weights"]) == set(DOMAINS)  # docs is not weighted
    regmix = json.loads((workdir / "results/small/mixtures/regmix.json").read_text())
    assert regmix["target"] == "docs"
    for run in (workdir / "results/small/regmix/runs").glob("*.json"):
        assert "docs" in json.loads(run.read_text())["validation_loss"]


def tokens_of(stats):
    return {d: e["tokens"] for d, e in stats["domains"].items()}


def test_finetuning_the_base_model_end_to_end(workdir):
    """Pretrain -> FT weights from the base model itself -> finetune per method -> report."""
    results = workdir / "results/small-ft"
    pretrained = "results/small/base/uniform/seed-0/model"
    report = json.loads((results / "weights.json").read_text())
    assert report["stage"] == "finetune" and report["proxy"] is None
    assert report["embedding_model"] == pretrained and report["params"]["tau"] == 0.2
    scores = np.array([report["scores"][d] for d in DOMAINS])
    weights = np.array([report["weights"][d] for d in DOMAINS])
    np.testing.assert_allclose(weights, softmax(scores, 0.2))  # alpha_FT: distinct domains up
    control = json.loads((results / "mixtures/chameleon_pt.json").read_text())
    np.testing.assert_allclose([control["weights"][d] for d in DOMAINS], softmax(1 / scores, 5))
    chameleon = json.loads((results / "mixtures/chameleon.json").read_text())
    assert chameleon["proxy_flops"] == 0 and chameleon["compute_flops"] > 0  # embedding only
    for method in ("uniform", "chameleon"):
        mixture = json.loads((results / f"mixtures/{method}.json").read_text())
        logs = [
            json.loads((results / f"finetune/{method}/seed-{seed}/train_log.json").read_text())
            for seed in (0, 1)
        ]
        for seed, log in enumerate(logs):
            assert log["pretrained"]["path"] == pretrained and log["config"]["steps"] == 6
            assert log["config"]["seed"] == seed
            assert mixture["weights"] == pytest.approx(log["weights"])
        assert logs[0]["log"] != logs[1]["log"]  # the seeds draw other batches
    assert not (workdir / "results/small-ft/base").exists()
    with open(results / "report/comparison.csv", newline="") as f:
        rows = list(csv.reader(f))
    per_seed = [r for r in rows if r[0] == "perplexity" and r[4] == "value"]
    assert len(per_seed) == 2 * 2 * len(DOMAINS)  # two methods, two seeds each
    means = {(r[1], r[2]): float(r[5]) for r in rows if r[0] == "perplexity" and r[4] == "mean"}
    for (domain, method), mean in means.items():
        values = [float(r[5]) for r in per_seed if r[1] == domain and r[2] == method]
        assert mean == pytest.approx(np.mean(values)) and len(values) == 2


def test_a_sorted_copy_of_the_config_plans_nothing(workdir, tmp_path):
    """Params are compared as text: the same config with its keys sorted (as yaml.safe_dump
    writes it) must rerun no job, the proxy least of all."""
    config = workflow_config()
    (workdir / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=True))
    targets = ("results/small/report/comparison.md", "results/small-ft/report/comparison.md")
    assert [job for target in targets for job in planned_jobs(workdir, target)] == []
    write_config(workdir, config)


def test_changing_lambda_plans_only_the_weights(workdir):
    config = workflow_config()
    config["datasets"]["small"]["weights"] = {"lam": 3.0}
    write_config(workdir, config)
    try:
        jobs = planned_jobs(workdir, "results/small/weights.json")
        assert jobs == [("weights", "dataset=small")]
        assert [rule for rule, _ in planned_jobs(workdir, "results/small/stability.csv")] == [
            "stability"
        ]
    finally:
        write_config(workdir, workflow_config())


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
    model = workdir / "results/proxies/tiny/seed-0/model/model.safetensors"
    stamp = model.stat().st_mtime_ns
    write_config(workdir, small_config([*DOMAINS, "changelogs"]))
    jobs = planned_jobs(workdir, "results/small/weights.json")
    assert jobs == [
        ("collect_corpus", "collector=changelogs"),
        ("embed_domain", "dataset=small, embedder=seed-0, ckpt=final, domain=changelogs"),
        ("embed_domain", "dataset=small, embedder=seed-1, ckpt=final, domain=changelogs"),
        ("sample_shards", "dataset=small, domain=changelogs"),
        ("tokenize_domain", "dataset=small, domain=changelogs"),
        ("weights", "dataset=small"),
    ]
    snakemake(workdir, "results/small/weights.json")
    report = json.loads((workdir / "results/small/weights.json").read_text())
    assert report["domains"] == [*DOMAINS, "changelogs"]
    assert model.stat().st_mtime_ns == stamp


def test_changing_a_domains_source_plans_only_that_domain_and_the_weights(workdir):
    """The same text read from a file instead of its collector: new shards, tokens and
    embedding for that domain, new weights; nothing else (the proxy never saw the domain)."""
    config = small_config([*DOMAINS, "changelogs"])
    write_config(workdir, config)
    snakemake(workdir, "results/small/weights.json")
    config["datasets"]["small"]["domains"][-1] = {
        "name": "changelogs",
        "source": {"files": "results/corpus/changelogs.jsonl", "format": "jsonl"},
    }
    write_config(workdir, config)
    try:
        assert planned_jobs(workdir, "results/small/weights.json") == [
            ("embed_domain", "dataset=small, embedder=seed-0, ckpt=final, domain=changelogs"),
            ("embed_domain", "dataset=small, embedder=seed-1, ckpt=final, domain=changelogs"),
            ("sample_shards", "dataset=small, domain=changelogs"),
            ("tokenize_domain", "dataset=small, domain=changelogs"),
            ("weights", "dataset=small"),
        ]
    finally:
        write_config(workdir, workflow_config())


def test_a_new_dataset_reusing_the_proxy_trains_nothing(workdir):
    other = load_test_config("config-other")["datasets"]["other"]
    write_config(workdir, small_config([*DOMAINS, "changelogs"], {"other": other}))
    rules = {rule for rule, _ in planned_jobs(workdir, "results/other/weights.json")}
    assert rules == {
        "collect_corpus",
        "sample_shards",
        "tokenize_domain",
        "embed_domain",
        "weights",
    }


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


def test_an_installed_method_runs_from_mixture_to_report(workdir):
    """A mixing method from outside the package (tests/method_plugin/temperature_sampling.py,
    found through its entry point) runs through the planner, the mixture rule, the compared
    models and the report, with no file of the project changed."""
    results = workdir / "results" / "small"
    # The mixture is the method's own: train tokens to the power 1/T, normalised, then the
    # dataset's budget (which these small domains' shares stay within).
    mixture = json.loads((results / "mixtures" / "temperature.json").read_text())
    tokens = {
        d: json.loads((results / "tokens" / d / "stats.json").read_text())["splits"]["train"][
            "tokens"
        ]
        for d in DOMAINS
    }
    total = sum(n**0.5 for n in tokens.values())
    assert mixture["method"] == "temperature"
    unconstrained = {d: n**0.5 / total for d, n in tokens.items()}
    assert mixture["unconstrained_weights"] == pytest.approx(unconstrained)
    assert len(set(unconstrained.values())) == len(DOMAINS)  # not uniform by accident

    # A base model trained on it, evaluated, and compared in the report beside uniform.
    log = json.loads((results / "base" / "temperature" / "seed-0" / "train_log.json").read_text())
    assert log["weights"] == pytest.approx(mixture["weights"])
    report = (results / "report" / "comparison.md").read_text()
    assert re.search(r"\| Domain \| uniform \|.* temperature \|", report)
    assert "temperature: nothing: the domains' token counts." in report
    with open(results / "report" / "comparison.csv") as f:
        rows = [row for row in csv.DictReader(f) if row["method"] == "temperature"]
    assert {row["section"] for row in rows} >= {"perplexity", "weight"}


def test_the_export_points_every_trainer_at_the_whole_corpus(workdir):
    """`results/small/export/chameleon` from the workflow itself: the by-domain split of the
    collected domains (each domain's file is its one part, every record of it tokenized), and
    the trainers' files over those parts with the dataset's budget."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    results = workdir / "results" / "small"
    manifest = json.loads((results / "by_domain" / "manifest.json").read_text())
    assert sorted(manifest["domains"]) == sorted(DOMAINS)  # the target's text is not split
    for name in DOMAINS:
        corpus = workdir / "results" / "corpus" / f"{name}.jsonl"
        (part,) = manifest["domains"][name]["parts"]
        assert part["text"] == str(corpus.resolve())
        assert part["records"] == len(corpus.read_text().splitlines())
        megatron = IndexedDataset(part["megatron"])
        assert len(megatron) == part["records"]
        assert sum(len(megatron[i]) for i in range(len(megatron))) == part["tokens"]

    out = results / "export" / "chameleon"
    mixture = json.loads((results / "mixtures" / "chameleon.json").read_text())
    blend = (out / "megatron.txt").read_text().split()
    assert blend[1::2] == [manifest["domains"][d]["parts"][0]["megatron"] for d in DOMAINS]
    assert [float(w) for w in blend[::2]] == pytest.approx([mixture["weights"][d] for d in DOMAINS])
    per_split = json.loads((out / "megatron_per_split.json").read_text())
    assert per_split["valid"][1::2] == [
        str((results / "export" / "megatron_data" / "val" / d).resolve()) for d in DOMAINS
    ]
    olmo = yaml.safe_load((out / "olmo_core.yaml").read_text())
    assert olmo["requested_tokens"] == 300000  # the dataset's budget
    assert olmo["global_batch_size"] == 8 * 32  # the small dataset's base schedule
    sources = olmo["source_list"]["sources"]
    assert [s["max_repetition_ratio"] for s in sources] == [4] * len(DOMAINS)
    assert {s["source_name"]: s["target_ratio"] for s in sources} == pytest.approx(
        mixture["weights"]
    )
