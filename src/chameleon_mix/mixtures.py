"""Mixture methods: domain weights in one JSON form, whatever produced them.

A mixture file is ``{"method", "weights": {domain: weight}, "compute_flops", ...}``. The
trainer and the report read only this form, so adding a method never touches them. Under a
token budget (:mod:`chameleon_mix.budget`), ``weights`` are the constrained weights and the
file also holds ``unconstrained_weights``, ``epochs``, ``capped`` and ``budget``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .io import write_json

SUM_TOLERANCE = 0.01  # published weights are rounded to 2-3 decimals


def check_weights(weights: dict[str, float], domains: list[str], what: str) -> dict[str, float]:
    """Weights for exactly ``domains``, non-negative, summing to 1 (within rounding);
    returned renormalised to sum to 1 exactly, in ``domains`` order."""
    missing = [d for d in domains if d not in weights]
    unknown = [d for d in weights if d not in domains]
    if missing or unknown:
        raise ValueError(
            f"{what}: weights must name every domain exactly; "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and unknown else "")
            + (f"unknown {unknown}" if unknown else "")
            + f" (domains: {', '.join(domains)})"
        )
    negative = {d: w for d, w in weights.items() if not w >= 0}
    if negative:
        raise ValueError(f"{what}: weights must be >= 0, got {negative}")
    total = sum(weights.values())
    if abs(total - 1.0) > SUM_TOLERANCE:
        raise ValueError(
            f"{what}: weights sum to {total:.4f}, not 1 (within {SUM_TOLERANCE}); fix them so they do"
        )
    return {d: weights[d] / total for d in domains}


def write_mixture(path: str | Path, method: str, weights: dict[str, float], **extra) -> dict:
    mixture = {"method": method, "weights": weights, "compute_flops": 0.0, **extra}
    write_json(path, mixture)
    return mixture


def read_mixture(path: str | Path, domains: list[str]) -> dict[str, float]:
    """The weights of a mixture file, checked against the dataset's domains."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mixture {path} does not exist; run the rule that makes it")
    mixture = json.loads(path.read_text())
    return check_weights(mixture.get("weights", {}), domains, f"mixture {path}")


def make_mixture(
    name: str,
    path: str | Path,
    domains: list[str],
    inputs: dict,
    settings: dict,
    budget: dict | None = None,
    where: str = "budget",
) -> dict:
    """Write method ``name``'s mixture to ``path`` (its registry entry's ``make``), under
    ``budget`` (``{"tokens", "max_epochs"}``, read against ``inputs["corpus_stats"]``) when
    given. An infeasible budget is refused before anything is written (``where`` names it)."""
    from .budget import check_budget, constrain
    from .corpus_stats import read_corpus_tokens
    from .methods import method

    if budget:
        corpus = read_corpus_tokens(inputs["corpus_stats"], domains)
        check_budget(budget["tokens"], budget["max_epochs"], corpus, where)
    mixture = method(name).make(path, domains, inputs, settings)
    if not budget:
        return mixture
    try:
        mixture |= constrain(mixture["weights"], corpus, budget["tokens"], budget["max_epochs"])
    except ValueError:
        Path(path).unlink()
        raise
    write_json(path, mixture)
    return mixture


def uniform_mixture(path: str | Path, domains: list[str]) -> dict:
    return write_mixture(path, "uniform", {d: 1.0 / len(domains) for d in domains})


def natural_mixture(path: str | Path, domains: list[str], corpus_stats: str | Path) -> dict:
    """Each domain's share of the corpus's tokens (``corpus_stats.json``): the mixture a
    trainer reading every file once would see."""
    from .corpus_stats import natural_shares, read_corpus_tokens

    return write_mixture(
        path,
        "natural",
        natural_shares(corpus_stats, domains),
        corpus_tokens=read_corpus_tokens(corpus_stats, domains),
    )


def human_mixture(path: str | Path, domains: list[str], weights: dict[str, float]) -> dict:
    checked = check_weights(weights, domains, "config human_weights")
    return write_mixture(path, "human", checked)


def chameleon_mixture(
    path: str | Path,
    domains: list[str],
    weights_json: str | Path,
    proxy_logs: list[str | Path] | None,
    reused_proxy: bool = False,
    method: str = "chameleon",
    stage: str | None = None,
) -> dict:
    """Chameleon's weights with what they cost: proxy training and embedding FLOPs.

    ``proxy_logs`` (one per proxy replicate) is None when no proxy was trained (finetuning
    embeds with the pretrained model). ``stage`` other than the weights' own gives the paper's control (Appendix B.8):
    the other stage's formula on the same scores, e.g. ``softmax((1/S)/5)`` for finetuning.
    """
    from .flops import embedding_flops, training_flops
    from .krls import stage_weights

    report = json.loads(Path(weights_json).read_text())
    weights = report["weights"]
    if stage is not None and stage != report["stage"]:
        # The other stage's formula at its default temperature, on the same scores.
        names = report["domains"]
        scores = np.array([report["scores"][d] for d in names])
        alpha = stage_weights(scores, stage, None, report["params"]["temperature"], names)
        weights = dict(zip(names, alpha.tolist()))
    checked = check_weights(weights, domains, f"Chameleon weights {weights_json}")
    embed = sum(
        embedding_flops(info["architecture"], info["layer"], info["tokens"], info["seq_len"])
        for replicate in report["embeddings"].values()
        for info in replicate.values()
    )
    proxy = 0.0
    for proxy_log in proxy_logs or []:
        log = json.loads(Path(proxy_log).read_text())
        proxy += training_flops(log["model"], log["tokens_total"], log["config"]["seq_len"])
    return write_mixture(
        path,
        method,
        checked,
        compute_flops=embed + (0.0 if reused_proxy else proxy),
        proxy_flops=proxy,
        embedding_flops=embed,
        proxy_reused=reused_proxy,
        proxy=report.get("proxy"),
        embedding_model=report.get("embedding_model"),
        stage=stage or report["stage"],
    )
