"""Config validation: each bad input gets one message naming the key and what to do."""

import copy
import re
from pathlib import Path

import pytest
import yaml

from chameleon_mix.config import ConfigError, validate_config

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def broken(edit):
    config = copy.deepcopy(SHIPPED)
    edit(config)
    return config


def test_shipped_config_is_valid_and_gets_defaults():
    config = validate_config(copy.deepcopy(SHIPPED))
    demo = config["datasets"]["demo"]
    assert demo["stage"] == "pretrain"
    assert demo["weights"] == {"lam": 10, "tau": None, "center": True, "normalize": True}
    assert demo["embedding"]["layer"] is None and demo["embedding"]["samples"] == 256
    assert config["proxies"]["slimpajama-82m"]["train"]["weight_decay"] == 0.01
    assert set(config["datasets"]) >= {"demo", "demo-new", "slimpajama", "pile", "wiki40b", "stack"}
    assert len(config["datasets"]["pile"]["domains"]) == 17


def set_in(path, value):
    def edit(config):
        node = config
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return edit


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            set_in(["datasets", "demo", "sedd"], 1),
            r"datasets\.demo: unknown key 'sedd'; allowed keys: .*seed",
        ),
        (
            set_in(["datasets", "demo", "seed"], "one"),
            r"datasets\.demo\.seed: 'one' is not of type 'integer'",
        ),
        (
            set_in(["datasets", "demo", "splits", "train"], 0),
            r"datasets\.demo\.splits\.train: 0 is too small",
        ),
        (
            set_in(["datasets", "demo", "splits", "val"], -5),
            r"datasets\.demo\.splits\.val: -5 is too small",
        ),
        (
            set_in(["datasets", "demo", "domains"], []),
            r"datasets\.demo\.domains: \[\] should be non-empty",
        ),
        (
            lambda c: c["datasets"]["demo"]["domains"].append(
                {"name": "licenses", "collect": "licenses"}
            ),
            r"datasets\.demo\.domains: duplicate domain name\(s\) \['licenses'\]",
        ),
        (
            set_in(["datasets", "demo", "domains", 0, "name"], "../etc"),
            r"datasets\.demo\.domains\[0\]\.name: '\.\./etc' is not a safe name",
        ),
        (
            set_in(["datasets", "demo", "domains", 0, "collect"], "nonsense"),
            r"datasets\.demo\.domains\[0\] \(python_code\): unknown collector 'nonsense'; known: ",
        ),
        (
            set_in(["datasets", "demo", "proxy"], "nope"),
            r"datasets\.demo\.proxy: no proxy named 'nope'",
        ),
        (
            set_in(["datasets", "demo", "weights"], {"lam": 0}),
            r"datasets\.demo\.weights\.lam: 0 is too small",
        ),
        (
            set_in(["datasets", "demo", "weights"], {"tau": -1}),
            r"datasets\.demo\.weights\.tau: -1 is too small",
        ),
        (
            set_in(["datasets", "demo", "embedding"], {"layer": 3}),
            r"datasets\.demo\.embedding\.layer: 3 is out of range for proxy 'demo-tiny' with 2 blocks",
        ),
        (
            set_in(["proxies", "demo-tiny", "domains"], ["python_code", "klingon"]),
            r"proxies\.demo-tiny\.domains: \['klingon'\] are not domains of dataset 'demo'",
        ),
        (
            set_in(["proxies", "demo-tiny", "train", "checkpoints"], [100, 5000]),
            r"proxies\.demo-tiny\.train\.checkpoints: \[5000\] exceed steps=300",
        ),
        (
            set_in(["proxies", "demo-tiny", "tokenizer"], {"path": "/no/such/tokenizer"}),
            r"proxies\.demo-tiny\.tokenizer\.path: /no/such/tokenizer is not a directory",
        ),
        (
            set_in(["proxies", "demo-tiny", "model"], "13B"),
            r"proxies\.demo-tiny\.model",
        ),
        (
            lambda c: c["datasets"]["demo"]["domains"].append({"name": "x", "value": "X"}),
            r"domains\[9\] \(x\): `value` selects records of the dataset's mixed source",
        ),
        (
            lambda c: c["datasets"]["demo"]["domains"].append({"name": "y"}),
            r"datasets\.demo\.domains\[9\]: .*must have exactly one of collect, source, value",
        ),
        (
            lambda c: c["datasets"]["pile"].pop("domain_field"),
            r"datasets\.pile: 'domain_field' is a dependency of 'source'",
        ),
        (
            set_in(["datasets", "demo", "baselines"], {"regmix": {"target": "cc"}}),
            r"datasets\.demo\.baselines\.regmix\.target: 'cc' is not a domain of the dataset",
        ),
        (
            set_in(["datasets", "demo", "baselines"], {"regmix": {"runs": 1}}),
            r"datasets\.demo\.baselines\.regmix\.runs: 1 is too small",
        ),
        (
            set_in(
                ["datasets", "demo", "baselines"], {"regmix": {"top_k": 500, "candidates": 100}}
            ),
            r"datasets\.demo\.baselines\.regmix\.top_k: 500 exceeds candidates 100",
        ),
        (
            set_in(["datasets", "slimpajama", "baselines", "regmix", "prior"], {"cc": 1.0}),
            r"datasets\.slimpajama\.baselines\.regmix\.prior: .*missing \['arxiv', ",
        ),
        (
            set_in(["datasets", "demo", "baselines"], {"doge": {"mu": 0}}),
            r"datasets\.demo\.baselines\.doge\.mu: 0 is too small",
        ),
        (
            set_in(["datasets", "wiki40b", "methods"], ["uniform", "doremi"]),
            r"datasets\.wiki40b\.methods: doremi train proxies from scratch",
        ),
        (
            set_in(["datasets", "demo", "baselines"], {"dorami": {}}),
            r"datasets\.demo\.baselines: unknown key 'dorami'; allowed keys: doge, doremi, regmix",
        ),
        (
            lambda c: c["datasets"]["demo"]["domains"].append(
                {"name": "licenses.samples", "collect": "licenses"}
            ),
            r"datasets\.demo\.domains\[9\]\.name: 'licenses\.samples' ends in '\.samples': its "
            r"embedding licenses\.samples\.npy would be the per-sample embeddings of a domain "
            r"'licenses' and overwrite them; rename it, e.g\. to 'licenses_samples'",
        ),
        (
            set_in(["datasets", "demo-new", "domains", 11, "name"], "markdown.samples"),
            r"datasets\.demo-new\.domains\[11\]\.name: 'markdown\.samples' ends in '\.samples'",
        ),
        (
            lambda c: c["datasets"].__setitem__("logs", c["datasets"].pop("demo-new")),
            r"datasets\.logs: results/logs/ is the workflow's own folder",
        ),
        (
            set_in(["datasets", "demo", "weights"], {"lam": float("inf")}),
            r"datasets\.demo\.weights\.lam: inf is not a finite number; give a finite value",
        ),
        (
            set_in(["datasets", "demo", "weights"], {"tau": float("nan")}),
            r"datasets\.demo\.weights\.tau: nan is not a finite number",
        ),
        (
            set_in(["datasets", "demo", "max_bad_fraction"], float("nan")),
            r"datasets\.demo\.max_bad_fraction: nan is not a finite number",
        ),
        (
            set_in(["datasets", "demo", "baselines"], {"regmix": {"concentrations": [0.5, 1e999]}}),
            r"datasets\.demo\.baselines\.regmix\.concentrations\[1\]: inf is not a finite",
        ),
        (
            set_in(["datasets", "demo", "evaluation", "batch_size"], "big"),
            r"datasets\.demo\.evaluation\.batch_size: 'big' is not allowed; give a positive "
            r"integer or 'auto'",
        ),
        (
            set_in(["proxies", "demo-tiny", "model"], "100M"),
            r"proxies\.demo-tiny\.model: '100M' is not allowed; give 'tiny' or .* or a model "
            r"mapping",
        ),
        (
            set_in(["datasets", "demo", "human_weights", "licenses"], 0.58),
            r"datasets\.demo\.human_weights: weights sum to 1\.5000, not 1 \(within 0\.01\); fix them so they do",
        ),
        (
            lambda c: c["datasets"]["demo"]["human_weights"].pop("licenses"),
            r"datasets\.demo\.human_weights: weights must name every domain exactly; "
            r"missing \['licenses'\] \(domains: python_code, c_headers, ",
        ),
        (
            set_in(["datasets", "demo", "human_weights", "klingon"], 0.0),
            r"datasets\.demo\.human_weights: .*unknown \['klingon'\]",
        ),
        (
            lambda c: c["datasets"]["demo"]["human_weights"].update(licenses=-0.08, man_pages=0.32),
            r"datasets\.demo\.human_weights: weights must be >= 0, got \{'licenses': -0\.08\}",
        ),
    ],
)
def test_bad_config_is_refused_with_a_clear_message(edit, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(broken(edit))


def test_snakemake_refuses_a_bad_config_before_running_anything(tmp_path):
    import subprocess
    import sys

    bad = broken(set_in(["datasets", "demo", "sedd"], 1))
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    run = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "--configfile", str(tmp_path / "bad.yaml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "config: datasets.demo: unknown key 'sedd'" in run.stdout + run.stderr


def test_yaml_infinity_and_nan_are_refused_as_written():
    """`.inf` and `.nan` as a user types them, through the same YAML loader the workflow uses."""
    for value, shown in ((".inf", "inf"), (".nan", "nan"), ("-.inf", "-inf")):
        config = copy.deepcopy(SHIPPED)
        config["datasets"]["demo"]["weights"] = yaml.safe_load(f"{{lam: 10, tau: {value}}}")
        with pytest.raises(ConfigError, match=rf"datasets\.demo\.weights\.tau: {shown} is "):
            validate_config(config)


def test_human_weights_within_rounding_pass():
    """The Pile's published weights sum to 0.998: within the stated 0.01 of 1."""
    pile = validate_config(copy.deepcopy(SHIPPED))["datasets"]["pile"]
    assert 0.99 < sum(pile["human_weights"].values()) < 0.999


def test_every_per_domain_file_suffix_of_the_rules_is_known():
    """The name check covers every file a rule writes per domain beside other domains'."""
    from chameleon_mix.config import DOMAIN_FILE_SUFFIXES, RESERVED_ENDINGS

    rules = "".join(p.read_text() for p in (ROOT / "workflow" / "rules").glob("*.smk"))
    suffixes = set(re.findall(r"\{domain\}([^/\"'{}]+)[\"']", rules))
    assert suffixes and suffixes <= set(DOMAIN_FILE_SUFFIXES), suffixes
    assert RESERVED_ENDINGS == {".samples": (".samples.npy", ".npy")}


def test_a_reordered_config_resolves_to_the_same_settings():
    """Rules pass settings as params that Snakemake compares as text: key order must not matter."""
    import json

    from chameleon_mix.config import canonical

    reordered = yaml.safe_load(yaml.safe_dump(SHIPPED, sort_keys=True))
    differ = 0
    for entries in ("datasets", "proxies"):
        for name, mine in SHIPPED[entries].items():
            theirs = reordered[entries][name]
            differ += json.dumps(mine) != json.dumps(theirs)
            assert json.dumps(canonical(mine)) == json.dumps(canonical(theirs))
    assert differ  # the sorted copy really lists keys in another order
    # Lists keep their order: a dataset's domains are an ordered list.
    names = [d["name"] for d in canonical(SHIPPED["datasets"]["demo"])["domains"]]
    assert names == [d["name"] for d in SHIPPED["datasets"]["demo"]["domains"]]
