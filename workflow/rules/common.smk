"""Config validation and the small lookups the rules share. No computation lives here."""

import functools
import json
import sys
from pathlib import Path

from chameleon_mix.config import BASE_MODEL, ConfigError, validate_config
from chameleon_mix.corpus import COLLECTORS, missing_reason
from chameleon_mix.launch import job_json, launcher
from chameleon_mix.methods import METHODS, reweighted_proxies
from chameleon_mix.model import gpus_for_width
from chameleon_mix.settings import resolve
from chameleon_mix.shards import partition_groups
from chameleon_mix.sources import SourceError, resolve_files

try:
    validate_config(config, workflow.source_path("../schemas/config.schema.yaml"))
except ConfigError as err:
    raise WorkflowError(str(err)) from None

# The config resolved once into plain values (chameleon_mix.settings), every mapping in
# canonical key order, so a reordered or sorted copy of the config reruns nothing.
RESOLVED = resolve(config)
DATASETS = RESOLVED["datasets"]
PROXIES = RESOLVED["proxies"]
SAFE = "[A-Za-z0-9][A-Za-z0-9_.+-]*"


wildcard_constraints:
    dataset=SAFE,
    domain=SAFE,
    proxy=SAFE,
    collector="|".join(sorted(COLLECTORS)),
    ckpt=r"final|step-\d+",
    embedder=r"seed-\d+|pretrained",
    method="|".join(METHODS),
    seed=r"\d+",


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


def embedders(dataset):
    """The models that embed a dataset's domains, as the embeddings' directories name them:
    each replicate of its proxy (``seed-<s>``), or the pretrained model when finetuning.
    """
    if is_finetune(dataset):
        return ["pretrained"]
    return [f"seed-{seed}" for seed in PROXIES[proxy_of(dataset)]["seeds"]]


def proxy_dir(proxy, seed=None):
    """A replicate's directory; the first seed's by default (the proxy that DoReMi may reuse
    and that embeds a clustered dataset's documents)."""
    seed = PROXIES[proxy]["seeds"][0] if seed is None else seed
    return f"results/proxies/{proxy}/seed-{seed}"


def proxy_replicate_schedule(wildcards):
    """A proxy replicate's schedule: the proxy's, with the replicate's seed."""
    return {**PROXIES[wildcards.proxy]["train"], "seed": int(wildcards.seed)}


def embedding_model(wildcards):
    """The pretrained model itself when finetuning; else the proxy replicate of the
    ``embedder`` wildcard (embed_domain), or the first replicate where there is none
    (embed_documents: a clustered dataset's documents are embedded and clustered once).
    """
    if is_finetune(wildcards.dataset):
        return DATASETS[wildcards.dataset]["pretrained"]
    embedder = getattr(wildcards, "embedder", None)
    seed = embedder and int(embedder.removeprefix("seed-"))
    return f"{proxy_dir(proxy_of(wildcards.dataset), seed)}/model"


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
        base = DATASETS[made_here["dataset"]]["models"]["base"]
        return gpus_for_width(base["n_embd"])
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
    return gpus_for_width(PROXIES[proxy]["model"]["n_embd"])


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
    if "cluster" in domain:  # a cluster of a clustered dataset (rules/clusters.smk)
        return {"cluster": domain["cluster"]}
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
    if "cluster" in domain:
        return {
            "assignments": f"results/{wildcards.dataset}/clusters/assignments.parquet"
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
    """Every embedder's domain embeddings, embedder by embedder (the order of embedders())."""
    return expand(
        "results/{dataset}/embeddings/{embedder}/{ckpt}/{domain}.npy",
        dataset=dataset,
        embedder=embedders(dataset),
        ckpt=ckpt,
        domain=domains(dataset),
    )


def embedding_samples(dataset):
    """The sample embeddings beside each of embeddings(dataset)."""
    return [path.removesuffix(".npy") + ".samples.npy" for path in embeddings(dataset)]


def weight_params(wildcards):
    return DATASETS[wildcards.dataset]["weights"]


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


def schedule(dataset, job):
    """The complete schedule of one of a dataset's training jobs (`base`, `finetune`,
    `doremi`, `doremi_reference`, `doge`, `regmix`)."""
    return DATASETS[dataset]["schedules"][job]


def seeded_schedule(wildcards):
    """The base (finetune) schedule of one seed's model."""
    job = "finetune" if is_finetune(wildcards.dataset) else "base"
    return {**schedule(wildcards.dataset, job), "seed": int(wildcards.seed)}


def batch_tokens(dataset):
    """Tokens per optimizer step of the dataset's models (base or finetuning schedule), the
    global batch the export writes for OLMo-core."""
    train = schedule(dataset, "finetune" if is_finetune(dataset) else "base")
    return train["batch_size"] * train["seq_len"]


def trained_models(dataset):
    """Where the models trained with each mixture live: base/ (pretraining) or finetune/."""
    return f"results/{dataset}/{'finetune' if is_finetune(dataset) else 'base'}"


def trained_model(wildcards):
    return f"{trained_models(wildcards.dataset)}/{wildcards.method}/seed-{wildcards.seed}/model"


def methods(dataset):
    return DATASETS[dataset]["methods"]


def seeds(dataset):
    return DATASETS[dataset]["seeds"]


def doremi_reference(dataset):
    """The reused uniform proxy, or a uniform model trained here on DoReMi's schedule."""
    if DATASETS[dataset]["doremi_reference_reused"]:
        return proxy_dir(proxy_of(dataset))
    return f"results/{dataset}/doremi/reference"


def regmix_runs(dataset):
    return expand(
        "results/{dataset}/regmix/runs/{run}.json",
        dataset=dataset,
        run=range(DATASETS[dataset]["baselines"]["regmix"]["runs"]),
    )


def method_input(dataset, method, name):
    """The file (or files) a registry input name stands for; None where the dataset has none."""
    if name == "weights":
        return f"results/{dataset}/weights.json"
    if name == "uniform_proxy_logs":
        if is_finetune(dataset):
            return None  # finetuning trains no proxy
        proxy = proxy_of(dataset)
        return [
            f"{proxy_dir(proxy, s)}/train_log.json" for s in PROXIES[proxy]["seeds"]
        ]
    if name == "method_proxy_log":
        return f"results/{dataset}/{method}/proxy/train_log.json"
    if name == "reference_log":
        return f"{doremi_reference(dataset)}/train_log.json"
    if name == "reference":
        return f"{doremi_reference(dataset)}/model"
    if name == "runs":
        return regmix_runs(dataset)
    if name == "stability":
        return None if is_finetune(dataset) else f"results/{dataset}/stability.csv"
    raise WorkflowError(f"method {method!r} names an unknown input {name!r}")


def named_inputs(dataset, method, names):
    files = {name: method_input(dataset, method, name) for name in names}
    return {name: path for name, path in files.items() if path is not None}


def mixture_inputs(wildcards):
    """The files the method's registry entry computes its mixture from."""
    return named_inputs(
        wildcards.dataset, wildcards.method, METHODS[wildcards.method].inputs
    )


def mixture_settings(wildcards):
    return METHODS[wildcards.method].settings(DATASETS[wildcards.dataset])


def reweighted_proxy_inputs(wildcards):
    return named_inputs(
        wildcards.dataset, wildcards.method, METHODS[wildcards.method].proxy_inputs
    )


def method_settings(wildcards):
    """A baseline's own settings for its training job, its schedule apart."""
    settings = DATASETS[wildcards.dataset]["baselines"][wildcards.method]
    return {key: value for key, value in settings.items() if key != "train"}


def report_inputs(wildcards):
    """Everything the report reads: each method's mixture, and per seed its model's training
    log and evaluations."""
    dataset = wildcards.dataset
    root, models = f"results/{dataset}", trained_models(dataset)
    files = {}
    for method in methods(dataset):
        files[f"mixture_{method}"] = f"{root}/mixtures/{method}.json"
        for seed in seeds(dataset):
            run = f"{method}/seed-{seed}"
            files[f"train_log_{method}_{seed}"] = f"{models}/{run}/train_log.json"
            files[f"perplexity_{method}_{seed}"] = f"{root}/eval/{run}/perplexity.json"
            files[f"downstream_{method}_{seed}"] = f"{root}/eval/{run}/downstream.json"
    return files


def regmix_run_settings(dataset):
    """What a run depends on; `runs`, `target` and the simulation stay out, so changing them
    retrains no run."""
    regmix = DATASETS[dataset]["baselines"]["regmix"]
    return {
        key: regmix[key]
        for key in ("seed", "concentrations", "temperature", "prior", "max_usage")
    }


def trajectory_files(wildcards):
    """Weights against proxy steps, for the report's stability figure: Chameleon's per kept
    checkpoint, the reweighted proxies' per step, for the methods the dataset runs."""
    dataset = wildcards.dataset
    files = {}
    for method in methods(dataset):
        name = METHODS[method].trajectory
        path = name and method_input(dataset, method, name)
        if path:
            files[f"trajectory_{method}"] = path
    return files


# --- clustered datasets (workflow/rules/clusters.smk) ---


def cluster_source(dataset):
    """The dataset whose documents a clustered dataset pools."""
    if "clusters" not in DATASETS[dataset]:
        raise WorkflowError(
            f"dataset {dataset!r} is not a clustered dataset (domains: {{cluster: ...}})"
        )
    return DATASETS[dataset]["clusters"]["dataset"]


def cluster_parts(dataset):
    """[domain, split] of every pooled part, in the order of the document vectors."""
    return [
        [domain, split]
        for domain in domains(cluster_source(dataset))
        for split in ("train", "val", "test")
    ]


def cluster_part_files(dataset, path):
    """``path`` (with {domain} and {split}) for every pooled part of the source dataset."""
    return [
        f"results/{cluster_source(dataset)}/{path.format(domain=d, split=s)}"
        for d, s in cluster_parts(dataset)
    ]


def labelled_models(dataset):
    """The models of the labelled comparison, "dataset/method" -> one perplexity file on the
    source's labelled domains per seed: the source's models of the clustered dataset's
    methods first (its uniform is the baseline), then the clustered dataset's."""
    source = cluster_source(dataset)
    models = {
        f"{source}/{m}": [
            f"results/{source}/eval/{m}/seed-{s}/perplexity.json" for s in seeds(source)
        ]
        for m in methods(dataset)
        if m in methods(source)
    }
    for m in methods(dataset):
        models[f"{dataset}/{m}"] = [
            f"results/{dataset}/eval/{m}/seed-{s}/labelled.json" for s in seeds(dataset)
        ]
    return models
