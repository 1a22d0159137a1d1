"""What every job of the workflow needs, decided once from the resolved config.

The rules hold the paths a job writes; this module answers everything they ask about a
dataset or a proxy: which domains it has on this machine, which models embed them, a job's
input files and settings, its GPUs. A dataset's stage is its class (:class:`Pretraining`,
:class:`Finetuning`), so the workflow never branches on it; a method's needs come from its
registry entry (:mod:`chameleon_mix.methods`), so it never branches on a method either.

Everything here is plain Python on the resolved config (:func:`chameleon_mix.settings.resolve`)
and is unit-tested without Snakemake (``tests/test_plan.py``). Paths are relative to the
workflow's directory, as the rules write them.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path

from .config import BASE_MODEL, validate_config
from .io import warn
from .methods import METHODS
from .model import gpus_for_width
from .settings import resolve

SPLITS = ("train", "val", "test")
DOMAIN_SAMPLING = ("samples", "sampling", "seed")  # keys only a domain's random windows use


class PlanError(ValueError):
    """A target the config cannot make: the message names the dataset, domain or method and
    what to change."""


def _missing_source(domain: dict) -> str | None:
    """Why a collected (``collect:``) domain's source is not on this machine, or None."""
    from .corpus import missing_reason

    return missing_reason(domain["collect"]) if "collect" in domain else None


class Plan:
    """The workflow's decisions for one config.

    ``resolved``: :func:`~chameleon_mix.settings.resolve`'s ``{"datasets", "proxies"}``;
    ``missing_source(domain_entry) -> reason | None`` says why a domain's source is absent (a
    demo domain whose files this machine lacks is skipped, with a warning, the first time its
    dataset is planned).
    """

    def __init__(
        self, resolved: dict, missing_source: Callable[[dict], str | None] = _missing_source
    ):
        self.missing_source = missing_source
        self.datasets = {
            name: (Finetuning if ds["stage"] == "finetune" else Pretraining)(name, ds, self)
            for name, ds in resolved["datasets"].items()
        }
        self.proxies = {name: Proxy(name, p, self) for name, p in resolved["proxies"].items()}

    @classmethod
    def from_config(cls, config: dict, schema: str | Path) -> Plan:
        """Validate ``config`` against ``schema`` (filling its defaults), resolve it, plan it."""
        validate_config(config, schema)
        return cls(resolve(config))

    @property
    def default_dataset(self) -> str:
        """The dataset `snakemake` weights without a target: the demo, else the first one."""
        return "demo" if "demo" in self.datasets else next(iter(self.datasets))

    def dataset(self, name: str) -> Dataset:
        if name not in self.datasets:
            raise PlanError(
                f"no dataset {name!r} in the config; defined: {', '.join(self.datasets)}"
            )
        return self.datasets[name]

    def proxy(self, name: str) -> Proxy:
        if name not in self.proxies:
            raise PlanError(f"no proxy {name!r} in the config; defined: {', '.join(self.proxies)}")
        return self.proxies[name]


class Proxy:
    """A proxy LM, trained with uniform weights on its dataset's domains, one replicate per
    seed (``results/proxies/<name>/seed-<s>``)."""

    def __init__(self, name: str, settings: dict, plan: Plan):
        self.name, self.settings, self.plan = name, settings, plan
        self.seeds: list[int] = settings["seeds"]

    def dir(self, seed: int | None = None) -> str:
        """A replicate's directory; the first seed's by default (the proxy that DoReMi may
        reuse and that embeds a clustered dataset's documents)."""
        return f"results/proxies/{self.name}/seed-{self.seeds[0] if seed is None else seed}"

    def schedule(self, seed: int) -> dict:
        """A replicate's schedule: the proxy's, with the replicate's seed."""
        return {**self.settings["train"], "seed": int(seed)}

    @property
    def dataset(self) -> Dataset:
        return self.plan.dataset(self.settings["dataset"])

    @property
    def domains(self) -> list[str]:
        """The proxy's domains that its dataset has on this machine."""
        usable = set(self.dataset.domains)
        return [d for d in self.settings["domains"] if d in usable]

    def train_shards(self) -> list[str]:
        return [self.dataset.file(f"shards/{d}/train.parquet") for d in self.domains]

    def token_files(self, name: str) -> list[str]:
        """Its domains' token files: its dataset's (config.py checks that the dataset names
        this proxy, whose tokenizer wrote them)."""
        return self.dataset.token_files(name, self.domains)

    @property
    def tokenizer(self) -> str:
        """A configured tokenizer directory, or the one trained for the proxy."""
        return self.settings["tokenizer"].get("path") or f"results/proxies/{self.name}/tokenizer"

    @property
    def gpus(self) -> int:
        return gpus_for_width(self.settings["model"]["n_embd"])

    def checkpoint_steps(self) -> list[int]:
        """The kept checkpoints' steps and the final one."""
        train = self.settings["train"]
        return sorted(set(train["checkpoints"]) | {train["steps"]})

    def checkpoint_name(self, step: int) -> str:
        """The embeddings' directory of a step: the final step's are weights.json's own."""
        return "final" if step == self.settings["train"]["steps"] else f"step-{step}"


class Dataset:
    """A dataset's decisions common to both stages; :class:`Pretraining` and
    :class:`Finetuning` answer the rest."""

    # which schedule trains the compared models, and where they live under results/<dataset>/
    training: str

    def __init__(self, name: str, settings: dict, plan: Plan):
        self.name, self.settings, self.plan = name, settings, plan

    def file(self, path: str) -> str:
        return f"results/{self.name}/{path}"

    @functools.cached_property
    def usable_domains(self) -> list[dict]:
        """Its domain entries whose source this machine has (a demo's collectors may lack
        theirs: those are skipped, with a warning)."""
        usable = []
        for domain in self.settings["domains"]:
            reason = self.plan.missing_source(domain)
            if reason:
                warn(f"dataset {self.name!r}: skipping domain {domain['name']!r}: {reason}")
            else:
                usable.append(domain)
        return usable

    @property
    def domains(self) -> list[str]:
        return [d["name"] for d in self.usable_domains]

    def domain(self, name: str) -> dict:
        """A domain's entry, or the target's (sampled, tokenized and embedded like one)."""
        target = self.settings.get("target")
        for domain in [*self.settings["domains"], *([target] if target else [])]:
            if domain["name"] == name:
                return domain
        raise PlanError(
            f"dataset {self.name!r} has no domain {name!r}; its domains: {', '.join(self.domains)}"
        )

    @functools.cached_property
    def target(self) -> str | None:
        """The target's name (the text the target methods weight toward), or None."""
        entry = self.settings.get("target")
        if entry is None:
            return None
        reason = self.plan.missing_source(entry)
        if reason:
            raise PlanError(f"dataset {self.name!r}: target {entry['name']!r}: {reason}")
        return entry["name"]

    def needs_target(self, method: str) -> None:
        """Refuse a method that weights toward a target on a dataset without one."""
        if self.settings.get("target") is None:
            raise PlanError(
                f"dataset {self.name!r}: method {method!r} weights the domains toward a target; "
                f"give the dataset one (datasets.{self.name}.target: {{name, collect | source}})"
                " or leave the method out"
            )

    @property
    def evaluated_domains(self) -> list[str]:
        """The domains whose test split every compared model is scored on, and the target."""
        return [*self.domains, *([self.target] if self.target else [])]

    @property
    def methods(self) -> list[str]:
        return self.settings["methods"]

    @property
    def seeds(self) -> list[int]:
        return self.settings["seeds"]

    # --- sampling and tokens ---

    def shard_source(self, domain: str) -> dict:
        """The domain's own source; nothing about the other domains, so adding one reruns
        nothing."""
        entry = self.domain(domain)
        if "collect" in entry:
            return {"files": f"results/corpus/{entry['collect']}.jsonl", "format": "jsonl"}
        if "value" in entry:
            return {"partition": str(entry["value"])}
        if "cluster" in entry:
            return {"cluster": entry["cluster"]}
        return entry["source"]

    def splits(self, domain: str) -> dict[str, int]:
        """The domain's documents per split: the dataset's, with the domain's own over them."""
        return {**self.settings["splits"], **self.domain(domain).get("splits", {})}

    @property
    def partition_sample_sizes(self) -> dict:
        """How many documents a partition job keeps of each value of the mixed source:
        ``default`` for every value (the dataset's splits), ``values`` for the values of
        domains with splits of their own. Adding a domain without its own splits changes
        neither, so it reruns no partition job."""
        default = sum(self.settings["splits"].values())
        return {
            "default": default,
            "values": {
                str(d["value"]): sum(self.splits(d["name"]).values())
                for d in [*self.settings["domains"], self.settings.get("target") or {}]
                if "value" in d and "splits" in d
            },
        }

    def shard_inputs(self, domain: str) -> dict:
        """The files a domain's shards are sampled from: its collected documents, the
        partition's parts (a value of a mixed source), the cluster assignments, or its own
        source's files (resolved when the DAG is built, so a changed, added or removed file
        reruns this domain's shards and what follows, nothing else)."""
        entry = self.domain(domain)
        if "collect" in entry:
            return {"documents": f"results/corpus/{entry['collect']}.jsonl"}
        if "value" in entry:
            parts = self.partition_parts()
            return {
                "parts": [f"{p}.parquet" for p in parts],
                "part_stats": [f"{p}.json" for p in parts],
            }
        if "cluster" in entry:
            return {"assignments": self.file("clusters/assignments.parquet")}
        return {"source_files": self._source_files(domain, entry["source"])}

    def _source_files(self, domain: str, source: dict) -> list[str]:
        from .sources import SourceError, source_files

        try:
            return [str(p) for p in source_files(source)]
        except SourceError as err:
            raise PlanError(f"dataset {self.name!r}, domain {domain!r}, source: {err}") from None

    @functools.cached_property
    def partition_sources(self) -> list[dict]:
        """The source of each partition job of the dataset's mixed source: its files, sorted,
        `partition.files_per_job` to a job. The glob is resolved when the DAG is built, so
        files added to the source add jobs (and shift the later groups) on the next run."""
        from .shards import partition_groups
        from .sources import SourceError

        try:
            return partition_groups(
                self.settings["source"], self.settings["partition"]["files_per_job"]
            )
        except SourceError as err:
            raise PlanError(f"dataset {self.name!r}, source: {err}") from None

    def partition_parts(self) -> list[str]:
        return [self.file(f"partition/part-{i:05d}") for i in range(len(self.partition_sources))]

    def partition_files(self, part: int) -> list[str]:
        """The files one partition job reads (none for a hub dataset)."""
        from .sources import resolve_files

        source = self.partition_sources[part]
        return [str(p) for p in resolve_files(source)] if "files" in source else []

    def corpus_manifests(self) -> dict[str, str]:
        """The corpus manifest of each collected (`collect:`) domain, by domain name."""
        return {
            d["name"]: f"results/corpus/{d['collect']}.manifest.json"
            for d in self.usable_domains
            if "collect" in d
        }

    def shards(self, split: str) -> list[str]:
        return [self.file(f"shards/{d}/{split}.parquet") for d in self.domains]

    def token_files(self, name: str, domains: list[str] | None = None) -> list[str]:
        """One token file (`stats.json`, `train.bin`, `test.offsets.npy`, ...) per domain, in
        the domain order; scripts take each domain's directory from its `stats.json`."""
        return [self.file(f"tokens/{d}/{name}") for d in domains or self.domains]

    @property
    def corpus_stats_file(self) -> str:
        """Each domain's documents, bytes and tokens over its whole source."""
        return self.file("corpus_stats.json")

    def corpus_stats_inputs(self) -> dict[str, list[str]]:
        """What corpus_stats.json is gathered from: each domain's shard and token stats."""
        return {
            "shard_stats": [self.file(f"shards/{d}/stats.json") for d in self.domains],
            "token_stats": self.token_files("stats.json"),
        }

    @property
    def budget(self) -> dict | None:
        """The run the mixtures are for, ``{"tokens", "max_epochs"}``; None without one."""
        budget = self.settings["budget"]
        return budget if budget["tokens"] is not None else None

    # --- the whole corpus per domain (chameleon_mix.by_domain) ---

    @property
    def by_domain_domains(self) -> list[str]:
        """The domains the by-domain target writes: those on this machine, less the ones that
        declare trainer data of their own (``data:``, whose exports read it there)."""
        if "clusters" in self.settings:
            raise PlanError(
                f"dataset {self.name!r}: its domains are clusters of the sampled shards of "
                f"{self.settings['clusters']['dataset']!r}, not of a whole corpus; split "
                "that dataset by domain instead"
            )
        return [d["name"] for d in self.usable_domains if "data" not in d]

    @property
    def by_domain_values(self) -> dict[str, list[str]]:
        """Each value of the mixed source's domain field that selects a domain to split, and
        the domains it selects."""
        values: dict[str, list[str]] = {}
        for name in self.by_domain_domains:
            entry = self.domain(name)
            if "value" in entry:
                values.setdefault(str(entry["value"]), []).append(name)
        return values

    @property
    def by_domain_groups(self) -> int:
        """The scatter jobs over the mixed source: the partition's groups of its files, or none
        when no domain to split is a value of it."""
        return len(self.partition_sources) if self.by_domain_values else 0

    def by_domain_sources(self, domain: str) -> list[dict]:
        """The jobs over a domain's own source, one per group of ``partition.files_per_job``
        of its files (a collected domain: its one file; a hub dataset: one job)."""
        from .shards import partition_groups
        from .sources import SourceError

        entry = self.domain(domain)
        source = self.shard_source(domain)
        if "collect" in entry or "files" not in source:
            return [source]  # a collected domain's file is the workflow's, made later
        try:
            return partition_groups(source, self.settings["partition"]["files_per_job"])
        except SourceError as err:
            raise PlanError(f"dataset {self.name!r}, domain {domain!r}, source: {err}") from None

    def by_domain_source_files(self, domain: str, group: int) -> list[str]:
        """The local files one job over a domain's own source reads."""
        entry = self.domain(domain)
        if "collect" in entry:
            return [self.shard_source(domain)["files"]]
        return self._source_files(domain, self.by_domain_sources(domain)[group])

    def by_domain_first_part(self, domain: str, group: int) -> int:
        """The part number of a job's first file: a domain's files are numbered in order."""
        return group * self.settings["partition"]["files_per_job"]

    def by_domain_counts(self) -> list[str]:
        """The counts of every job the manifest gathers: the mixed source's groups, then each
        domain's own source's."""
        files = [
            self.file(f"by_domain/counts/part-{g:05d}.json") for g in range(self.by_domain_groups)
        ]
        for domain in self.by_domain_domains:
            if "value" not in self.domain(domain):
                groups = range(len(self.by_domain_sources(domain)))
                files += [self.file(f"by_domain/counts/{domain}/part-{g:05d}.json") for g in groups]
        return files

    @property
    def by_domain_tokenizer(self) -> str:
        """The tokenizer of the parts' tokens: ``by_domain.tokenizer``, else the dataset's."""
        return self.settings["by_domain"]["tokenizer"] or self.tokenizer

    @property
    def by_domain_tokenizer_source(self) -> str:
        return "dataset" if self.settings["by_domain"]["tokenizer"] is None else "user"

    # --- export ---

    def export_inputs(self, method: str) -> dict:
        """A method's export: its mixture, the by-domain manifest (the whole corpus of every
        domain without `data:`, and the tokenizer) and the Megatron datasets of each domain's
        val and test shards (Megatron's valid/test blends)."""
        if "clusters" in self.settings:
            raise PlanError(
                f"dataset {self.name!r} is clustered: its clusters are of sampled documents, "
                "so there is no whole corpus per cluster to export; export the dataset the "
                f"clusters pool ({self.settings['clusters']['dataset']!r})"
            )
        return {
            "mixture": self.file(f"mixtures/{method}.json"),
            "manifest": self.file("by_domain/manifest.json"),
            "eval_megatron": [
                self.eval_megatron(split, d) + ext
                for split in ("val", "test")
                for d in self.domains
                for ext in (".bin", ".idx")
            ],
        }

    @property
    def eval_megatron_prefixes(self) -> dict[str, dict[str, str]]:
        """Megatron's valid and test blends: each domain's val and test data, by its split."""
        return {
            blend: {d: self.eval_megatron(split, d) for d in self.domains}
            for blend, split in (("valid", "val"), ("test", "test"))
        }

    def eval_megatron(self, split: str, domain: str) -> str:
        """The prefix of a domain's val or test split as a Megatron dataset."""
        return self.file(f"export/megatron_data/{split}/{domain}")

    @property
    def declared_data(self) -> dict[str, dict]:
        """The domains' `data:` entries: data the user holds, exported as it is."""
        return {d["name"]: d["data"] for d in self.usable_domains if "data" in d}

    @property
    def export_run(self) -> dict:
        """The production run's sequence length and global batch (tokens) the export writes:
        the dataset's `export:` settings, else the compared models' (their batch in sequences)."""
        train = self.schedule(self.training)
        settings = self.settings["export"]
        seq_length = settings["seq_length"] or train["seq_len"]
        return {
            "seq_length": seq_length,
            "global_batch_tokens": settings["global_batch_tokens"]
            or train["batch_size"] * seq_length,
        }

    # --- embeddings and weights ---

    embedders: list[str]  # the embeddings' directories, one per embedding model

    def embeddings(self, checkpoint: str = "final") -> list[str]:
        """Every embedder's domain embeddings, embedder by embedder."""
        return [
            self.file(f"embeddings/{embedder}/{checkpoint}/{domain}.npy")
            for embedder in self.embedders
            for domain in self.domains
        ]

    def target_embeddings(self) -> list[str]:
        """The target's embedding by every embedder, as :meth:`embeddings` gives the domains'."""
        return [self.file(f"embeddings/{e}/final/{self.target}.npy") for e in self.embedders]

    def embedding_samples(self) -> list[str]:
        """The sample embeddings beside each of :meth:`embeddings`."""
        return [path.removesuffix(".npy") + ".samples.npy" for path in self.embeddings()]

    @property
    def document_embedding(self) -> dict:
        """The embedding settings of a clustered dataset's document vectors: all of them but
        how domain windows are sampled (each document is embedded once, from its start), so
        a new embedding key reaches the documents too and another sample count re-embeds no
        document."""
        embedding = self.settings["embedding"]
        return {key: value for key, value in embedding.items() if key not in DOMAIN_SAMPLING}

    @property
    def weights_file(self) -> str:
        return self.file("weights.json")

    # --- the compared models ---

    def schedule(self, job: str) -> dict:
        """The complete schedule of one of the dataset's training jobs (`base`, `finetune`,
        `doremi`, `doremi_reference`, `doge`, `regmix`)."""
        return self.settings["schedules"][job]

    def seeded_schedule(self, seed: int | str) -> dict:
        """The schedule of one seed's compared model."""
        return {**self.schedule(self.training), "seed": int(seed)}

    @property
    def batch_tokens(self) -> int:
        """Tokens per optimizer step of the compared models, the global batch the export
        writes for OLMo-core."""
        train = self.schedule(self.training)
        return train["batch_size"] * train["seq_len"]

    def trained_model(self, method: str, seed: int | str) -> str:
        return self.file(f"{self.training}/{method}/seed-{seed}/model")

    def method_inputs(self, method: str, kind: str = "inputs") -> dict:
        """The files a method's registry entry names for its mixture (``kind`` "inputs") or
        for its reweighted proxy ("proxy_inputs"); entries this dataset has none of are left
        out."""
        files = getattr(METHODS[method], kind)(self, method)
        return {name: path for name, path in files.items() if path}

    def mixture_inputs(self, method: str) -> dict:
        """A mixture's files: its method's, and the corpus statistics under a budget."""
        files = self.method_inputs(method)
        if self.budget:
            files["corpus_stats"] = self.corpus_stats_file
        return files

    def mixture_settings(self, method: str) -> dict:
        """What a method's mixture depends on beyond its files, after the method's own checks
        of the dataset (a target that needs no mixture never runs them)."""
        entry = METHODS[method]
        entry.check(self)
        return entry.settings(self.settings)

    def report_inputs(self) -> dict[str, str]:
        """Everything the report reads: each method's mixture, and per seed its model's
        training log and evaluations."""
        files = {}
        for method in self.methods:
            files[f"mixture_{method}"] = self.file(f"mixtures/{method}.json")
            for seed in self.seeds:
                run = f"{method}/seed-{seed}"
                files[f"train_log_{method}_{seed}"] = self.file(
                    f"{self.training}/{run}/train_log.json"
                )
                files[f"perplexity_{method}_{seed}"] = self.file(f"eval/{run}/perplexity.json")
                files[f"downstream_{method}_{seed}"] = self.file(f"eval/{run}/downstream.json")
        return files

    def trajectory_files(self) -> dict[str, str]:
        """Weights against proxy steps, for the report's stability figure: the file each
        method's entry names (Chameleon's per kept checkpoint, the reweighted proxies')."""
        files = {}
        for method in self.methods:
            path = METHODS[method].trajectory(self, method)
            if path:
                files[f"trajectory_{method}"] = path
        return files

    # --- clustered datasets ---

    @property
    def cluster_source(self) -> Dataset:
        """The dataset whose documents a clustered dataset pools."""
        if "clusters" not in self.settings:
            raise PlanError(
                f"dataset {self.name!r} is not a clustered dataset (domains: {{cluster: ...}})"
            )
        return self.plan.dataset(self.settings["clusters"]["dataset"])

    def cluster_parts(self) -> list[list[str]]:
        """[domain, split] of every pooled part, in the order of the document vectors."""
        return [[d, s] for d in self.cluster_source.domains for s in SPLITS]

    def cluster_part_files(self, path: str) -> list[str]:
        """``path`` (with {domain} and {split}) for every pooled part of the source dataset."""
        source = self.cluster_source
        return [source.file(path.format(domain=d, split=s)) for d, s in self.cluster_parts()]

    def labelled_models(self) -> dict[str, list[str]]:
        """The models of the labelled comparison, "dataset/method" -> one perplexity file on
        the source's labelled domains per seed: the source's models of the clustered
        dataset's methods first (its uniform is the baseline), then the clustered dataset's."""
        source = self.cluster_source
        models = {
            f"{source.name}/{m}": [
                source.file(f"eval/{m}/seed-{s}/perplexity.json") for s in source.seeds
            ]
            for m in self.methods
            if m in source.methods
        }
        for m in self.methods:
            models[f"{self.name}/{m}"] = [
                self.file(f"eval/{m}/seed-{s}/labelled.json") for s in self.seeds
            ]
        return models


class Pretraining(Dataset):
    """A dataset weighted for pretraining: a proxy embeds its domains, base models are
    trained from scratch on each mixture."""

    training = "base"

    @property
    def proxy(self) -> Proxy:
        return self.plan.proxy(self.settings["proxy"])

    @property
    def proxy_name(self) -> str:
        return self.settings["proxy"]

    @property
    def embedders(self) -> list[str]:
        return [f"seed-{seed}" for seed in self.proxy.seeds]

    def embedding_model(self, embedder: str | None = None) -> str:
        """The proxy replicate of ``embedder`` (``seed-<s>``), or the first replicate (a
        clustered dataset's documents are embedded and clustered once)."""
        seed = embedder and int(embedder.removeprefix("seed-"))
        return f"{self.proxy.dir(seed)}/model"

    @property
    def embedding_model_name(self) -> str:
        """What weights.json and the embeddings record as their model."""
        return self.proxy_name

    @property
    def tokenizer(self) -> str:
        return self.proxy.tokenizer

    def gpus(self, model: str = "proxy") -> int:
        """GPUs of a job running one of its models (``models`` of the resolved dataset)."""
        return gpus_for_width(self.settings["models"][model]["n_embd"])

    def proxy_logs(self) -> list[str]:
        """Each proxy replicate's training log."""
        return [f"{self.proxy.dir(s)}/train_log.json" for s in self.proxy.seeds]

    def checkpoint_embeddings(self) -> dict[str, list[str]]:
        """Each kept proxy checkpoint's embeddings (``step_<N>``), the final step's being
        weights.json's own."""
        proxy = self.proxy
        return {
            f"step_{step}": self.embeddings(proxy.checkpoint_name(step))
            for step in proxy.checkpoint_steps()
        }

    def stability_inputs(self) -> dict[str, list[str]]:
        return self.checkpoint_embeddings()

    @property
    def stability_file(self) -> str:
        return self.file("stability.csv")

    @property
    def doremi_reference(self) -> str:
        """The reused uniform proxy, or a uniform model trained here on DoReMi's schedule."""
        if self.settings["doremi_reference_reused"]:
            return self.proxy.dir()
        return self.file("doremi/reference")

    def baseline_settings(self, method: str) -> dict:
        """A baseline mixer's own settings for its proxy's job, its schedule apart."""
        settings = self.settings["baselines"][method]
        return {key: value for key, value in settings.items() if key != "train"}

    def regmix_run_settings(self) -> dict:
        """What a RegMix run depends on (:data:`chameleon_mix.regmix.RUN_KEYS`): changing the
        number of runs or the fit retrains none."""
        from .regmix import run_settings

        return run_settings(self.settings["baselines"]["regmix"])

    def regmix_run_inputs(self) -> dict:
        """A RegMix run's files beyond the tokens: the corpus statistics whose token shares
        are the runs' prior unless the config gives one, and the target's token files (its
        validation loss is scored too)."""
        files = {}
        if not self.settings["baselines"]["regmix"]["prior"]:
            files["corpus_stats"] = self.corpus_stats_file
        if self.target:
            for name in ("stats.json", "val.bin", "val.offsets.npy"):
                files[f"target_{name.replace('.', '_')}"] = self.file(
                    f"tokens/{self.target}/{name}"
                )
        return files

    def doremi_reference_inputs(self) -> dict[str, str]:
        """The reference model's files beyond the tokens: the corpus statistics of a
        `natural` reference."""
        natural = self.settings["baselines"]["doremi"]["reference"] == "natural"
        return {"corpus_stats": self.corpus_stats_file} if natural else {}

    def regmix_runs(self) -> list[str]:
        runs = self.settings["baselines"]["regmix"]["runs"]
        return [self.file(f"regmix/runs/{run}.json") for run in range(runs)]


class Finetuning(Dataset):
    """A dataset weighted for finetuning: the pretrained model embeds its domains (no proxy)
    and is finetuned on each mixture."""

    training = "finetune"
    embedders = ["pretrained"]
    proxy_name = None
    stability_file = None

    @property
    def pretrained(self) -> str:
        return self.settings["pretrained"]

    def embedding_model(self, embedder: str | None = None) -> str:
        return self.pretrained

    @property
    def embedding_model_name(self) -> str:
        return self.pretrained

    @property
    def tokenizer(self) -> str:
        return self.pretrained

    def gpus(self, model: str = "pretrained") -> int:
        """By the pretrained model's width: a base model of this config, or a local model's
        config.json (one GPU when it cannot be read)."""
        made_here = BASE_MODEL.match(self.pretrained)
        if made_here:
            return self.plan.dataset(made_here["dataset"]).gpus("base")
        config_json = Path(self.pretrained) / "config.json"
        if config_json.is_file():
            return gpus_for_width(json.loads(config_json.read_text()).get("hidden_size", 768))
        return 1

    def proxy_logs(self) -> list[str]:
        return []  # finetuning trains no proxy

    def checkpoint_embeddings(self) -> dict[str, list[str]]:
        return {}  # no proxy checkpoints: the pretrained model is the only embedder

    def stability_inputs(self) -> dict[str, list[str]]:
        raise PlanError(
            f"dataset {self.name!r} is a finetune dataset: there are no proxy checkpoints to "
            "check the weights' stability against"
        )
