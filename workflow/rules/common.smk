"""Config validation and the small lookups the rules share. No computation lives here."""

import functools
import json
import sys
from pathlib import Path

from chameleon_mix.config import BASE_MODEL, ConfigError, canonical, validate_config
from chameleon_mix.corpus import COLLECTORS, missing_reason
from chameleon_mix.launch import job_json, launcher
from chameleon_mix.model import gpus_for_width, model_spec
from chameleon_mix.shards import partition_groups
from chameleon_mix.sources import SourceError, resolve_files

try:
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

# Each entry's settings in canonical key order (the datasets keep theirs: the first is the
# default target), so a reordered or sorted copy of the config reruns nothing.
DATASETS = {name: canonical(dataset) for name, dataset in config["datasets"].items()}
PROXIES = {name: canonical(proxy) for name, proxy in config["proxies"].items()}
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


def is_finetune(dataset):
    return DATASETS[dataset]["stage"] == "finetune"


def proxy_of(dataset):
    if is_finetune(dataset):
        raise WorkflowError(
            f"dataset {dataset!r} is a finetune dataset: it has no proxy (its pretrained "
            "model embeds its domains)"
        )
    return DATASETS[dataset]["proxy"]


def embedding_model(wildcards):
    """The proxy of a pretraining dataset; the pretrained model itself when finetuning."""
    if is_finetune(wildcards.dataset):
        return DATASETS[wildcards.dataset]["pretrained"]
    return f"results/proxies/{proxy_of(wildcards.dataset)}/model"


def embedding_model_name(dataset):
    """What weights.json and the embeddings record as their model."""
    if is_finetune(dataset):
        return DATASETS[dataset]["pretrained"]
    return proxy_of(dataset)


def dataset_tokenizer(dataset):
    """The tokenizer of the models trained on a dataset: the proxy's, or the pretrained one's."""
    if is_finetune(dataset):
        return DATASETS[dataset]["pretrained"]
    return tokenizer_path(proxy_of(dataset))


def model_gpus(dataset):
    """GPU request of a dataset's model jobs: by the proxy's size, or the pretrained model's."""
    if not is_finetune(dataset):
        return proxy_gpus(proxy_of(dataset))
    pretrained = DATASETS[dataset]["pretrained"]
    made_here = BASE_MODEL.match(pretrained)
    if made_here:
        return gpus_for_width(
            model_spec(base_settings(made_here["dataset"])["model"])["n_embd"]
        )
    config_json = Path(pretrained) / "config.json"
    if config_json.is_file():
        return gpus_for_width(
            json.loads(config_json.read_text()).get("hidden_size", 768)
        )
    return 1


def training_job(settings):
    """A training rule's job as JSON for ``chameleon_mix.launch``: its files and
    ``settings`` (name -> function of the wildcards)."""

    def job(wildcards, input, output):
        values = {name: setting(wildcards) for name, setting in settings.items()}
        return job_json(input, output, wildcards, values)

    return job


def job_launcher(wildcards, resources):
    """``python``, or ``torchrun`` with a process per GPU when the job has several."""
    return launcher(resources.gpu, getattr(resources, "nodes", 1))


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
    return gpus_for_width(model_spec(PROXIES[proxy]["model"])["n_embd"])


def checkpoint_steps(dataset):
    if is_finetune(dataset):
        raise WorkflowError(
            f"dataset {dataset!r} is a finetune dataset: there are no proxy checkpoints to "
            "check the weights' stability against"
        )
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
        parts = partition_parts(wildcards.dataset)
        return {
            "parts": [f"{p}.parquet" for p in parts],
            "part_stats": [f"{p}.json" for p in parts],
        }
    return {}


@functools.cache
def partition_sources(dataset):
    """The source of each partition job of a dataset's mixed source: its files, sorted,
    `partition.files_per_job` to a job. The glob is resolved when the DAG is built, so files
    added to the source add jobs (and shift the later groups) on the next run."""
    try:
        return partition_groups(
            DATASETS[dataset]["source"], DATASETS[dataset]["partition"]["files_per_job"]
        )
    except SourceError as err:
        raise WorkflowError(f"dataset {dataset!r}, source: {err}") from None


def partition_parts(dataset):
    return [
        f"results/{dataset}/partition/part-{i:05d}"
        for i in range(len(partition_sources(dataset)))
    ]


def partition_job_source(wildcards):
    return partition_sources(wildcards.dataset)[int(wildcards.part)]


def partition_files(wildcards):
    source = partition_job_source(wildcards)
    return [str(p) for p in resolve_files(source)] if "files" in source else []


def corpus_manifests(dataset):
    """The corpus manifest of each collected (`collect:`) domain, by domain name."""
    return {
        d["name"]: f"results/corpus/{d['collect']}.manifest.json"
        for d in USABLE[dataset]
        if "collect" in d
    }


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


def token_files(dataset, name, domain_names=None):
    """One token file (`stats.json`, `train.bin`, `test.offsets.npy`, ...) per domain, in the
    domain order; scripts take each domain's directory from its `stats.json`."""
    return expand(
        "results/{dataset}/tokens/{domain}/{name}",
        dataset=dataset,
        domain=domain_names or domains(dataset),
        name=name,
    )


def proxy_token_files(proxy, name):
    """The proxy's domains' token files: its dataset's, so tokenized with the tokenizer of the
    dataset's proxy, which must be this one."""
    dataset = PROXIES[proxy]["dataset"]
    if proxy_of(dataset) != proxy:
        raise WorkflowError(
            f"proxy {proxy!r} trains on dataset {dataset!r}, whose token files are written "
            f"with the tokenizer of its own proxy {proxy_of(dataset)!r}; set "
            f"datasets.{dataset}.proxy to {proxy!r} or train {proxy!r} on a dataset that names it"
        )
    return token_files(dataset, name, proxy_domains(proxy))


def base_settings(dataset):
    """The base model and schedule: the dataset's `base:` entry, else its proxy's."""
    proxy = PROXIES[proxy_of(dataset)]
    base = DATASETS[dataset].get("base", {})
    return {
        "model": base.get("model", proxy["model"]),
        "train": base.get("train", proxy["train"]),
    }


def finetune_settings(dataset):
    return DATASETS[dataset]["finetune"]["train"]


def batch_tokens(dataset):
    """Tokens per optimizer step of the dataset's models (base or finetuning schedule), the
    global batch the export writes for OLMo-core."""
    train = (
        finetune_settings(dataset)
        if is_finetune(dataset)
        else base_settings(dataset)["train"]
    )
    return train["batch_size"] * train["seq_len"]


def trained_models(dataset):
    """Where the model trained with each mixture lives: base/ (pretraining) or finetune/."""
    return f"results/{dataset}/{'finetune' if is_finetune(dataset) else 'base'}"


def trained_model(wildcards):
    return f"{trained_models(wildcards.dataset)}/{wildcards.method}/model"


def reused_proxy(dataset):
    """Whether the proxy was trained for another dataset (its cost is not this one's)."""
    return not is_finetune(dataset) and PROXIES[proxy_of(dataset)]["dataset"] != dataset


def chameleon_inputs(wildcards):
    """Chameleon's cost includes the proxy's training; finetuning trains none."""
    inputs = {"weights": f"results/{wildcards.dataset}/weights.json"}
    if not is_finetune(wildcards.dataset):
        inputs["proxy_log"] = (
            f"results/proxies/{proxy_of(wildcards.dataset)}/train_log.json"
        )
    return inputs


def methods(dataset):
    return DATASETS[dataset]["methods"]


def method_files(wildcards):
    """Everything the report reads, per method: mixture, base training log, evaluations."""
    root = f"results/{wildcards.dataset}"
    return {
        f"{kind}_{method}": path.format(
            root=root, models=trained_models(wildcards.dataset), method=method
        )
        for method in methods(wildcards.dataset)
        for kind, path in {
            "mixture": "{root}/mixtures/{method}.json",
            "train_log": "{models}/{method}/train_log.json",
            "perplexity": "{root}/eval/{method}/perplexity.json",
            "downstream": "{root}/eval/{method}/downstream.json",
        }.items()
    }


def baseline(dataset, method):
    """A baseline mixer's settings (`baselines.<method>` of the dataset)."""
    return DATASETS[dataset]["baselines"][method]


def proxy_schedule(dataset, steps=None):
    """The proxy's schedule for the baselines' models: `steps` when given, no kept checkpoints
    (their weights are recorded at every step instead)."""
    train = PROXIES[proxy_of(dataset)]["train"]
    return {**train, "steps": steps or train["steps"], "checkpoints": []}


def doremi_reference_reused(dataset):
    """Whether the uniform proxy was trained on exactly this dataset's domains, and so is
    DoReMi's reference model."""
    proxy = proxy_of(dataset)
    return PROXIES[proxy]["dataset"] == dataset and set(proxy_domains(proxy)) == set(
        domains(dataset)
    )


def doremi_reference(dataset):
    """The reused proxy, or a uniform model of the proxy's size trained here."""
    if doremi_reference_reused(dataset):
        return f"results/proxies/{proxy_of(dataset)}"
    return f"results/{dataset}/doremi/reference"


def regmix_model(dataset):
    return baseline(dataset, "regmix").get("model", PROXIES[proxy_of(dataset)]["model"])


def regmix_runs(wildcards):
    runs = baseline(wildcards.dataset, "regmix")["runs"]
    return expand(
        "results/{dataset}/regmix/runs/{run}.json",
        dataset=wildcards.dataset,
        run=range(runs),
    )


def regmix_run_settings(dataset):
    """What a run depends on; `runs`, `target` and the simulation stay out, so changing them
    retrains no run."""
    regmix = baseline(dataset, "regmix")
    return {
        key: regmix[key] for key in ("seed", "concentrations", "temperature", "prior")
    }


def trajectory_files(wildcards):
    """Weights against proxy steps, for the report's stability figure: Chameleon's per kept
    checkpoint, DoReMi's and DoGE's per step; only for the methods the dataset runs."""
    root = f"results/{wildcards.dataset}"
    files = {
        "doremi": f"{root}/doremi/proxy/train_log.json",
        "doge": f"{root}/doge/proxy/train_log.json",
    }
    if not is_finetune(wildcards.dataset):
        files["chameleon"] = f"{root}/stability.csv"
    return {
        f"trajectory_{method}": path
        for method, path in files.items()
        if method in methods(wildcards.dataset)
    }
