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
    assert demo["weights"] == {
        "lam": 10,
        "tau": None,
        "temperature": None,
        "center": True,
        "normalize": True,
        "bootstrap": 200,
    }
    assert demo["embedding"]["layer"] is None and demo["embedding"]["samples"] == 1024
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
            r"datasets\.demo\.domains: 0 domain\(s\): a mixture needs at least 2 domains to weight",
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
            r"proxies\.demo-tiny\.train\.checkpoints: \[5000\] exceed steps=1000",
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
            r"datasets\.wiki40b\.methods: doremi cannot weight a finetune dataset \(the "
            r"baseline mixers train proxies from scratch",
        ),
        (
            set_in(["datasets", "demo", "methods"], ["uniform", "chameleon_pt"]),
            r"datasets\.demo\.methods: chameleon_pt cannot weight a pretrain dataset",
        ),
        (
            set_in(["datasets", "demo", "methods"], ["uniform", "dorami"]),
            r"datasets\.demo\.methods: unknown method\(s\) \['dorami'\]; known: uniform, natural, "
            r"human, chameleon, chameleon_pt, chameleon_target, target_affinity, doremi, doge, "
            r"regmix",
        ),
        (
            set_in(["datasets", "demo", "base", "train"], {"lr": 1e-3, "min_lr": 1e-2}),
            r"datasets\.demo\.base\.train\.min_lr: 0\.01 exceeds lr 0\.001",
        ),
        (
            set_in(["datasets", "demo-code", "finetune", "train", "micro_batch_size"], 5),
            r"datasets\.demo-code\.finetune\.train\.micro_batch_size: 5 does not divide "
            r"batch_size 16",
        ),
        (
            set_in(["datasets", "demo-clusters", "domains", "cluster", "dataset"], "demo-code"),
            r"datasets\.demo-clusters\.domains\.cluster\.dataset: 'demo-code' is a finetune "
            r"dataset; name a pretraining dataset with listed domains and the same proxy",
        ),
        (
            set_in(["datasets", "demo-clusters", "domains", "cluster", "dataset"], "slimpajama"),
            r"'slimpajama' is embedded by proxy 'slimpajama-82m', this dataset by 'demo-tiny'",
        ),
        (
            set_in(["proxies", "demo-tiny", "dataset"], "demo-clusters"),
            r"proxies\.demo-tiny\.dataset: 'demo-clusters' is clustered by the embeddings of "
            r"its proxy, so no proxy can train on its clusters",
        ),
        (
            set_in(["datasets", "demo", "seeds"], [0, 0]),
            r"datasets\.demo\.seeds: \[0, 0\] has non-unique elements",
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
            set_in(["datasets", "demo", "seeds"], [0, 1.0]),
            r"datasets\.demo\.seeds\[1\]: 1\.0 is not an integer; write it without a decimal point",
        ),
        (
            set_in(["datasets", "demo", "splits", "train"], 200.0),
            r"datasets\.demo\.splits\.train: 200\.0 is not an integer",
        ),
        (
            lambda c: c["datasets"]["demo-new"].update(
                domains=c["datasets"]["demo-new"]["domains"][:1]
            ),
            r"datasets\.demo-new\.domains: 1 domain\(s\): a mixture needs at least 2 domains to weight",
        ),
        (
            set_in(["proxies", "slimpajama-82m", "dataset"], "demo"),
            r"proxies\.slimpajama-82m\.dataset: 'demo' is tokenized with the tokenizer of its "
            r"own proxy 'demo-tiny', so 'slimpajama-82m' cannot train on its token files",
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


def resolved(edit=lambda config: None):
    from chameleon_mix.settings import resolve

    return resolve(validate_config(broken(edit)))


def test_a_base_model_without_a_schedule_trains_on_the_proxys():
    """config/README: `base.train` absent = the proxy's schedule (not the schema's 2000 steps)."""

    def model_only(config):
        config["datasets"]["demo-new"]["base"] = {
            "model": {"n_layer": 1, "n_head": 2, "n_embd": 64}
        }

    demo_new = resolved(model_only)["datasets"]["demo-new"]
    proxy_train = SHIPPED["proxies"]["demo-tiny"]["train"]
    base = demo_new["schedules"]["base"]
    assert base["steps"] == proxy_train["steps"] == 1000 and base["lr"] == proxy_train["lr"]
    assert base["checkpoints"] == []  # kept checkpoints are the proxy's, for stability
    assert demo_new["models"]["base"] == {"n_layer": 1, "n_head": 2, "n_embd": 64, "n_inner": 256}
    assert demo_new["seeds"] == [base["seed"]]


def test_every_schedule_and_model_is_explicit():
    datasets = resolved()["datasets"]
    train_keys = set(SCHEMA["$defs"]["train"]["properties"])
    for name, dataset in datasets.items():
        for job, schedule in dataset["schedules"].items():
            assert set(schedule) == train_keys, (name, job)
        for model in dataset.get("models", {}).values():
            assert {"n_layer", "n_head", "n_embd", "n_inner"} <= set(model)
    slimpajama = datasets["slimpajama"]
    # DoReMi's reference trains on DoReMi's schedule, so the 2k-step proxy is not reused.
    assert slimpajama["schedules"]["doremi_reference"] == slimpajama["schedules"]["doremi"]
    assert slimpajama["schedules"]["doremi"]["steps"] == 10000
    assert not slimpajama["doremi_reference_reused"] and datasets["demo"]["doremi_reference_reused"]
    assert slimpajama["weights"]["tau"] == 5.0 and datasets["wiki40b"]["weights"]["tau"] == 0.2


SCHEMA = yaml.safe_load((ROOT / "workflow" / "schemas" / "config.schema.yaml").read_text())


def schema_defaults(node):
    return {k: v["default"] for k, v in node["properties"].items() if "default" in v}


def test_the_librarys_defaults_are_the_schemas():
    """Each default is written once: where a library function or class has a default for a
    config key, it is the schema's."""
    import dataclasses
    import inspect

    from chameleon_mix import corpus, doge, doremi, krls, regmix, train, weights

    dataset = SCHEMA["$defs"]["dataset"]["properties"]
    baselines = dataset["baselines"]["properties"]
    pairs = [
        (krls.chameleon_weights, dataset["weights"]),
        (weights.compute_weights, dataset["weights"]),
        (doremi.DoReMi, baselines["doremi"]),
        (doge.DoGE, baselines["doge"]),
        (regmix.regmix_mixture, baselines["regmix"]),
        (corpus.collect, SCHEMA["properties"]["corpus"]),
    ]
    checked = 0
    for function, node in pairs:
        defaults = schema_defaults(node)
        for name, parameter in inspect.signature(function).parameters.items():
            if parameter.default is inspect.Parameter.empty or name not in defaults:
                continue
            if parameter.default is None and defaults[name] is not None:
                continue  # None: the module's named constant, compared below
            if defaults[name] is None and name in ("tau", "temperature"):
                continue  # null: decided per dataset (chameleon_mix.settings), checked below
            assert parameter.default == defaults[name], (function.__qualname__, name)
            checked += 1
    fields = {f.name: f for f in dataclasses.fields(train.TrainConfig)}
    for name, default in schema_defaults(SCHEMA["$defs"]["train"]).items():
        field = fields[name]
        value = field.default_factory() if field.default is dataclasses.MISSING else field.default
        assert value == default, ("TrainConfig", name)
        checked += 1
    corpus_defaults = schema_defaults(SCHEMA["properties"]["corpus"])
    assert corpus_defaults["max_rejected_fraction"] == corpus.MAX_REJECTED_FRACTION
    assert krls.DEFAULT_TAU == {"pretrain": 5.0, "finetune": 0.2}  # the paper's; schema: null
    assert krls.DEFAULT_TEMPERATURE == "paper"
    datasets = resolved()["datasets"]
    assert datasets["demo"]["weights"]["temperature"] == "paper"
    assert datasets["demo"]["weights"]["tau"] == krls.DEFAULT_TAU["pretrain"]
    assert checked >= 20


def test_proxy_replicates_and_doremis_reference():
    """A proxy trains one replicate per seed (absent: its schedule's seed). DoReMi reuses the
    uniform proxy as its reference only for a uniform reference and when the first replicate
    is exactly DoReMi's run."""
    datasets, proxies = resolved()["datasets"], resolved()["proxies"]
    assert proxies["slimpajama-82m"]["seeds"] == [proxies["slimpajama-82m"]["train"]["seed"]]

    def natural(config):
        config["datasets"]["demo"]["baselines"]["doremi"] = {"reference": "natural"}

    assert datasets["demo"]["doremi_reference_reused"]
    assert datasets["demo"]["baselines"]["doremi"]["reference"] == "uniform"
    assert not resolved(natural)["datasets"]["demo"]["doremi_reference_reused"]

    def other_first_seed(config):
        config["proxies"]["demo-tiny"]["seeds"] = [5, 0]

    changed = resolved(other_first_seed)
    assert changed["proxies"]["demo-tiny"]["seeds"] == [5, 0]
    assert not changed["datasets"]["demo"]["doremi_reference_reused"]

    def repeated(config):
        config["proxies"]["demo-tiny"]["seeds"] = [1, 1]

    with pytest.raises(ConfigError, match="proxies.demo-tiny.seeds"):
        resolved(repeated)


def test_a_domains_data_and_the_exports_run(tmp_path):
    """`data:` (user-held data per domain): every path checked, its defaults filled once;
    `export:` the production run's sequence length and batch."""
    from chameleon_mix.config import SCHEMA_PATH
    from chameleon_mix.plan import Plan

    for name in ("code.bin", "code.idx", "tokens.npy"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "mds").mkdir()
    name = SHIPPED["datasets"]["demo"]["domains"][0]["name"]
    where = rf"datasets\.demo\.domains\[0\] \({name}\)\.data"

    def with_data(data, export=None):
        def edit(config):
            if data is not None:
                config["datasets"]["demo"]["domains"][0]["data"] = data
            if export:
                config["datasets"]["demo"]["export"] = export

        return broken(edit)

    config = validate_config(
        with_data({"megatron": [str(tmp_path / "code")], "mosaic": str(tmp_path / "mds")})
    )
    demo = config["datasets"]["demo"]
    assert demo["domains"][0]["data"]["tokens"] is None
    assert demo["domains"][0]["data"]["documents"] is None
    assert "data" not in demo["domains"][1]  # a domain without: split by the by-domain target
    assert demo["export"] == {"seq_length": None, "global_batch_tokens": None}
    plan = Plan.from_config(config, SCHEMA_PATH).dataset("demo")
    assert list(plan.declared_data) == [name]
    train = plan.schedule(plan.training)
    assert plan.export_run == {
        "seq_length": train["seq_len"],
        "global_batch_tokens": train["batch_size"] * train["seq_len"],
    }
    run = {"seq_length": 4096, "global_batch_tokens": 4096 * 512}
    config = validate_config(with_data({"olmo_core": [str(tmp_path / "tokens.npy")]}, run))
    assert Plan.from_config(config, SCHEMA_PATH).dataset("demo").export_run == run

    for data, message in [
        (
            {"megatron": [str(tmp_path / "gone")]},
            rf"{where}\.megatron\[0\]: {tmp_path / 'gone'}\.idx does not exist; fix the path",
        ),
        (
            {"olmo_core": [str(tmp_path / "tokens.npy"), str(tmp_path / "x.npy")]},
            rf"{where}\.olmo_core\[1\]: .*x\.npy does not exist",
        ),
        ({"litdata": str(tmp_path / "code.bin")}, rf"{where}\.litdata: .* \(or is not a folder\)"),
        ({"mosaic": str(tmp_path / "mds")}, rf"{where}: without token files .* give data\.tokens"),
        ({"tokens": 5}, rf"{where}: name the domain's data"),
        # The schema's own messages name the key path without the domain's name.
        ({"megatron": []}, r"domains\[0\]\.data\.megatron: \[\] should be non-empty"),
        ({"megatron": [str(tmp_path / "code")], "npy": []}, r"\.data: unknown key 'npy'"),
    ]:
        with pytest.raises(ConfigError, match=message):
            validate_config(with_data(data))
    with pytest.raises(ConfigError, match=r"export\.global_batch_tokens: 1000 is not a multiple"):
        validate_config(with_data(None, {"seq_length": 64, "global_batch_tokens": 1000}))
