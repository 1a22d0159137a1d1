"""Kernel ridge leverage scores (KRLS) over domain embeddings, and the Chameleon weights.

Plain functions on NumPy arrays. Shapes: ``k`` domains, ``p`` embedding dimensions.

    X      (k, p)  domain embeddings, one row per domain
    Omega  (k, k)  affinity, Omega = X X^T (optionally centred)
    S      (k,)    leverage scores, S = diag(Omega (Omega + k*lam*I)^-1)
    alpha  (k,)    domain weights on the simplex

Pretraining (and new data) favours domains that the others explain well:
``alpha = softmax((1/S) / tau)``; finetuning favours distinct domains: ``alpha = softmax(S / tau)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

STAGES = ("pretrain", "finetune")
DEFAULT_TAU = {"pretrain": 5.0, "finetune": 0.2}


def affinity(domain_embeddings: np.ndarray) -> np.ndarray:
    """Linear-kernel affinity ``X X^T`` of shape (k, k) from embeddings of shape (k, p)."""
    X = np.asarray(domain_embeddings, dtype=np.float64)
    return X @ X.T


def center_kernel(kernel: np.ndarray) -> np.ndarray:
    """Double-centre a (k, k) kernel: ``K - row means - column means + grand mean``.

    Equals the linear kernel of the embeddings after subtracting their mean, so a direction
    shared by every domain (the proxy's "language in general" component) no longer dominates.
    """
    K = np.asarray(kernel, dtype=np.float64)
    return K - K.mean(axis=0, keepdims=True) - K.mean(axis=1, keepdims=True) + K.mean()


def leverage_scores(kernel: np.ndarray, lam: float) -> np.ndarray:
    """KRLS ``diag(K (K + k*lam*I)^-1)`` of a symmetric PSD (k, k) kernel; returns shape (k,).

    ``K`` and ``(K + k*lam*I)^-1`` commute, so the hat matrix is the Cholesky solve
    ``(K + k*lam*I) H = K``; no inverse is formed. Each score lies in [0, 1).
    """
    K = np.asarray(kernel, dtype=np.float64)
    k = K.shape[0]
    ridge = K + k * lam * np.eye(k)
    hat = linalg.cho_solve(linalg.cho_factor(ridge, lower=True), K)
    return np.diag(hat).copy()


def softmax(z: np.ndarray, tau: float) -> np.ndarray:
    """Softmax of ``z / tau`` along the only axis, shifted by the max for stability."""
    logits = np.asarray(z, dtype=np.float64) / tau
    e = np.exp(logits - logits.max())
    return e / e.sum()


@dataclass(frozen=True)
class ChameleonResult:
    """Everything the weights stage reports, in domain order."""

    affinity: np.ndarray  # (k, k), after optional centring
    scores: np.ndarray  # (k,) S, normalised to sum 1 when asked
    weights: np.ndarray  # (k,) alpha
    tau: float  # the temperature used (the stage's default when none was given)


def check_embeddings(domain_embeddings: np.ndarray, names: list[str] | None = None) -> np.ndarray:
    """Validate a (k, p) embedding matrix and return it as float64; errors name the bad domain."""
    X = np.asarray(domain_embeddings, dtype=np.float64)
    names = names or [f"domain {i}" for i in range(len(X))]
    if X.ndim != 2:
        raise ValueError(f"domain embeddings must be a (k, p) matrix, got shape {X.shape}")
    if X.shape[0] < 2:
        raise ValueError(
            f"Chameleon weights need at least 2 domains, got {X.shape[0]} ({', '.join(names)}): "
            "leverage scores of a single domain carry no information"
        )
    bad = [n for n, row in zip(names, X) if not np.all(np.isfinite(row))]
    if bad:
        raise ValueError(
            f"domain embeddings contain NaN or Inf for: {', '.join(bad)}; re-embed them"
        )
    return X


def chameleon_weights(
    domain_embeddings: np.ndarray,
    stage: str = "pretrain",
    lam: float = 10.0,
    tau: float | None = None,
    center: bool = True,
    normalize: bool = True,
    names: list[str] | None = None,
) -> ChameleonResult:
    """Chameleon domain weights from (k, p) domain embeddings.

    ``lam`` is scaled by k inside :func:`leverage_scores`; ``tau`` defaults to 5 for
    ``stage="pretrain"`` and 0.2 for ``stage="finetune"``.
    """
    if stage not in STAGES:
        raise ValueError(f"stage must be one of {STAGES}, got {stage!r}")
    tau = DEFAULT_TAU[stage] if tau is None else tau
    if not lam > 0:
        raise ValueError(f"lambda must be > 0, got {lam}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    names = names or [f"domain {i}" for i in range(len(domain_embeddings))]
    X = check_embeddings(domain_embeddings, names)
    raw = affinity(X)
    K = center_kernel(raw) if center else raw
    # All-identical embeddings (all-zero after centring) make S == 0: 1/S is undefined and any
    # mixture would be an artefact of rounding, so refuse rather than guess.
    if np.abs(K).max() <= 1e-10 * np.abs(raw).max() or not np.abs(raw).max() > 0:
        raise ValueError(
            "the domain affinity is (numerically) zero: all domain embeddings are identical"
            + (" after centring" if center else "")
            + "; check that the domains hold different text and that the proxy is trained"
        )
    S = leverage_scores(K, lam)
    if normalize:
        S = S / S.sum()
    if stage == "pretrain":
        if np.any(S <= 0):
            zero = [n for n, s in zip(names, S) if s <= 0]
            raise ValueError(
                f"leverage score is 0 for {zero}: its embedding is the mean of all domains, "
                "so 1/S is infinite; disable centring or re-embed with more samples"
            )
        alpha = softmax(1.0 / S, tau)
    else:
        alpha = softmax(S, tau)
    return ChameleonResult(affinity=K, scores=S, weights=alpha, tau=tau)
