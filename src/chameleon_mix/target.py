"""Weights toward a target text, from the embeddings and the kernel Chameleon already has.

With the domains' embeddings ``X`` (k, p) and the target's ``x`` (p,), both centred by the
domains' mean (the centring of KRLS's affinity), two ways to score each domain:

* ``chameleon_target``: the kernel ridge regression of the target on the domains,

      β = (Ω_c + k λ I)⁻¹ X_c x_c          (k,),   Ω_c = X_c X_cᵀ,

  the same ridge system as the leverage scores ``S = diag(Ω_c (Ω_c + kλI)⁻¹)``. ``X_cᵀ β`` is
  the best ridge reconstruction of the target from the domains: a domain gets weight for the
  part of the target it explains that the others do not, so of two near-identical domains
  that both resemble the target, neither is counted twice;
* ``target_affinity``, the plain baseline: each domain's cosine similarity to the target.

Either score vector ``z`` becomes weights as the paper's finetuning formula turns ``S`` into
weights, ``α = softmax((z / max|z|) / τ)``; dividing by the largest magnitude makes ``τ``
independent of the embeddings' scale. Across proxy replicates the normalised scores are
averaged before the softmax, as the leverage scores are (:mod:`chameleon_mix.ensemble`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import linalg

from .krls import check_embeddings, softmax

FORMS = ("regression", "affinity")


def target_coefficients(
    domain_embeddings: np.ndarray, target: np.ndarray, lam: float
) -> np.ndarray:
    """β (k,): the ridge coefficients of the centred target on the centred domain
    embeddings (k, p), ``(Ω_c + kλI)⁻¹ X_c x_c``, by a Cholesky solve."""
    X = check_embeddings(domain_embeddings)
    mean = X.mean(axis=0)
    X, x = X - mean, np.asarray(target, dtype=np.float64) - mean
    k = X.shape[0]
    ridge = X @ X.T + k * lam * np.eye(k)
    return linalg.cho_solve(linalg.cho_factor(ridge, lower=True), X @ x)


def target_similarities(domain_embeddings: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Each domain's cosine similarity (k,) to the target, both centred by the domains'
    mean."""
    X = check_embeddings(domain_embeddings)
    mean = X.mean(axis=0)
    X, x = X - mean, np.asarray(target, dtype=np.float64) - mean
    norms = np.linalg.norm(X, axis=1) * np.linalg.norm(x)
    if not np.all(norms > 0):
        raise ValueError(
            "a domain or the target sits at the domains' mean embedding: its direction, hence "
            "its similarity, is undefined; embed more samples"
        )
    return X @ x / norms


def normalised_scores(domain_embeddings: np.ndarray, target: np.ndarray, form: str, lam: float):
    """The form's scores (k,) divided by their largest magnitude, in [-1, 1]."""
    if form not in FORMS:
        raise ValueError(f"target form must be one of {FORMS}, got {form!r}")
    if form == "regression":
        scores = target_coefficients(domain_embeddings, target, lam)
    else:
        scores = target_similarities(domain_embeddings, target)
    largest = np.abs(scores).max()
    if not largest > 0:
        raise ValueError(
            "the target's centred embedding is zero: it sits at the domains' mean, so no "
            "domain is nearer to it than another; a target needs text unlike the average domain"
        )
    return scores / largest


def target_weights(
    replicates: list[tuple[np.ndarray, np.ndarray]], form: str, lam: float, tau: float
) -> tuple[np.ndarray, np.ndarray]:
    """``(weights, scores)`` (k,) toward the target over proxy ``replicates``, each a pair of
    the domains' embeddings (k, p) and the target's (p,): the normalised scores averaged
    over the replicates, then ``softmax(scores / tau)``."""
    if not tau > 0:
        raise ValueError(f"target tau must be > 0, got {tau}")
    scores = np.mean([normalised_scores(X, x, form, lam) for X, x in replicates], axis=0)
    return softmax(scores, tau), scores


def _identical(domain_embeddings: np.ndarray, target: np.ndarray, names: list[str]) -> list[str]:
    """Domains whose embedding equals the target's (to float32 rounding)."""
    scale = np.linalg.norm(target)
    gaps = np.linalg.norm(domain_embeddings - target, axis=1)
    return [n for n, gap in zip(names, gaps) if gap <= 1e-6 * scale]


def target_mixture(
    path: str | Path,
    domains: list[str],
    embeddings: list[str | Path],
    target_embeddings: list[str | Path],
    settings: dict,
    method: str,
    form: str,
) -> dict:
    """Write the mixture toward the target: ``embeddings`` are every embedder's domain
    embeddings (embedder by embedder, in ``domains`` order), ``target_embeddings`` the
    target's by the same embedders; ``settings``: ``lam``, ``target_tau``. Its compute is the
    target's embedding, the one pass it adds to Chameleon's."""
    from .flops import embedding_flops
    from .io import warn
    from .mixtures import write_mixture

    k = len(domains)
    if len(embeddings) != k * len(target_embeddings):
        raise ValueError(
            f"{len(embeddings)} domain embeddings for {k} domains and "
            f"{len(target_embeddings)} embedders of the target; they must match"
        )
    replicates, flops = [], 0.0
    for i, target_file in enumerate(target_embeddings):
        X = np.stack([np.load(f) for f in embeddings[i * k : (i + 1) * k]])
        x = np.load(target_file)
        same = _identical(X, x, domains)
        if same:
            warn(
                f"the target {Path(target_file).stem!r} embeds exactly as domain(s) "
                f"{', '.join(same)}: they hold the same text, and the mixture puts most weight "
                "there (right if that is the text you want)"
            )
        replicates.append((X, x))
        info = json.loads(Path(target_file).with_suffix(".json").read_text())
        flops += embedding_flops(
            info["architecture"], info["layer"], info["tokens"], info["seq_len"]
        )
    weights, scores = target_weights(replicates, form, settings["lam"], settings["target_tau"])
    return write_mixture(
        path,
        method,
        dict(zip(domains, weights.tolist())),
        compute_flops=flops,
        target=Path(target_embeddings[0]).stem,
        form=form,
        scores=dict(zip(domains, scores.tolist())),
        tau=settings["target_tau"],
        lam=settings["lam"],
    )
