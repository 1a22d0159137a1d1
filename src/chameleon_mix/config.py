"""Validate the workflow configuration: JSON Schema first, then the cross-references a schema
cannot express. Every error names the key path and says what to do."""

from __future__ import annotations

import math
import re
from pathlib import Path

import jsonschema
import yaml

from .model import model_spec

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"

# What the rules append to a domain's name for the files it keeps beside the other domains' in
# one folder (workflow/rules/*.smk; tests/test_config.py keeps this table complete). Where one
# suffix ends another, as `.samples.npy` ends `.npy`, a domain named `licenses.samples` would
# write its embedding over the per-sample embeddings of `licenses`.
DOMAIN_FILE_SUFFIXES = {
    ".npy": "embedding",
    ".samples.npy": "per-sample embeddings",
    ".json": "embedding provenance",
    ".log": "log",
    ".tsv": "benchmark",
    ".bin": "Megatron token file",
    ".idx": "Megatron index",
}
RESERVED_ENDINGS = {
    longer[: -len(shorter)]: (longer, shorter)
    for longer in DOMAIN_FILE_SUFFIXES
    for shorter in DOMAIN_FILE_SUFFIXES
    if longer != shorter and longer.endswith(shorter)
}
# results/<dataset>/ shares results/ with these folders of the workflow's own.
RESERVED_DATASET_NAMES = ("benchmarks", "corpus", "logs", "proxies")


class ConfigError(ValueError):
    pass


def _with_defaults(validator_class):
    """A validator that also fills in the schema's defaults (the jsonschema FAQ's recipe)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = (
                        dict(sub["default"]) if isinstance(sub["default"], dict) else sub["default"]
                    )
        yield from validate_properties(validator, properties, instance, schema)

    # YAML reads `200.0` as a float that JSON Schema counts as an integer; no count, step or
    # seed of this config is one, and the jobs would fail on it much later.
    integers = validator_class.TYPE_CHECKER.redefine(
        "integer", lambda checker, value: isinstance(value, int) and not isinstance(value, bool)
    )
    return jsonschema.validators.extend(
        validator_class, {"properties": set_defaults}, type_checker=integers
    )


def _within_form(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """For a value that may take several forms (``oneOf``), the error inside the one form
    whose type it has (a list of domains, not the mapping of a clustered dataset), so the
    message names the bad key rather than listing the forms."""
    if error.validator != "oneOf" or not error.context:
        return error
    branches: dict[int, list] = {}
    for sub in error.context:
        branches.setdefault(sub.schema_path[0], []).append(sub)
    same_type = [
        subs
        for subs in branches.values()
        if not any(sub.validator == "type" and not sub.relative_path for sub in subs)
    ]
    if len(same_type) != 1 or any(
        sub.validator in ("const", "enum") and not sub.relative_path for sub in same_type[0]
    ):
        return error  # a scalar of none of the forms: the message lists them
    return _within_form(max(same_type[0], key=lambda e: len(list(e.absolute_path))))


def _key_path(error: jsonschema.ValidationError) -> str:
    path = ""
    for part in error.absolute_path:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(top level)"


def _explain(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(allowed))
        return f"unknown key {', '.join(map(repr, extra))}" + (
            f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        )
    if error.validator == "pattern":
        return f"{error.instance!r} is not a safe name: use letters, digits and _ . + - only"
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        return f"{error.message.split(' is not valid')[0]} must have exactly one of " + ", ".join(
            sorted({r for s in error.validator_value for r in s.get("required", [])})
        )
    if error.validator == "oneOf":  # a scalar of one of several forms, e.g. 16 or "auto"
        return f"{error.instance!r} is not allowed; give " + " or ".join(
            _form(option) for option in error.validator_value
        )
    if error.validator == "type" and isinstance(error.instance, float):
        kinds = error.validator_value
        kinds = " or ".join(TYPE_WORDS[k] for k in ([kinds] if isinstance(kinds, str) else kinds))
        return f"{error.instance!r} is not {kinds}; write it without a decimal point"
    if error.validator == "minItems" and error.validator_value == 2:
        return (
            f"{len(error.instance)} domain(s): a mixture needs at least 2 domains to weight; "
            "list another"
        )
    if error.validator in ("minimum", "exclusiveMinimum"):
        return f"{error.instance!r} is too small ({error.message.split('is ', 1)[-1]}); use a positive value"
    return error.message


TYPE_WORDS = {
    "string": "a string",
    "array": "a list",
    "integer": "an integer",
    "number": "a number",
    "null": "null",
}


def _form(option: dict) -> str:
    """One alternative of a ``oneOf`` in words: ``'auto'``, ``a positive integer``, ..."""
    if "const" in option:
        return repr(option["const"])
    if "enum" in option:
        return " or ".join(map(repr, option["enum"]))
    if option.get("$ref") == "#/$defs/positive_int":
        return "a positive integer"
    if "$ref" in option:
        return f"a {option['$ref'].rsplit('/', 1)[-1]} mapping (config/README.md)"
    return TYPE_WORDS.get(option.get("type"), "a value as config/README.md describes")


def canonical(value):
    """``value`` with every mapping's keys sorted, at every depth (lists keep their order).

    Snakemake compares a job's params with its last run's as text, so a dataset's or proxy's
    settings must not depend on the order the config happened to list its keys in.
    """
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def validate_config(config: dict, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """Check ``config`` in place (filling defaults) and return it; raise :class:`ConfigError`."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(jsonschema.Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: len(list(e.absolute_path)))
    if errors:
        deepest = _within_form(max(errors, key=lambda e: len(list(e.absolute_path))))
        raise ConfigError(f"config: {_key_path(deepest)}: {_explain(deepest)}")
    _check_finite(config, "")
    _check_references(config)
    from .settings import resolve

    resolve(config)  # the schedules' cross-key checks, for every schedule a job trains on
    return config


def _check_finite(node, path: str) -> None:
    """YAML reads `.inf` and `.nan` as numbers that pass every bound of the schema (a NaN
    compares false with all of them); no setting of this config means anything with them."""
    if isinstance(node, dict):
        for key, value in node.items():
            _check_finite(value, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_finite(value, f"{path}[{i}]")
    elif isinstance(node, float) and not math.isfinite(node):
        raise ConfigError(
            f"config: {path}: {node} is not a finite number; give a finite value "
            "(config/README.md lists each key's range and default)"
        )


def _check_names(where: str, names: list[str]) -> None:
    """Domain names become file names; two domains must never write the same file."""
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(
            f"{where}.domains: duplicate domain name(s) {dupes}; names must be unique"
        )
    for i, name in enumerate(names):
        for ending, (longer, shorter) in RESERVED_ENDINGS.items():
            if name.endswith(ending):
                other = name[: -len(ending)]
                raise ConfigError(
                    f"{where}.domains[{i}].name: {name!r} ends in {ending!r}: its "
                    f"{DOMAIN_FILE_SUFFIXES[shorter]} {name}{shorter} would be the "
                    f"{DOMAIN_FILE_SUFFIXES[longer]} of a domain {other!r} and overwrite them; "
                    f"rename it, e.g. to {other + ending.replace('.', '_')!r}"
                )


def _check_references(config: dict) -> None:
    datasets, proxies = config["datasets"], config["proxies"]
    for name, dataset in datasets.items():
        where = f"config: datasets.{name}"
        if name in RESERVED_DATASET_NAMES:
            raise ConfigError(
                f"{where}: results/{name}/ is the workflow's own folder "
                f"({', '.join(RESERVED_DATASET_NAMES)} are taken); rename the dataset"
            )
        listed = isinstance(dataset["domains"], list)
        if listed:
            names = [d["name"] for d in dataset["domains"]]
        else:
            names = _check_clusters(where, dataset, datasets)
        _check_names(where, names)
        _check_stage(where, dataset, datasets, proxies)
        for i, domain in enumerate(dataset["domains"] if listed else []):
            _check_source(f"{where}.domains[{i}] ({domain['name']})", domain, dataset)
            _check_data(f"{where}.domains[{i}] ({domain['name']}).data", domain.get("data"))
        _check_target(where, dataset, names)
        _check_by_domain(where, dataset)
        _check_export(where, dataset)
        _check_methods(where, dataset)
        if dataset["methods"] and "uniform" not in dataset["methods"]:
            raise ConfigError(f"{where}.methods: include `uniform`, the baseline of the comparison")
        _check_baselines(where, dataset, names)
        if dataset["stage"] == "finetune":
            continue  # the pretrained model's depth is checked when it embeds
        n_layer = model_spec(proxies[dataset["proxy"]]["model"])["n_layer"]
        layer = dataset["embedding"]["layer"]
        if layer is not None and not 1 <= layer <= n_layer:
            raise ConfigError(
                f"{where}.embedding.layer: {layer} is out of range for proxy "
                f"{dataset['proxy']!r} with {n_layer} blocks; use 1..{n_layer} or null (middle)"
            )
    for name, proxy in proxies.items():
        where = f"config: proxies.{name}"
        if datasets.get(proxy["dataset"], {}).get("stage") == "finetune":
            raise ConfigError(
                f"{where}.dataset: {proxy['dataset']!r} is a finetune dataset; a proxy trains "
                "on a pretraining dataset"
            )
        if proxy["dataset"] not in datasets:
            raise ConfigError(f"{where}.dataset: no dataset named {proxy['dataset']!r}")
        if not isinstance(datasets[proxy["dataset"]]["domains"], list):
            raise ConfigError(
                f"{where}.dataset: {proxy['dataset']!r} is clustered by the embeddings of its "
                "proxy, so no proxy can train on its clusters; train it on the dataset the "
                "clusters pool"
            )
        own = datasets[proxy["dataset"]].get("proxy")
        if own != name:
            raise ConfigError(
                f"{where}.dataset: {proxy['dataset']!r} is tokenized with the tokenizer of its "
                f"own proxy {own!r}, so {name!r} cannot train on its token files; set "
                f"datasets.{proxy['dataset']}.proxy to {name!r} or train {name!r} on a dataset "
                "that names it"
            )
        known = {d["name"] for d in datasets[proxy["dataset"]]["domains"]}
        unknown = [d for d in proxy["domains"] if d not in known]
        if unknown:
            raise ConfigError(
                f"{where}.domains: {unknown} are not domains of dataset {proxy['dataset']!r}"
            )
        spec = model_spec(proxy["model"])
        if spec["n_embd"] % spec["n_head"]:
            raise ConfigError(f"{where}.model: n_embd {spec['n_embd']} is not divisible by n_head")
        path = proxy["tokenizer"].get("path")
        if path and not Path(path).is_dir():
            raise ConfigError(f"{where}.tokenizer.path: {path} is not a directory")


def _check_clusters(where: str, dataset: dict, datasets: dict) -> list[str]:
    """A clustered dataset pools the documents of a pretraining dataset with listed domains
    and the same proxy (the proxy embeds the documents and later the clusters); returns the
    clusters' domain names."""
    from .clusters import cluster_names

    clusters = dataset["domains"]["cluster"]
    source = datasets.get(clusters["dataset"])
    problem = (
        "is not a dataset of this config"
        if source is None
        else "is a finetune dataset"
        if source["stage"] != "pretrain"
        else "is itself clustered"
        if not isinstance(source["domains"], list)
        else f"is embedded by proxy {source.get('proxy')!r}, this dataset by "
        f"{dataset.get('proxy')!r}"
        if source.get("proxy") != dataset.get("proxy")
        else None
    )
    if dataset["stage"] != "pretrain":
        problem = "belongs to a finetune dataset; clusters weight pretraining data"
    if problem:
        raise ConfigError(
            f"{where}.domains.cluster.dataset: {clusters['dataset']!r} {problem}; name a "
            "pretraining dataset with listed domains and the same proxy"
        )
    return cluster_names(clusters["k"])


# A base model this workflow trains: results/<dataset>/base/<method>/seed-<seed>/model.
BASE_MODEL = re.compile(
    r"^results/(?P<dataset>[^/]+)/base/(?P<method>[^/]+)/seed-(?P<seed>\d+)/model/?$"
)


def _check_stage(where: str, dataset: dict, datasets: dict, proxies: dict) -> None:
    """A pretraining dataset names a proxy; a finetuning one names its pretrained model."""
    if dataset["stage"] == "pretrain":
        if "pretrained" in dataset:
            raise ConfigError(
                f"{where}.pretrained: only a `stage: finetune` dataset has a pretrained model; "
                "set the stage or remove the key"
            )
        if "proxy" not in dataset:
            raise ConfigError(f"{where}: name the `proxy` that embeds its domains")
        if dataset["proxy"] not in proxies:
            raise ConfigError(
                f"{where}.proxy: no proxy named {dataset['proxy']!r}; define it under proxies "
                f"(defined: {', '.join(sorted(proxies))})"
            )
        return
    if "proxy" in dataset:
        raise ConfigError(
            f"{where}.proxy: a finetune dataset trains no proxy; its pretrained model embeds "
            "the domains. Remove `proxy` (and name the model in `pretrained`)"
        )
    if "base" in dataset:
        raise ConfigError(
            f"{where}.base: a finetune dataset trains no base model; put the schedule under "
            "`finetune: {train: ...}`"
        )
    pretrained = dataset.get("pretrained")
    if pretrained is None:
        raise ConfigError(
            f"{where}.pretrained: a finetune dataset needs the model that embeds and is "
            "finetuned, e.g. results/demo/base/uniform/seed-0/model or a local model directory"
        )
    made_here = BASE_MODEL.match(pretrained)
    if made_here:
        source = datasets.get(made_here["dataset"])
        if source is None or source["stage"] != "pretrain":
            raise ConfigError(
                f"{where}.pretrained: {pretrained} would be a base model of "
                f"{made_here['dataset']!r}, which is not a pretraining dataset of this config"
            )
    elif not pretrained.startswith("results/") and not Path(pretrained).is_dir():
        raise ConfigError(
            f"{where}.pretrained: {pretrained} is not a directory; give a Hugging Face "
            "causal-LM directory (config.json, weights, tokenizer) or a base model of this "
            "workflow (results/<dataset>/base/<method>/seed-<seed>/model)"
        )


def _check_methods(where: str, dataset: dict) -> None:
    """Every method is one of the registry's, for a stage it serves."""
    from .methods import METHODS

    unknown = [m for m in dataset["methods"] if m not in METHODS]
    if unknown:
        raise ConfigError(
            f"{where}.methods: unknown method(s) {unknown}; known: {', '.join(METHODS)}"
        )
    stage = dataset["stage"]
    for name in dataset["methods"]:
        entry = METHODS[name]
        if stage not in entry.stages:
            why = f" ({entry.why_stages})" if entry.why_stages else ""
            raise ConfigError(
                f"{where}.methods: {name} cannot weight a {stage} dataset{why}; remove it "
                "from its methods"
            )


def _check_target(where: str, dataset: dict, names: list[str]) -> None:
    """A target is text beside the domains: its own name, its own kind of source."""
    target = dataset.get("target")
    if target is None:
        return
    if target["name"] in names:
        raise ConfigError(
            f"{where}.target.name: {target['name']!r} is also a domain; a target is weighted "
            "toward, not weighted: give it another name (or leave the domain out)"
        )
    _check_source(f"{where}.target ({target['name']})", target, dataset)


def _check_by_domain(where: str, dataset: dict) -> None:
    """The by-domain target's tokenizer is a local Hugging Face tokenizer (directory or file),
    found before any job reads the corpus."""
    path = dataset["by_domain"]["tokenizer"]
    if path is not None:
        from .by_domain import ByDomainError, tokenizer_file

        try:
            tokenizer_file(path, f"{where}.by_domain.tokenizer")
        except ByDomainError as err:
            raise ConfigError(str(err)) from None


def _check_source(where: str, entry: dict, dataset: dict) -> None:
    """A domain's (or the target's) `value` needs the dataset's mixed source; its `collect`
    a known collector."""
    from .corpus import COLLECTORS

    if "value" in entry and "source" not in dataset:
        raise ConfigError(
            f"{where}: `value` selects records of the dataset's mixed source; add `source:` "
            "and `domain_field:` to the dataset, or give it its own `source:`"
        )
    if "collect" in entry and entry["collect"] not in COLLECTORS:
        raise ConfigError(
            f"{where}: unknown collector {entry['collect']!r}; known: "
            f"{', '.join(sorted(COLLECTORS))}"
        )


def _check_data(where: str, data: dict | None) -> None:
    """Every path of a domain's `data:` exists (whether its tokens are the manifest
    tokenizer's is checked by the export, which has the tokenizer)."""
    if data is None:
        return
    if not any(data.get(key) for key in ("megatron", "olmo_core", "mosaic", "litdata")):
        raise ConfigError(
            f"{where}: name the domain's data (megatron, olmo_core, mosaic or litdata), or "
            "remove `data:`"
        )
    wanted = [
        (f"megatron[{i}]", f"{prefix}{ext}", False)
        for i, prefix in enumerate(data.get("megatron") or [])
        for ext in (".idx", ".bin")
    ]
    wanted += [(f"olmo_core[{i}]", p, False) for i, p in enumerate(data.get("olmo_core") or [])]
    wanted += [(key, data[key], True) for key in ("mosaic", "litdata") if data.get(key)]
    for key, path, folder in wanted:
        if not (Path(path).is_dir() if folder else Path(path).is_file()):
            raise ConfigError(
                f"{where}.{key}: {path} does not exist"
                + (" (or is not a folder)" if folder else "")
                + "; fix the path or remove the entry"
            )
    if not (data.get("megatron") or data.get("olmo_core")) and data["tokens"] is None:
        raise ConfigError(
            f"{where}: without token files (megatron, olmo_core) the export cannot count the "
            "domain's tokens; give data.tokens, its exact tokens (EOS included)"
        )


def _check_export(where: str, dataset: dict) -> None:
    """The production run's batch is whole sequences; a target has no data to export."""
    export = dataset["export"]
    seq_length, batch = export["seq_length"], export["global_batch_tokens"]
    if seq_length and batch and batch % seq_length:
        raise ConfigError(
            f"{where}.export.global_batch_tokens: {batch} is not a multiple of seq_length "
            f"{seq_length}; OLMo-core and Nanotron count a batch in whole sequences"
        )
    if dataset.get("target", {}).get("data") is not None:
        raise ConfigError(
            f"{where}.target.data: a target is mixed toward, never trained on, so no trainer "
            "reads its data; remove `data:`"
        )


def _check_baselines(where: str, dataset: dict, names: list[str]) -> None:
    """Cross-references of the baseline mixers' settings."""
    regmix = dataset["baselines"]["regmix"]
    target = dataset.get("target", {}).get("name")
    if regmix["target"] is not None and regmix["target"] not in [*names, target]:
        raise ConfigError(
            f"{where}.baselines.regmix.target: {regmix['target']!r} is not a domain of the "
            f"dataset nor its target; name one of {', '.join(names)}"
            + (f" or the target {target!r}" if target else "")
            + ", or null for the mean over domains"
        )
    if regmix["top_k"] > regmix["candidates"]:
        raise ConfigError(
            f"{where}.baselines.regmix.top_k: {regmix['top_k']} exceeds candidates "
            f"{regmix['candidates']}; average fewer mixtures or simulate more"
        )
    prior = regmix["prior"]
    if prior is not None and sorted(prior) != sorted(names):
        raise ConfigError(
            f"{where}.baselines.regmix.prior: give a share for exactly the dataset's domains; "
            f"missing {sorted(set(names) - set(prior))}, unknown {sorted(set(prior) - set(names))}"
        )
    if "model" in regmix:
        spec = model_spec(regmix["model"])
        if spec["n_embd"] % spec["n_head"]:
            raise ConfigError(
                f"{where}.baselines.regmix.model: n_embd {spec['n_embd']} is not divisible by "
                "n_head"
            )
