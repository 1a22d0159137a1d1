"""The mixing methods: one registry entry each, read by the config check, the planner
(:mod:`chameleon_mix.plan`: the mixture rule's files and settings, the training rules), the
FLOPs plan, the report and its plots.

An entry carries everything the workflow needs to know of a method: the stages it serves,
the files its mixture is computed from and the settings it depends on, the checks of the
dataset it needs (run only when its mixture is planned), what it trains, where its weights
over proxy training are, how its compute is counted, and the function that writes its
mixture file. A method is one entry; nothing else branches on its name.

Methods outside this package register through the ``chameleon_mix.methods`` entry-point
group (an entry point named like the method, pointing at its :class:`Method`), or with
:func:`register` in the process that plans and runs them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

from . import flops

if TYPE_CHECKING:
    from .plan import Dataset

STAGES = ("pretrain", "finetune")
ENTRY_POINTS = "chameleon_mix.methods"


def _none(*args: Any) -> dict:
    return {}


def _passes(dataset: Dataset) -> None:
    return None


def _free(dataset: dict, proxy: dict | None, validation_tokens: int) -> float:
    return 0.0


@dataclass(frozen=True)
class Method:
    """One mixing method.

    ``make(out, domains, inputs, settings)`` writes the mixture file ``out`` and returns it:
    ``inputs`` maps the names of ``inputs(dataset_plan, method)`` to their files,
    ``settings`` is ``settings(resolved_dataset)``. Every callable taking a dataset plan
    gets a :class:`chameleon_mix.plan.Dataset`, which knows the dataset's files.
    """

    make: Callable[[str, list[str], dict, dict], dict]
    title: str  # the method's name in figures
    stages: tuple[str, ...] = STAGES
    # the mixture's files, name -> path or paths (empty ones are left out)
    inputs: Callable[[Dataset, str], dict] = _none
    # what the mixture depends on beyond its files, from the resolved dataset: only the
    # method's own settings, so a change elsewhere rewrites no other mixture
    settings: Callable[[dict], dict] = _none
    # raises PlanError when the dataset cannot have this mixture (naming what to fix); run
    # when the mixture is planned, so a target that needs no mixture never fails on it
    check: Callable[[Dataset], None] = _passes
    # "proxy": a proxy trained with a reweighter by job module `job`
    # (results/<dataset>/<method>/proxy) from `proxy_inputs` and the tokens; "runs":
    # RegMix's small runs; None: nothing
    trains: str | None = None
    job: str | None = None
    proxy_inputs: Callable[[Dataset, str], dict] = _none
    # the file holding its weights over proxy training (the report's stability figure)
    trajectory: Callable[[Dataset, str], str | None] = lambda dataset, method: None
    # FLOPs to obtain the mixture, planned from the resolved dataset and proxy alone
    # (chameleon_mix.flops.planned_compute), and what the report's count includes, in words
    planned_flops: Callable[[dict, dict | None, int], float] = _free
    compute: str = ""
    why_stages: str = ""  # why it serves only its stages, for the config's error


def _uniform(out, domains, inputs, settings):
    from .mixtures import uniform_mixture

    return uniform_mixture(out, domains)


def _natural(out, domains, inputs, settings):
    from .mixtures import natural_mixture

    return natural_mixture(out, domains, inputs["corpus_stats"])


def _human(out, domains, inputs, settings):
    from .mixtures import human_mixture

    return human_mixture(out, domains, settings["human_weights"])


def _check_human(dataset: Dataset) -> None:
    """The hand-given weights name exactly the dataset's domains and sum to 1."""
    from .mixtures import check_weights
    from .plan import PlanError

    where = f"datasets.{dataset.name}.human_weights"
    weights = dataset.settings.get("human_weights")
    if not weights:
        raise PlanError(f"{where}: method `human` needs hand-given weights for the dataset")
    try:
        check_weights(weights, dataset.domains, where)
    except ValueError as err:
        raise PlanError(f"{err}; method `human` cannot weight the dataset until they do") from None


def _chameleon(out, domains, inputs, settings):
    from .mixtures import chameleon_mixture

    return chameleon_mixture(
        out, domains, inputs["weights"], inputs.get("uniform_proxy_logs"), settings["proxy_reused"]
    )


def _chameleon_pt(out, domains, inputs, settings):
    from .mixtures import chameleon_mixture

    return chameleon_mixture(
        out, domains, inputs["weights"], None, False, method="chameleon_pt", stage="pretrain"
    )


def _doremi(out, domains, inputs, settings):
    from .doremi import doremi_mixture

    return doremi_mixture(
        out,
        domains,
        inputs["method_proxy_log"],
        inputs["reference_log"],
        settings["reference_reused"],
    )


def _doge(out, domains, inputs, settings):
    from .doge import doge_mixture

    return doge_mixture(out, domains, inputs["method_proxy_log"])


def _target_inputs(dataset: Dataset, method: str) -> dict:
    dataset.needs_target(method)
    return {"embeddings": dataset.embeddings(), "target": dataset.target_embeddings()}


def _target_settings(dataset: dict) -> dict:
    return {"lam": dataset["weights"]["lam"], "target_tau": dataset["target_tau"]}


def _toward_target(name: str, form: str, title: str) -> Method:
    """A method weighting the domains toward the dataset's target (:mod:`chameleon_mix.target`)
    by the scores of ``form``."""

    def make(out, domains, inputs, settings):
        from .target import target_mixture

        return target_mixture(
            out, domains, list(inputs["embeddings"]), list(inputs["target"]), settings, name, form
        )

    return Method(
        make,
        title,
        inputs=_target_inputs,
        settings=_target_settings,
        check=lambda ds: ds.needs_target(name),
        planned_flops=flops.target_flops,
        compute="embedding the target (the domains' embeddings are Chameleon's)",
    )


def _regmix(out, domains, inputs, settings):
    from .regmix import regmix_mixture

    return regmix_mixture(out, domains, list(inputs["runs"]), **settings["fit"])


def _regmix_settings(dataset: dict) -> dict:
    from .regmix import fit_settings

    return {"fit": fit_settings(dataset["baselines"]["regmix"])}


def own_proxy_log(dataset: Dataset, method: str) -> str:
    """The training log of a method's own reweighted proxy (rule train_reweighted_proxy)."""
    return dataset.file(f"{method}/proxy/train_log.json")


BUILTIN: dict[str, Method] = {
    "uniform": Method(_uniform, "Uniform"),
    "natural": Method(
        _natural, "Natural", inputs=lambda ds, m: {"corpus_stats": ds.corpus_stats_file}
    ),
    "human": Method(
        _human,
        "Human",
        settings=lambda d: {"human_weights": d.get("human_weights")},
        check=_check_human,
    ),
    "chameleon": Method(
        _chameleon,
        "Chameleon",
        inputs=lambda ds, m: {"weights": ds.weights_file, "uniform_proxy_logs": ds.proxy_logs()},
        settings=lambda d: {"proxy_reused": d.get("proxy_reused", False)},
        trajectory=lambda ds, m: ds.stability_file,
        planned_flops=flops.chameleon_flops,
        compute="proxy training (every replicate) plus embedding (embedding only when the "
        "proxy is reused)",
    ),
    # The paper's finetuning control (Appendix B.8): pretraining's formula on the same scores.
    "chameleon_pt": Method(
        _chameleon_pt,
        "Chameleon (pretraining formula)",
        stages=("finetune",),
        inputs=lambda ds, m: {"weights": ds.weights_file},
        why_stages="chameleon_pt is the finetuning control; a pretraining dataset's "
        "`chameleon` already uses the inverse scores",
    ),
    # Toward the dataset's target text, from the proxy's embeddings (chameleon_mix.target).
    "chameleon_target": _toward_target("chameleon_target", "regression", "Chameleon (target)"),
    "target_affinity": _toward_target("target_affinity", "affinity", "Target affinity"),
    "doremi": Method(
        _doremi,
        "DoReMi",
        stages=("pretrain",),
        inputs=lambda ds, m: {
            "method_proxy_log": own_proxy_log(ds, m),
            "reference_log": f"{ds.doremi_reference}/train_log.json",
        },
        settings=lambda d: {"reference_reused": d["doremi_reference_reused"]},
        trains="proxy",
        job="train_doremi",
        proxy_inputs=lambda ds, m: {"reference": f"{ds.doremi_reference}/model"},
        trajectory=own_proxy_log,
        planned_flops=flops.doremi_flops,
        compute="reference training, proxy training and the reference's forward passes",
        why_stages="the baseline mixers train proxies from scratch and weight pretraining data",
    ),
    "doge": Method(
        _doge,
        "DoGE",
        stages=("pretrain",),
        inputs=lambda ds, m: {"method_proxy_log": own_proxy_log(ds, m)},
        trains="proxy",
        job="train_doge",
        trajectory=own_proxy_log,
        planned_flops=flops.doge_flops,
        compute="proxy training by per-domain gradients, plus their inner products",
        why_stages="the baseline mixers train proxies from scratch and weight pretraining data",
    ),
    "regmix": Method(
        _regmix,
        "RegMix",
        stages=("pretrain",),
        inputs=lambda ds, m: {"runs": ds.regmix_runs()},
        settings=_regmix_settings,
        trains="runs",
        planned_flops=flops.regmix_flops,
        compute="training and validating every small run",
        why_stages="the baseline mixers train proxies from scratch and weight pretraining data",
    ),
}

METHODS: dict[str, Method] = dict(BUILTIN)


def register(name: str, entry: Method) -> None:
    """Add a method to this process's registry (a name already taken is an error)."""
    if name in METHODS:
        raise ValueError(f"mixing method {name!r} is already registered")
    if not name.isidentifier():
        raise ValueError(f"mixing method name {name!r}: use letters, digits and underscores")
    METHODS[name] = entry


def _register_entry_points() -> None:
    """Methods that installed packages declare in the ``chameleon_mix.methods`` group."""
    for point in entry_points(group=ENTRY_POINTS):
        entry = point.load()
        if not isinstance(entry, Method):
            raise TypeError(
                f"entry point {point.name} = {point.value} ({ENTRY_POINTS}) is a "
                f"{type(entry).__name__}, not a chameleon_mix.methods.Method"
            )
        if point.name in BUILTIN:
            raise ValueError(
                f"entry point {point.name} = {point.value} ({ENTRY_POINTS}) takes the name of "
                "a built-in method; give it another name"
            )
        METHODS[point.name] = entry


_register_entry_points()


def method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown mixing method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


def reweighted_proxies() -> list[str]:
    """The methods that train a proxy with a reweighter (one generic training rule)."""
    return [name for name, m in METHODS.items() if m.trains == "proxy"]
