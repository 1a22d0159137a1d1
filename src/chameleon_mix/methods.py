"""The mixing methods: one registry entry each, read by the config check, the workflow's one
mixture rule and its training rules, and the report.

An entry says which stages may use the method, which files its mixture is computed from
(names that ``workflow/rules/common.smk`` maps to paths), what it trains to get there, where
its weights over proxy training are (the report's stability figure), how its compute is
counted, and the function that writes its mixture file. A new method is a module with that
function plus one entry here; one that trains a reweighted proxy
(:class:`~chameleon_mix.train.Reweighter`) also names the job module that trains it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

STAGES = ("pretrain", "finetune")


@dataclass(frozen=True)
class Method:
    """``make(out, domains, inputs, settings)`` writes the mixture file ``out``: ``inputs``
    maps the entry's ``inputs`` names to files (``weights``: the dataset's weights.json,
    ``uniform_proxy_logs``: its uniform proxy's training logs, one per replicate, when
    pretraining,
    ``method_proxy_log``: the log of the method's own proxy, ``reference_log``: DoReMi's
    reference's, ``runs``: RegMix's run files), ``settings`` is the entry's ``settings`` of the
    resolved dataset."""

    make: Callable[[str, list[str], dict, dict], dict]
    stages: tuple[str, ...] = STAGES
    inputs: tuple[str, ...] = ()
    # "proxy": a proxy trained with a reweighter by job module `job`
    # (results/<dataset>/<method>/proxy); "runs": RegMix's small runs; None: nothing
    trains: str | None = None
    job: str | None = None
    proxy_inputs: tuple[str, ...] = ()  # extra inputs of the method's proxy job
    trajectory: str | None = None  # the input holding the weights over proxy training
    compute: str = ""  # what the report's compute column counts, in words
    # what the mixture depends on beyond its files, from the resolved dataset: only the
    # method's own settings, so a change elsewhere rewrites no other mixture
    settings: Callable[[dict], dict] = lambda dataset: {}


def _uniform(out, domains, inputs, settings):
    from .mixtures import uniform_mixture

    return uniform_mixture(out, domains)


def _human(out, domains, inputs, settings):
    from .mixtures import human_mixture

    return human_mixture(out, domains, settings["human_weights"])


def _chameleon(out, domains, inputs, settings):
    from .mixtures import chameleon_mixture

    return chameleon_mixture(
        out, domains, inputs["weights"], inputs.get("uniform_proxy_logs"), settings["proxy_reused"]
    )


def _chameleon_pt(out, domains, inputs, settings):
    from .mixtures import chameleon_mixture

    return chameleon_mixture(
        out,
        domains,
        inputs["weights"],
        None,
        False,
        method="chameleon_pt",
        stage="pretrain",
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


def _regmix(out, domains, inputs, settings):
    from .regmix import regmix_mixture

    return regmix_mixture(out, domains, list(inputs["runs"]), **settings["fit"])


def regmix_fit_settings(regmix: dict) -> dict:
    """What RegMix's fit depends on; the runs' own settings stay out (they are the runs')."""
    return {key: regmix[key] for key in ("target", "candidates", "top_k", "seed", "max_usage")}


METHODS: dict[str, Method] = {
    "uniform": Method(_uniform),
    "human": Method(_human, settings=lambda d: {"human_weights": d.get("human_weights")}),
    "chameleon": Method(
        _chameleon,
        inputs=("weights", "uniform_proxy_logs"),
        trajectory="stability",
        compute="proxy training (every replicate) plus embedding (embedding only when the "
        "proxy is reused)",
        settings=lambda d: {"proxy_reused": d.get("proxy_reused", False)},
    ),
    # The paper's finetuning control (Appendix B.8): pretraining's formula on the same scores.
    "chameleon_pt": Method(_chameleon_pt, stages=("finetune",), inputs=("weights",)),
    "doremi": Method(
        _doremi,
        stages=("pretrain",),
        inputs=("method_proxy_log", "reference_log"),
        trains="proxy",
        job="train_doremi",
        proxy_inputs=("reference",),
        trajectory="method_proxy_log",
        compute="reference training, proxy training and the reference's forward passes",
        settings=lambda d: {"reference_reused": d["doremi_reference_reused"]},
    ),
    "doge": Method(
        _doge,
        stages=("pretrain",),
        inputs=("method_proxy_log",),
        trains="proxy",
        job="train_doge",
        trajectory="method_proxy_log",
        compute="proxy training by per-domain gradients, plus their inner products",
    ),
    "regmix": Method(
        _regmix,
        stages=("pretrain",),
        inputs=("runs",),
        trains="runs",
        compute="training and validating every small run",
        settings=lambda d: {"fit": regmix_fit_settings(d["baselines"]["regmix"])},
    ),
}


def method(name: str) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown mixing method {name!r}; known: {', '.join(METHODS)}")
    return METHODS[name]


def reweighted_proxies() -> list[str]:
    """The methods that train a proxy with a reweighter (one generic training rule)."""
    return [name for name, m in METHODS.items() if m.trains == "proxy"]
