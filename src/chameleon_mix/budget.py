"""A mixture under a token budget: no domain repeated more than ``max_epochs`` times.

A run of ``tokens`` tokens at weights ``w`` reads ``w_i · tokens`` tokens of domain ``i``,
whose corpus has ``n_i``: it repeats the domain ``w_i · tokens / n_i`` times (its epochs).
Repetition past ~4 epochs is worth much less than new data (Muennighoff et al. 2023,
"Scaling Data-Constrained Language Models"), so a budget caps each weight at
``c_i = max_epochs · n_i / tokens`` and moves the mixture there by the smallest change in
KL divergence:

    w' = argmin KL(w' ‖ w)  subject to  0 ≤ w'_i ≤ c_i,  Σ w'_i = 1
       = min(c_i, s · w_i)  with s ≥ 1 the one scale at which the weights sum to 1,

so the capped domains sit at their caps and the others keep their ratios.
"""

from __future__ import annotations

import numpy as np


class BudgetError(ValueError):
    """A budget no mixture can meet: the message names the budget and what would work."""


def check_budget(tokens: float, max_epochs: float, corpus_tokens: dict[str, float], where: str):
    """Refuse a budget the corpus cannot supply within ``max_epochs`` (``where``: the
    budget's key path, or the CLI's flags, for the message)."""
    total = float(sum(corpus_tokens.values()))
    if max_epochs * total < tokens:
        raise BudgetError(
            f"{where}: {tokens:,.0f} tokens at max_epochs {max_epochs:g} need more data than the "
            f"corpus's {total:,.0f} tokens can give ({max_epochs:g} × {total:,.0f} = "
            f"{max_epochs * total:,.0f}); lower tokens to at most {max_epochs * total:,.0f}, or "
            f"raise max_epochs to at least {tokens / total:.3g}"
        )


def check_mixture_budget(
    weights: dict[str, float],
    corpus_tokens: dict[str, float],
    tokens: float,
    max_epochs: float,
    where: str,
) -> dict[str, float]:
    """Refuse a mixture whose run of ``tokens`` would read a domain more than ``max_epochs``
    times over its ``corpus_tokens``; return each domain's epochs. The message names the
    domain, its tokens, and the largest budget and smallest ``max_epochs`` that would work at
    these weights (``where``: the data the check is against, for the message)."""
    check_budget(tokens, max_epochs, corpus_tokens, where)
    weighted = [d for d, w in weights.items() if w > 0]
    epochs = {d: weights[d] * tokens / corpus_tokens[d] for d in weighted}
    over = [d for d in weighted if epochs[d] > max_epochs * (1 + 1e-9)]
    if over:
        worst = max(over, key=epochs.get)
        largest = min(max_epochs * corpus_tokens[d] / weights[d] for d in weighted)
        raise BudgetError(
            f"{where}: domain {worst!r} has {corpus_tokens[worst]:,.0f} tokens; at weight "
            f"{weights[worst]:.4g} a run of {tokens:,.0f} tokens reads it {epochs[worst]:.3g} "
            f"times, more than max_epochs {max_epochs:g}"
            + (
                f" (so do {', '.join(map(repr, sorted(set(over) - {worst})))})"
                if len(over) > 1
                else ""
            )
            + f"; lower the budget's tokens to at most {int(largest):,}, raise max_epochs to at "
            f"least {max(epochs.values()):.3g}, or rebudget the mixture on these tokens "
            "(chameleon-weights budget)"
        )
    return epochs


def kl_projection(weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """The mixture nearest ``weights`` (k,) in KL divergence whose every weight is at most its
    cap ``caps`` (k,): ``min(caps, s · weights)``, ``s`` found exactly over the domains sorted
    by ``caps / weights``. A domain of weight 0 stays at 0, so the weighted domains' caps
    must reach 1 together (:class:`BudgetError` otherwise)."""
    weights, caps = np.asarray(weights, np.float64), np.asarray(caps, np.float64)
    support = weights > 0
    if caps[support].sum() < 1.0:
        raise BudgetError(
            f"the domains this mixture weights can give only {caps[support].sum():.3f} of the "
            "budget's tokens within max_epochs; the mixture leaves out the others"
        )
    ratio = np.where(support, caps / np.where(support, weights, 1.0), np.inf)
    order = np.argsort(ratio, kind="stable")
    capped_sum = np.concatenate([[0.0], np.cumsum(caps[order])])  # caps of the first j
    free = weights[order][::-1].cumsum()[::-1]  # weights of the j-th domain on
    for j, i in enumerate(order[: support.sum()]):
        scale = (1.0 - capped_sum[j]) / free[j]
        if scale * weights[i] <= caps[i]:  # the first uncapped domain, hence all after it
            return np.minimum(caps, scale * weights)
    return np.where(support, caps, 0.0) / caps[support].sum()  # every cap binds (sum 1)


def constrain(
    weights: dict[str, float], corpus_tokens: dict[str, float], tokens: float, max_epochs: float
) -> dict:
    """``weights`` under the budget: the mixture file's fields ``weights`` (constrained),
    ``unconstrained_weights``, ``epochs`` (planned tokens of each domain over its corpus
    tokens), ``capped`` (domains at their cap) and ``budget``."""
    names = list(weights)
    w = np.array([weights[d] for d in names])
    n = np.array([corpus_tokens[d] for d in names], dtype=np.float64)
    caps = max_epochs * n / tokens
    projected = kl_projection(w, caps)
    return {
        "weights": dict(zip(names, projected.tolist())),
        "unconstrained_weights": dict(weights),
        "epochs": dict(zip(names, (projected * tokens / n).tolist())),
        "capped": [
            d for d, at_cap in zip(names, np.isclose(projected, caps, rtol=1e-9, atol=0)) if at_cap
        ],
        "budget": {"tokens": tokens, "max_epochs": max_epochs},
    }
