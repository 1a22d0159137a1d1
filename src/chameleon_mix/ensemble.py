"""Chameleon weights from several proxies, and how uncertain they are.

Plain functions on NumPy arrays. Shapes: ``R`` replicates (proxies trained alike but for their
seed, or one), ``k`` domains, ``p`` embedding dimensions, ``n_i`` sample embeddings of domain i.

    X_by_replicate   R arrays (k, p)             each replicate's domain embeddings
    samples          R lists of k arrays (n_i, p) the windows they are means of
    scores           (R, k)                       each replicate's leverage scores S

Combining replicates
--------------------
Proxies of different seeds do not share a basis: one's hidden dimension 7 is not another's,
so their embeddings cannot be averaged (a rotated copy of a replicate would change the
result). Their leverage scores can: ``S_i`` is a statement about domain i relative to the
others that any basis gives alike. :func:`ensemble_weights` averages the replicates'
(normalised) scores, an estimate of what the proxy's seed leaves in ``S``, and applies the
stage's formula once. Averaging the centred kernels instead (the KRLS of the replicates'
embeddings side by side) is basis-free too but weighs each proxy by the scale of its hidden
states; averaging the mixtures applies the formula R times. On the demo's 300-step proxies
(6 seeds, all 20 triples, 1024 samples) the three were within noise of each other (mean sd of
a weight across triples 0.053, 0.050, 0.058; averaging embeddings, 0.059), so the choice rests
on the scale argument: every replicate counts alike.

Uncertainty
-----------
:func:`bootstrap_weights` redraws what the mixture rests on, as a nested bootstrap: the
replicates (with replacement, when there are several: the proxy's seed is the largest source
of variation of an under-trained proxy) and, within each, every domain's sample embeddings
(with replacement: the sampling noise of ``x_i``). The quantiles of the redrawn mixtures give
:func:`intervals`. Memory is bounded: the draws are made in blocks of at most
``BOOTSTRAP_MEMORY`` bytes of redrawn embeddings, each block reading the samples again
(memory-mapped files serve), so thousands of clustered domains fit.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .krls import chameleon_weights, stage_weights

DEFAULT_DRAWS = 200
DEFAULT_LEVEL = 0.9
BOOTSTRAP_MEMORY = 256 * 2**20  # bytes of redrawn (draws, replicates, k, p) embeddings at once


def replicate_scores(X_by_replicate: Sequence[np.ndarray], settings: dict) -> np.ndarray:
    """(R, k) leverage scores, one row per replicate's (k, p) embeddings, with ``settings``
    (keyword arguments of :func:`~chameleon_mix.krls.chameleon_weights`)."""
    return np.stack([chameleon_weights(X, **settings).scores for X in X_by_replicate])


def ensemble_weights(
    X_by_replicate: Sequence[np.ndarray], settings: dict, names: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(weights (k,), scores (k,))``: the stage's formula on the replicates' mean scores.
    One replicate gives exactly :func:`~chameleon_mix.krls.chameleon_weights`' result."""
    scores = replicate_scores(X_by_replicate, {**settings, "names": names}).mean(axis=0)
    return scores_to_weights(scores, settings, names), scores


def scores_to_weights(
    scores: np.ndarray, settings: dict, names: list[str] | None = None
) -> np.ndarray:
    """The stage's formula of ``settings`` on (k,) leverage scores."""
    return stage_weights(
        scores,
        settings.get("stage", "pretrain"),
        settings.get("tau"),
        settings.get("temperature", "paper"),
        names,
    )


def bootstrap_weights(
    samples: Sequence[Sequence[np.ndarray]],
    settings: dict,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
    names: list[str] | None = None,
    memory: int = BOOTSTRAP_MEMORY,
) -> np.ndarray:
    """(draws, k) mixtures of a nested bootstrap: per draw, R replicates redrawn with
    replacement (kept as they are when R = 1), then each domain's n_i samples redrawn with
    replacement and averaged; the weights as :func:`ensemble_weights` forms them.

    ``samples[r][i]`` is replicate r's (n_i, p) sample embeddings of domain i (any array
    NumPy can index, e.g. a memory map). Seeded: the same inputs give the same draws.
    """
    R, k = len(samples), len(samples[0])
    p = np.shape(samples[0][0])[1]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, R, size=(draws, R)) if R > 1 else np.zeros((draws, 1), dtype=int)
    block = max(1, memory // (R * k * p * 8))
    out = np.empty((draws, k))
    for start in range(0, draws, block):
        chosen = picks[start : start + block]  # (b, R): the replicate in each slot of a draw
        X = np.empty((*chosen.shape, k, p))  # (b, R, k, p)
        for r in range(R):
            slots = np.nonzero(chosen == r)
            if len(slots[0]) == 0:
                continue
            for i in range(k):
                domain = np.asarray(samples[r][i], dtype=np.float64)
                n = len(domain)
                # Seeded by (seed, block, replicate, domain): the same inputs give the same
                # draws (the block size depends on k, p and R only).
                counts = np.random.default_rng([seed, start, r, i]).multinomial(
                    n, np.full(n, 1.0 / n), size=len(slots[0])
                )
                X[slots[0], slots[1], i] = counts @ domain / n
        for b in range(len(chosen)):
            out[start + b] = ensemble_weights(list(X[b]), settings, names)[0]
    return out


def intervals(draws: np.ndarray, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """(k, 2) equal-tailed ``level`` intervals of (draws, k) bootstrap mixtures."""
    if not 0 < level < 1:
        raise ValueError(f"the interval's level must lie in (0, 1), got {level}")
    tail = (1 - level) / 2
    return np.quantile(draws, [tail, 1 - tail], axis=0).T
