"""Config validation and the small lookups the rules share. No computation lives here."""

import sys

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
    method=r"[A-Za-z0-9_]+",


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
    if dataset not in DATASETS:
        raise WorkflowError(
            f"no dataset {dataset!r} in the config; defined: {', '.join(DATASETS)}"
        )
    return [d["name"] for d in USABLE[dataset]]


# `snakemake` with no target weights the demo, or the first dataset of a config without one.
DEFAULT_DATASET = "demo" if "demo" in DATASETS else next(iter(DATASETS))


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


def tokenizer_path(proxy):
    """A configured tokenizer directory, or the one trained for the proxy."""
    return (
        PROXIES[proxy]["tokenizer"].get("path") or f"results/proxies/{proxy}/tokenizer"
    )


def proxy_gpus(proxy):
    """Request a GPU for real proxy sizes; the CPU demo size needs none."""
    return 0 if model_spec(PROXIES[proxy]["model"])["n_embd"] < 512 else 1


def proxy_model_dir(wildcards):
    return f"results/proxies/{proxy_of(wildcards.dataset)}/model"


def checkpoint_steps(dataset):
    proxy = PROXIES[proxy_of(dataset)]
    return sorted(set(proxy["train"]["checkpoints"]) | {proxy["train"]["steps"]})


def splits(wildcards):
    return DATASETS[wildcards.dataset]["splits"]


def shard_source(wildcards):
    """The domain's own source; nothing about the other domains, so adding one reruns nothing."""
    domain = domain_entry(wildcards)
    if "collect" in domain:
        return {"files": f"results/corpus/{domain['collect']}.jsonl", "format": "jsonl"}
    if "value" in domain:
        return {"partition": str(domain["value"])}
    return domain["source"]


def shard_inputs(wildcards):
    domain = domain_entry(wildcards)
    if "collect" in domain:
        return {"documents": f"results/corpus/{domain['collect']}.jsonl"}
    if "value" in domain:
        return {"partition": f"results/{wildcards.dataset}/partition"}
    return {}


def embeddings(dataset, ckpt="final"):
    return expand(
        "results/{dataset}/embeddings/{ckpt}/{domain}.npy",
        dataset=dataset,
        ckpt=ckpt,
        domain=domains(dataset),
    )


def weight_params(wildcards):
    dataset = DATASETS[wildcards.dataset]
    return {"stage": dataset["stage"], **dataset["weights"]}


def stability_checkpoint(dataset, step):
    """The final step's embeddings are the ones weights.json used: reuse them."""
    return (
        "final"
        if step == PROXIES[proxy_of(dataset)]["train"]["steps"]
        else f"step-{step}"
    )


def stability_inputs(wildcards):
    return {
        f"step_{step}": embeddings(
            wildcards.dataset, stability_checkpoint(wildcards.dataset, step)
        )
        for step in checkpoint_steps(wildcards.dataset)
    }


def shards(dataset, split):
    return expand(
        "results/{dataset}/shards/{domain}/{split}.parquet",
        dataset=dataset,
        domain=domains(dataset),
        split=split,
    )


def base_settings(dataset):
    """The base model and schedule: the dataset's `base:` entry, else its proxy's."""
    proxy = PROXIES[proxy_of(dataset)]
    base = DATASETS[dataset].get("base", {})
    return {
        "model": base.get("model", proxy["model"]),
        "train": base.get("train", proxy["train"]),
    }


def methods(dataset):
    return DATASETS[dataset]["methods"]


def method_files(wildcards):
    """Everything the report reads, per method: mixture, base training log, evaluations."""
    root = f"results/{wildcards.dataset}"
    return {
        f"{kind}_{method}": path.format(root=root, method=method)
        for method in methods(wildcards.dataset)
        for kind, path in {
            "mixture": "{root}/mixtures/{method}.json",
            "train_log": "{root}/base/{method}/train_log.json",
            "perplexity": "{root}/eval/{method}/perplexity.json",
            "downstream": "{root}/eval/{method}/downstream.json",
        }.items()
    }
