"""The planner (chameleon_mix.plan): what each job of the workflow needs, decided from the
config without Snakemake; and through Snakemake's own dry runs, that a target never fails on
a method it does not make."""

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chameleon_mix.config import ConfigError, validate_config
from chameleon_mix.flops import planned_compute
from chameleon_mix.methods import METHODS, Method, register
from chameleon_mix.plan import Finetuning, Plan, PlanError, Pretraining
from chameleon_mix.settings import resolve

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
PLUGIN = ROOT / "tests" / "method_plugin"  # a method outside the package, with its entry point
DEMO = [d["name"] for d in SHIPPED["datasets"]["demo"]["domains"]]


def plan_of(config=None, missing=None):
    """The plan of a config (the shipped one by default); ``missing``: domain -> the reason
    its source is absent (every other domain's source is present)."""
    config = validate_config(copy.deepcopy(config or SHIPPED))
    missing = missing or {}
    return Plan(resolve(config), lambda domain: missing.get(domain["name"]))


def test_each_stage_is_its_own_class_and_the_default_target_is_the_demo():
    plan = plan_of()
    assert plan.default_dataset == "demo"
    assert isinstance(plan.dataset("demo"), Pretraining)
    assert isinstance(plan.dataset("demo-languages"), Finetuning)
    with pytest.raises(PlanError, match=r"no dataset 'dmeo' in the config; defined: demo, "):
        plan.dataset("dmeo")


def test_a_pretraining_dataset_is_embedded_by_each_proxy_replicate():
    config = copy.deepcopy(SHIPPED)
    seeds = config["proxies"]["demo-tiny"]["seeds"] = [0, 3]
    demo = plan_of(config).dataset("demo")
    assert demo.embedders == [f"seed-{s}" for s in seeds]
    assert demo.embedding_model(f"seed-{seeds[-1]}") == (
        f"results/proxies/demo-tiny/seed-{seeds[-1]}/model"
    )
    # Without a replicate (a clustered dataset's documents): the first one.
    assert demo.embedding_model() == f"results/proxies/demo-tiny/seed-{seeds[0]}/model"
    assert demo.embeddings()[:2] == [
        f"results/demo/embeddings/seed-{seeds[0]}/final/{DEMO[0]}.npy",
        f"results/demo/embeddings/seed-{seeds[0]}/final/{DEMO[1]}.npy",
    ]
    assert len(demo.embeddings()) == len(seeds) * len(DEMO)
    assert demo.embedding_samples()[0].endswith(f"final/{DEMO[0]}.samples.npy")
    assert demo.tokenizer == "results/proxies/demo-tiny/tokenizer"
    assert demo.proxy_logs() == [
        f"results/proxies/demo-tiny/seed-{s}/train_log.json" for s in seeds
    ]


def test_a_finetuning_dataset_is_embedded_by_its_pretrained_model():
    ft = plan_of().dataset("demo-languages")
    pretrained = SHIPPED["datasets"]["demo-languages"]["pretrained"]
    assert ft.embedders == ["pretrained"]
    assert ft.embedding_model("pretrained") == ft.tokenizer == pretrained
    assert ft.proxy_name is None and ft.proxy_logs() == []
    assert ft.checkpoint_embeddings() == {}
    assert ft.trained_model("chameleon", 1) == (
        "results/demo-languages/finetune/chameleon/seed-1/model"
    )
    with pytest.raises(PlanError, match=r"'demo-languages' is a finetune dataset: there are no"):
        ft.stability_inputs()


def test_kept_checkpoints_reuse_the_final_embeddings():
    demo = plan_of().dataset("demo")
    train = SHIPPED["proxies"]["demo-tiny"]["train"]
    steps = sorted(set(train["checkpoints"]) | {train["steps"]})
    inputs = demo.stability_inputs()
    assert list(inputs) == [f"step_{s}" for s in steps]
    assert inputs[f"step_{train['steps']}"] == demo.embeddings("final")
    first = f"step-{steps[0]}"
    assert all(f"/{first}/" in path for path in inputs[f"step_{steps[0]}"])


def test_gpus_follow_the_model_that_runs():
    plan = plan_of()
    assert plan.dataset("demo").gpus("proxy") == 0  # CPU-sized demo
    assert plan.dataset("slimpajama").gpus("proxy") == 1  # the paper's 82M proxy
    assert plan.dataset("slimpajama").gpus("base") == 1
    assert plan.proxy("demo-tiny").gpus == 0
    # A finetune dataset whose pretrained model is a base model of this config: its width.
    assert plan.dataset("demo-languages").gpus() == plan.dataset("demo").gpus("base")


def test_a_local_pretrained_model_is_sized_from_its_config_json(tmp_path):
    config = copy.deepcopy(SHIPPED)
    config["datasets"]["demo-languages"]["pretrained"] = str(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 2048}))
    assert plan_of(config).dataset("demo-languages").gpus() == 1
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 64}))
    assert plan_of(config).dataset("demo-languages").gpus() == 0


def test_a_missing_source_skips_its_domain_when_its_dataset_is_planned(capsys):
    plan = plan_of(missing={"man_pages": "no man pages here"})
    assert capsys.readouterr().err == ""  # nothing decided, nothing said, before it is asked
    demo = plan.dataset("demo")
    assert "man_pages" not in demo.domains and len(demo.domains) == len(DEMO) - 1
    assert "skipping domain 'man_pages': no man pages here" in capsys.readouterr().err
    assert "man_pages" not in plan.proxy("demo-tiny").domains
    assert not any("man_pages" in path for path in plan.proxy("demo-tiny").train_shards())
    assert "man_pages" not in demo.corpus_manifests()
    assert len(demo.token_files("train.bin")) == len(DEMO) - 1


def test_each_kind_of_domain_is_sampled_from_its_own_source():
    plan = plan_of()
    demo = plan.dataset("demo")
    collected = demo.domain("licenses")["collect"]
    assert demo.shard_source("licenses") == {
        "files": f"results/corpus/{collected}.jsonl",
        "format": "jsonl",
    }
    assert demo.shard_inputs("licenses") == {"documents": f"results/corpus/{collected}.jsonl"}
    clusters = plan.dataset("demo-clusters")
    assert clusters.shard_source("c07") == {"cluster": 7}
    assert clusters.shard_inputs("c07") == {
        "assignments": "results/demo-clusters/clusters/assignments.parquet"
    }
    assert clusters.cluster_source.name == "demo"
    # Every embedding key but the domain windows' sampling reaches the document vectors.
    assert clusters.document_embedding == {
        k: v
        for k, v in clusters.settings["embedding"].items()
        if k not in ("samples", "sampling", "seed")
    }
    assert {"layer", "seq_len", "include_padding", "batch_size"} <= set(clusters.document_embedding)
    assert clusters.cluster_parts()[:3] == [[DEMO[0], s] for s in ("train", "val", "test")]
    with pytest.raises(PlanError, match=r"dataset 'demo' has no domain 'klingon'; its domains"):
        demo.shard_source("klingon")
    with pytest.raises(PlanError, match=r"'demo' is not a clustered dataset"):
        demo.cluster_parts()


def test_a_mixed_source_is_partitioned_by_files_per_job(tmp_path):
    for i in range(5):
        (tmp_path / f"part-{i}.jsonl").write_text(json.dumps({"text": "x", "set": "a"}) + "\n")
    config = copy.deepcopy(SHIPPED)
    config["datasets"]["mixed"] = {
        "proxy": "demo-tiny",
        "source": {"files": str(tmp_path / "*.jsonl"), "format": "jsonl"},
        "domain_field": "set",
        "partition": {"files_per_job": 2},
        "domains": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
    }
    mixed = plan_of(config).dataset("mixed")
    assert mixed.partition_parts() == [f"results/mixed/partition/part-{i:05d}" for i in range(3)]
    assert mixed.partition_files(2) == [str(tmp_path / "part-4.jsonl")]
    assert mixed.shard_source("a") == {"partition": "a"}
    assert mixed.shard_inputs("a")["parts"][0] == "results/mixed/partition/part-00000.parquet"


def test_a_domain_with_splits_of_its_own_changes_only_its_partition_sample():
    config = copy.deepcopy(SHIPPED)
    slimpajama = config["datasets"]["slimpajama"]
    dataset = plan_of(config).dataset("slimpajama")
    default = dataset.settings["splits"]
    book = {**default, "train": 2000, "val": 200, "test": 200}  # the shipped config's own
    assert dataset.splits("book") == book and dataset.splits("cc") == default
    sizes = dataset.partition_sample_sizes
    assert sizes == {
        "default": sum(default.values()),
        "values": {"RedPajamaArXiv": sum(default.values()) - 120000, "RedPajamaBook": 2400},
    }
    slimpajama["domains"].append({"name": "extra", "value": "RedPajamaExtra"})
    assert plan_of(config).dataset("slimpajama").partition_sample_sizes == sizes  # reruns none
    slimpajama["domains"][2]["splits"] = {"train": 7}  # cc
    dataset = plan_of(config).dataset("slimpajama")
    assert dataset.splits("cc") == {**default, "train": 7}
    assert dataset.partition_sample_sizes["values"]["RedPajamaCommonCrawl"] == 4007


def test_a_budget_makes_every_mixture_read_the_corpus_statistics():
    config = copy.deepcopy(SHIPPED)
    demo = plan_of(config).dataset("demo")
    assert demo.budget is None
    assert "corpus_stats" not in demo.mixture_inputs("chameleon")
    assert demo.mixture_inputs("natural") == {"corpus_stats": "results/demo/corpus_stats.json"}
    config["datasets"]["demo"]["budget"] = {"tokens": 10**6}
    demo = plan_of(config).dataset("demo")
    assert demo.budget == {"tokens": 10**6, "max_epochs": 4}
    for method in demo.methods:
        assert demo.mixture_inputs(method)["corpus_stats"] == "results/demo/corpus_stats.json"
    slimpajama = plan_of(config).dataset("slimpajama")  # RegMix's prior: the corpus's shares
    assert slimpajama.regmix_run_inputs() == {
        "corpus_stats": "results/slimpajama/corpus_stats.json"
    }


def test_each_method_names_its_mixtures_files():
    plan = plan_of()
    demo, ft = plan.dataset("demo"), plan.dataset("demo-languages")
    assert demo.method_inputs("uniform") == {}
    assert demo.method_inputs("chameleon") == {
        "weights": "results/demo/weights.json",
        "uniform_proxy_logs": demo.proxy_logs(),
    }
    # Finetuning trains no proxy: the entry's empty logs are left out.
    assert ft.method_inputs("chameleon") == {"weights": "results/demo-languages/weights.json"}
    doremi = demo.method_inputs("doremi")
    assert doremi["method_proxy_log"] == "results/demo/doremi/proxy/train_log.json"
    assert doremi["reference_log"].endswith("/train_log.json")
    assert demo.method_inputs("doremi", "proxy_inputs") == {
        "reference": f"{demo.doremi_reference}/model"
    }
    runs = SHIPPED["datasets"]["demo"]["baselines"]["regmix"]["runs"]
    assert demo.method_inputs("regmix")["runs"][-1] == f"results/demo/regmix/runs/{runs - 1}.json"
    assert demo.trajectory_files() == {
        "trajectory_chameleon": "results/demo/stability.csv",
        "trajectory_doremi": "results/demo/doremi/proxy/train_log.json",
        "trajectory_doge": "results/demo/doge/proxy/train_log.json",
    }
    assert ft.trajectory_files() == {}


def test_the_report_reads_every_method_and_seed():
    demo = plan_of().dataset("demo")
    files = demo.report_inputs()
    runs = len(demo.methods) * len(demo.seeds)
    assert len(files) == len(demo.methods) + 3 * runs
    seed = demo.seeds[0]
    assert files[f"train_log_doge_{seed}"] == f"results/demo/base/doge/seed-{seed}/train_log.json"
    assert files[f"downstream_uniform_{seed}"] == (
        f"results/demo/eval/uniform/seed-{seed}/downstream.json"
    )


def test_a_sorted_config_plans_the_same_values():
    """Snakemake compares params as text: a reordered config must give identical ones."""

    def sort(node):
        if isinstance(node, dict):
            return {k: sort(node[k]) for k in sorted(node)}
        return [sort(v) for v in node] if isinstance(node, list) else node

    plans = [plan_of(), plan_of(sort(copy.deepcopy(SHIPPED)))]
    for name in ("demo", "demo-clusters", "demo-languages"):
        a, b = (p.dataset(name) for p in plans)
        assert json.dumps(a.settings) == json.dumps(b.settings)
        assert a.seeded_schedule(0) == b.seeded_schedule(0)
        assert [a.mixture_settings(m) for m in a.methods] == [
            b.mixture_settings(m) for m in b.methods
        ]


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda w: w.update(licenses=0.58),
            r"datasets\.demo\.human_weights: weights sum to 1\.5000, not 1 \(within 0\.01\)",
        ),
        (
            lambda w: w.pop("licenses"),
            r"datasets\.demo\.human_weights: weights must name every domain exactly; "
            r"missing \['licenses'\] \(domains: python_code, c_headers, ",
        ),
        (
            lambda w: w.update(klingon=0.0),
            r"datasets\.demo\.human_weights: .*unknown \['klingon'\]",
        ),
        (
            lambda w: w.update(licenses=-0.08, man_pages=0.32),
            r"datasets\.demo\.human_weights: weights must be >= 0, got \{'licenses': -0\.08\}",
        ),
        (lambda w: w.clear(), r"method `human` needs hand-given weights"),
    ],
)
def test_human_weights_are_checked_when_the_human_mixture_is_planned(edit, message):
    config = copy.deepcopy(SHIPPED)
    edit(config["datasets"]["demo"]["human_weights"])
    demo = plan_of(config).dataset("demo")  # the config itself is fine
    assert demo.method_inputs("human") == {}
    with pytest.raises(PlanError, match=message):
        demo.mixture_settings("human")


def test_published_human_weights_within_rounding_pass():
    """The Pile's published weights sum to 0.998: within the stated 0.01 of 1."""
    pile = plan_of().dataset("pile")
    weights = pile.mixture_settings("human")["human_weights"]
    assert 0.99 < sum(weights.values()) < 0.999


def test_a_method_registered_here_is_planned_like_a_built_in_one(monkeypatch):
    """Everything the planner, the config check and the FLOPs plan need comes from the entry."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    import temperature_sampling

    register("temperature_here", temperature_sampling.METHOD)
    try:
        config = copy.deepcopy(SHIPPED)
        config["datasets"]["demo"]["methods"] = ["uniform", "temperature_here", "chameleon"]
        demo = plan_of(config).dataset("demo")
        assert demo.method_inputs("temperature_here") == {"stats": demo.token_files("stats.json")}
        assert demo.mixture_settings("temperature_here") == {"temperature": 2.0}
        assert "trajectory_temperature_here" not in demo.trajectory_files()
        assert "mixture_temperature_here" in demo.report_inputs()
        resolved = demo.settings
        planned = planned_compute(resolved, plan_of(config).proxy("demo-tiny").settings)
        assert planned["temperature_here"] == 0.0 and planned["chameleon"] > 0
        with pytest.raises(ValueError, match="'temperature_here' is already registered"):
            register("temperature_here", temperature_sampling.METHOD)
    finally:
        METHODS.pop("temperature_here")


def test_a_method_for_one_stage_is_refused_for_the_other():
    only_finetune = Method(lambda *a: {}, "Finetune only", stages=("finetune",), why_stages="why")
    register("finetune_only", only_finetune)
    try:
        config = copy.deepcopy(SHIPPED)
        config["datasets"]["demo"]["methods"] = ["uniform", "finetune_only"]
        with pytest.raises(
            ConfigError, match=r"finetune_only cannot weight a pretrain dataset \(why\)"
        ):
            plan_of(config)
    finally:
        METHODS.pop("finetune_only")


# --- through Snakemake: a dry run plans, or names what stops it ---


def dry_run(workdir, target):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "snakemake",
            "-n",
            "--snakefile",
            str(ROOT / "Snakefile"),
            "--directory",
            str(workdir),
            target,
        ],
        capture_output=True,
        text=True,
    )
    return run.returncode, run.stdout + run.stderr


def test_a_new_domain_without_a_human_weight_stops_only_the_human_mixture(tmp_path):
    """Adding a domain to the demo plans weights.json; the report refuses the human mixture
    and names the missing weight."""
    config = copy.deepcopy(SHIPPED)
    demo = config["datasets"]["demo"]
    demo["domains"].append({"name": "shell_scripts", "collect": "shell_scripts"})
    assert "human" in demo["methods"] and "shell_scripts" not in demo["human_weights"]
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    code, out = dry_run(tmp_path, "results/demo/weights.json")
    assert code == 0, out[-3000:]
    assert re.search(r"embed_domain\s+\d+", out)
    code, out = dry_run(tmp_path, "results/demo/report/comparison.md")
    assert code != 0
    assert "datasets.demo.human_weights: weights must name every domain exactly; missing " in out
    assert "['shell_scripts']" in out


def test_a_domains_own_source_files_are_its_shards_inputs(tmp_path):
    """What the sampling job reads is declared: a file added to the glob (or a saved dataset's
    directory) is a new input of that domain's job only."""
    (tmp_path / "a").mkdir()
    (tmp_path / "saved").mkdir()
    for name in ("a/1.jsonl", "a/2.jsonl", "saved/data-00000.arrow", "saved/state.json"):
        (tmp_path / name).write_text("{}\n")
    config = copy.deepcopy(SHIPPED)
    config["datasets"]["own"] = {
        "proxy": "demo-tiny",
        "domains": [
            {"name": "a", "source": {"files": str(tmp_path / "a" / "*.jsonl")}},
            {"name": "saved", "source": {"hf_disk": str(tmp_path / "saved")}},
            {"name": "missing", "source": {"files": str(tmp_path / "none" / "*.jsonl")}},
        ],
    }
    own = plan_of(config).dataset("own")
    assert own.shard_inputs("a") == {
        "source_files": [str(tmp_path / "a" / "1.jsonl"), str(tmp_path / "a" / "2.jsonl")]
    }
    assert own.shard_inputs("saved")["source_files"] == [
        str(tmp_path / "saved" / "data-00000.arrow"),
        str(tmp_path / "saved" / "state.json"),
    ]
    (tmp_path / "a" / "3.jsonl").write_text("{}\n")
    assert len(plan_of(config).dataset("own").shard_inputs("a")["source_files"]) == 3
    with pytest.raises(
        PlanError, match=r"dataset 'own', domain 'missing', source: no file matches"
    ):
        own.shard_inputs("missing")
