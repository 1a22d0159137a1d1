"""The validated config resolved once into the plain values every rule reads.

The schema fills each key's default; this module then makes every remaining decision once:
which model and schedule each training job gets (a base model without `train:` trains on its
proxy's schedule; a baseline's `train:` overlays the proxy's), the seeds of the compared
models, the weights' temperature, whether DoReMi may reuse the uniform proxy as its reference,
and the generated domains of a clustered dataset. The result holds no defaults and no
fallbacks: the planner (:mod:`chameleon_mix.plan`) reads plain keys; the rules hold paths only.

Every mapping comes out with its keys sorted (:func:`~chameleon_mix.config.canonical`): Snakemake
compares a job's params with its last run's as text, so a reordered config must rerun nothing.
"""

from __future__ import annotations

from .config import ConfigError, canonical
from .krls import DEFAULT_TEMPERATURE, default_tau
from .model import model_spec


def check_schedule(where: str, train: dict) -> None:
    """The cross-key checks the schema cannot express, for any complete schedule."""
    if train["min_lr"] > train["lr"]:
        raise ConfigError(f"config: {where}.min_lr: {train['min_lr']} exceeds lr {train['lr']}")
    micro = train["micro_batch_size"]
    if micro and train["batch_size"] % micro:
        raise ConfigError(
            f"config: {where}.micro_batch_size: {micro} does not divide batch_size "
            f"{train['batch_size']}"
        )
    late = [s for s in train["checkpoints"] if s > train["steps"]]
    if late:
        raise ConfigError(f"config: {where}.checkpoints: {late} exceed steps={train['steps']}")
    if train["warmup_steps"] > train["steps"]:
        raise ConfigError(
            f"config: {where}.warmup_steps: {train['warmup_steps']} exceeds steps "
            f"{train['steps']}; the learning rate would never reach its peak"
        )


def _overlay(where: str, proxy_train: dict, overlay: dict | None) -> dict:
    """A baseline's schedule: its `train:` keys over the proxy's, no kept checkpoints (the
    baselines record their weights at every step instead)."""
    train = {**proxy_train, **(overlay or {}), "checkpoints": []}
    check_schedule(where, train)
    return train


def resolve_proxy(name: str, proxy: dict) -> dict:
    """A proxy with its model explicit and its replicates' seeds (absent: the schedule's)."""
    check_schedule(f"proxies.{name}.train", proxy["train"])
    seeds = proxy.get("seeds") or [proxy["train"]["seed"]]
    return canonical({**proxy, "model": model_spec(proxy["model"]), "seeds": seeds})


def _clustered(dataset: dict) -> dict:
    """A clustered dataset's domains: one per cluster, named by
    :func:`chameleon_mix.clusters.cluster_names`."""
    from .clusters import cluster_names

    clusters = dataset["domains"]["cluster"]
    names = cluster_names(clusters["k"])
    return {
        **dataset,
        "clusters": clusters,
        "domains": [{"name": n, "cluster": i} for i, n in enumerate(names)],
    }


def _weights(dataset: dict) -> dict:
    """The weights' settings with the temperature's form and value decided: the paper's for
    listed domains, the k-invariant `scaled` form for clusters (thousands of them would turn
    the paper's fixed τ one-hot)."""
    weights = dict(dataset["weights"])
    stage = dataset["stage"]
    if weights["temperature"] is None:
        weights["temperature"] = "scaled" if "clusters" in dataset else DEFAULT_TEMPERATURE
    if weights["tau"] is None:
        weights["tau"] = default_tau(stage, weights["temperature"])
    return {"stage": stage, **weights}


def _pretrain(name: str, dataset: dict, proxies: dict) -> dict:
    proxy = proxies[dataset["proxy"]]
    proxy_train = proxy["train"]
    base = dataset.get("base", {})
    base_train = base.get("train", {**proxy_train, "checkpoints": []})
    check_schedule(f"datasets.{name}.base.train", base_train)
    baselines = dataset["baselines"]
    schedules = {"base": base_train}
    for method in baselines:  # every baseline mixer the schema has settings for
        schedules[method] = _overlay(
            f"datasets.{name}.baselines.{method}.train",
            proxy_train,
            baselines[method].get("train"),
        )
    # DoReMi's reference is trained on the same schedule as DoReMi's proxy; the uniform proxy
    # is that model only when the reference is uniform and the proxy (its first replicate)
    # trained on exactly these domains with exactly that schedule.
    schedules["doremi_reference"] = schedules["doremi"]
    names = sorted(d["name"] for d in dataset["domains"])
    first_replicate = {**proxy_train, "checkpoints": [], "seed": proxy["seeds"][0]}
    reference_reused = (
        baselines["doremi"]["reference"] == "uniform"
        and proxy["dataset"] == name
        and sorted(proxy["domains"]) == names
        and first_replicate == schedules["doremi"]
    )
    # Each model is the proxy's unless its section names its own.
    models = {
        name: model_spec(section["model"]) if "model" in section else proxy["model"]
        for name, section in {"proxy": {}, "base": base, **baselines}.items()
    }
    return {
        **dataset,
        "models": models,
        "schedules": schedules,
        "seeds": dataset.get("seeds") or [base_train["seed"]],
        "vocab_size": proxy["tokenizer"]["vocab_size"],
        "proxy_reused": proxy["dataset"] != name,
        "doremi_reference_reused": reference_reused,
    }


def _finetune(name: str, dataset: dict) -> dict:
    train = dataset["finetune"]["train"]
    check_schedule(f"datasets.{name}.finetune.train", train)
    return {
        **dataset,
        "schedules": {"finetune": train},
        "seeds": dataset.get("seeds") or [train["seed"]],
    }


def resolve(config: dict) -> dict:
    """``{"datasets": {name: dataset}, "proxies": {name: proxy}}`` of a validated config
    (:func:`chameleon_mix.config.validate_config`); the datasets keep their order (the first
    is the default target), everything inside is canonical."""
    proxies = {name: resolve_proxy(name, p) for name, p in config["proxies"].items()}
    datasets = {}
    for name, dataset in config["datasets"].items():
        if isinstance(dataset["domains"], dict):
            dataset = _clustered(dataset)
        if dataset["stage"] == "finetune":
            dataset = _finetune(name, dataset)
        else:
            dataset = _pretrain(name, dataset, proxies)
        dataset["weights"] = _weights(dataset)
        datasets[name] = canonical(dataset)
    return {"datasets": datasets, "proxies": proxies}
