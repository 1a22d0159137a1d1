"""Config validation and the small lookups the rules share. No computation lives here."""

import sys
from pathlib import Path

from chameleon_mix.config import ConfigError, validate_config
from chameleon_mix.corpus import COLLECTORS, missing_reason
from chameleon_mix.model import model_spec

try:
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

DATASETS = config["datasets"]
PROXIES = config["proxies"]
SAFE = "[A-Za-z0-9][A-Za-z0-9_.+-]*"


wildcard_constraints:
    dataset=SAFE,
    domain=SAFE,
    proxy=SAFE,
    collector="|".join(sorted(COLLECTORS)),
    ckpt=r"final|step-\d+",


def _usable(domain):
    """Demo domains whose source is not on this machine are skipped with a warning."""
    if "collect" not in domain:
        return True
    reason = missing_reason(domain["collect"])
    if reason:
        print(f"warning: skipping domain {domain['name']!r}: {reason}", file=sys.stderr)
    return reason is None


USABLE = {
    name: [d for d in ds["domains"] if _usable(d)] for name, ds in DATASETS.items()
}


def domains(dataset):
    return [d["name"] for d in USABLE[dataset]]


def domain_entry(wildcards):
    for domain in DATASETS[wildcards.dataset]["domains"]:
        if domain["name"] == wildcards.domain:
            return domain
    raise WorkflowError(
        f"dataset {wildcards.dataset!r} has no domain {wildcards.domain!r}; "
        f"its domains: {', '.join(domains(wildcards.dataset))}"
    )


def proxy_of(dataset):
    return DATASETS[dataset]["proxy"]


def proxy_domains(proxy):
    usable = set(domains(PROXIES[proxy]["dataset"]))
    return [d for d in PROXIES[proxy]["domains"] if d in usable]


def proxy_train_shards(wildcards):
    dataset = PROXIES[wildcards.proxy]["dataset"]
    return [
        f"results/{dataset}/shards/{d}/train.parquet"
        for d in proxy_domains(wildcards.proxy)
    ]


def tokenizer_dir(wildcards):
    path = PROXIES[wildcards.proxy]["tokenizer"].get("path")
    return path or f"results/proxies/{wildcards.proxy}/tokenizer"


def proxy_gpus(proxy):
    """Request a GPU for real proxy sizes; the CPU demo size needs none."""
    return 0 if model_spec(PROXIES[proxy]["model"])["n_embd"] < 512 else 1


def proxy_model_dir(wildcards):
    return f"results/proxies/{proxy_of(wildcards.dataset)}/model"


def checkpoint_steps(dataset):
    proxy = PROXIES[proxy_of(dataset)]
    return sorted(set(proxy["train"]["checkpoints"]) | {proxy["train"]["steps"]})
