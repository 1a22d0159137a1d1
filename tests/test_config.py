"""Config validation: each bad input gets one message naming the key and what to do."""

import copy
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
