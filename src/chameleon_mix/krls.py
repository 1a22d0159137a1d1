"""Kernel ridge leverage scores (KRLS) over domain embeddings, and the Chameleon weights.

Plain functions on NumPy arrays. Shapes: ``k`` domains, ``p`` embedding dimensions.

    X      (k, p)  domain embeddings, one row per domain (centred, with ``center``)
    Omega  (k, k)  affinity, Omega = X X^T
    S      (k,)    leverage scores, S = diag(Omega (Omega + k*lam*I)^-1)
    alpha  (k,)    domain weights on the simplex

Pretraining (and new data) favours domains that the others explain well:
``alpha = softmax((1/S) / tau)``; finetuning favours distinct domains: ``alpha = softmax(S / tau)``.

Two exact forms of S
--------------------
By the push-through identity ``X X^T (X X^T + k lam I)^-1 = X (X^T X + k lam I)^-1 X^T``, so

    dual    S = diag(Omega (Omega + k lam I)^-1)     a (k, k) Cholesky solve, O(k^2 p + k^3)
    primal  S_i = x_i^T (X^T X + k lam I)^-1 x_i     a (p, p) Cholesky solve, O(k p^2 + p^3)

:func:`leverage_scores` takes the dual form while ``k <= p`` and the primal beyond, where it
never builds a (k, k) matrix: memory O(k p). Centring the kernel (:func:`center_kernel`) equals
the kernel of the centred embeddings, so both forms centre X.

A temperature that does not depend on k (``temperature="scaled"``)
------------------------------------------------------------------
The primal form shows how S depends on k: with the embeddings' covariance
``C = X^T X / k``, ``k S_i = x_i^T (C + lam I)^-1 x_i``, a regularised Mahalanobis norm whose
distribution over domains converges as k grows (its inverse is the regularised Christoffel
function that the paper relates 1/S to: a density, which does not scale with k). With S
normalised to sum 1, the paper's pretraining logits ``1/S = k / (k S)`` therefore grow like k,
and a fixed ``tau = 5`` turns the mixture one-hot as k grows (benchmarks/krls_scaling.py: on
cluster-like embeddings the normalised entropy falls from 0.93 at k = 10 to 0.00 from k = 300
on); finetuning's logits ``S`` shrink like 1/k and its mixture turns uniform.

``"scaled"`` applies the paper's formulas to the relative scores ``s = S / mean(S)`` instead:
``softmax((1/s) / tau)`` and ``softmax(s / tau)``. ``s = k S / sum(S)`` has mean 1 for every
k, does not depend on whether S was normalised, and its distribution over domains converges
with that of ``k S``; so the spread of the logits, and the mixture's normalised entropy
``H(alpha) / log k``, stay in a band as k grows (0.91-0.97 there, k = 10 ... 10,000). The
paper tuned tau on 7 domains (SlimPajama, Wiki40b, Stack), where normalised scores are
``S = s / 7``; the scaled default temperatures are the paper's divided (pretraining, ``5 / 7``)
or multiplied (finetuning, ``0.2 * 7``) by 7, so for 7 domains with normalised S the two forms
give the same weights.

Scaling S by its mean, not standardising the logits by their standard deviation, keeps the
paper's behaviour that domains the embeddings can hardly tell apart get nearly equal weights
(isotropic Gaussian embeddings, which differ only by noise, get entropy 1.000 at every k):
standardising would stretch pure sampling noise to a fixed spread of log-weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg

STAGES = ("pretrain", "finetune")
TEMPERATURES = ("paper", "scaled")
SOLVERS = ("auto", "dual", "primal")

# Library defaults; the config schema's defaults are the same values (tests tie them).
DEFAULT_LAM = 10.0
DEFAULT_TAU = {"pretrain": 5.0, "finetune": 0.2}  # the paper's (App. B.2: [5, 10], [0.2, 0.5])
DEFAULT_TEMPERATURE = "paper"
DEFAULT_CENTER = True
DEFAULT_NORMALIZE = True
# The number of domains the paper's temperatures were tuned on; "scaled" agrees with the paper
# there (see the module docstring).
PAPER_DOMAINS = 7
DEFAULT_TAU_SCALED = {
    "pretrain": DEFAULT_TAU["pretrain"] / PAPER_DOMAINS,
    "finetune": DEFAULT_TAU["finetune"] * PAPER_DOMAINS,
}

# Above this many domains the (k, k) affinity is neither kept nor written (10,000 domains would
# take 800 MB in memory and several GB as JSON); S never needs it.
AFFINITY_MAX_DOMAINS = 2000
# A score below this fraction of the largest is zero up to rounding: the solves are backward
# stable, so errors are ~ machine epsilon times the condition number of the ridge system, and a
# domain exactly at the centroid scores 1e-33 to 1e-17 instead of 0 (by the order of rounding).
ZERO_SCORE_RTOL = 1e-8
# Embeddings whose centred norm is below this fraction of their norm are identical up to the
# rounding of float32 embeddings.
IDENTICAL_RTOL = 1e-5


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


def kernel_leverage_scores(kernel: np.ndarray, lam: float) -> np.ndarray:
    """KRLS ``diag(K (K + k*lam*I)^-1)`` of a symmetric PSD (k, k) kernel; returns shape (k,).

    ``K`` and ``(K + k*lam*I)^-1`` commute, so the hat matrix is the Cholesky solve
    ``(K + k*lam*I) H = K``; no inverse is formed. Each score lies in [0, 1).
    """
    K = np.asarray(kernel, dtype=np.float64)
    k = K.shape[0]
    ridge = K + k * lam * np.eye(k)
    hat = linalg.cho_solve(linalg.cho_factor(ridge, lower=True), K)
    return np.diag(hat).copy()


def primal_leverage_scores(domain_embeddings: np.ndarray, lam: float) -> np.ndarray:
    """KRLS of the linear kernel in feature space, ``x_i^T (X^T X + k*lam*I)^-1 x_i``.

    With the Cholesky factor ``X^T X + k*lam*I = L L^T``, ``S_i = |L^-1 x_i|^2``: one (p, p)
    factorisation and one triangular solve, sums of squares without cancellation.
    """
    X = np.asarray(domain_embeddings, dtype=np.float64)
    k, p = X.shape
    gram = X.T @ X
    gram[np.diag_indices(p)] += k * lam
    lower = linalg.cholesky(gram, lower=True)
    whitened = linalg.solve_triangular(lower, X.T, lower=True)  # (p, k)
    return np.einsum("ij,ij->j", whitened, whitened)


def choose_solver(k: int, p: int) -> str:
    """The cheaper exact form: the dual's (k, k) system while ``k <= p``, else the primal's."""
    return "dual" if k <= p else "primal"


def leverage_scores(domain_embeddings: np.ndarray, lam: float, solver: str = "auto") -> np.ndarray:
    """KRLS of the linear kernel of (k, p) embeddings (centre them first to centre the kernel),
    by the dual or the primal form (:func:`choose_solver` for ``"auto"``); both are exact."""
    X = np.asarray(domain_embeddings, dtype=np.float64)
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    if solver == "auto":
        solver = choose_solver(*X.shape)
    if solver == "dual":
        return kernel_leverage_scores(affinity(X), lam)
    return primal_leverage_scores(X, lam)


def softmax(z: np.ndarray, tau: float) -> np.ndarray:
    """Softmax of ``z / tau`` along the only axis, shifted by the max for stability."""
    logits = np.asarray(z, dtype=np.float64) / tau
    e = np.exp(logits - logits.max())
    return e / e.sum()


def default_tau(stage: str, temperature: str) -> float:
    """The temperature ``tau`` a stage uses when none is given."""
    check_choice("stage", stage, STAGES)
    check_choice("temperature", temperature, TEMPERATURES)
    return (DEFAULT_TAU if temperature == "paper" else DEFAULT_TAU_SCALED)[stage]


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {choices}, got {value!r}")


def stage_weights(
    scores: np.ndarray,
    stage: str,
    tau: float | None,
    temperature: str,
    names: list[str] | None = None,
) -> np.ndarray:
    """The domain weights of a stage from leverage scores S (normalised or not).

    ``pretrain``: ``softmax(z / tau)`` with ``z = 1/S``; ``finetune``: ``z = S``. With
    ``temperature="scaled"``, S is first divided by its mean (see the module docstring).
    ``tau=None`` is :func:`default_tau`. Pretraining refuses scores that are zero up to rounding
    (below ``ZERO_SCORE_RTOL`` of the largest), naming the domains. The weights stage and the
    paper's control of the other stage's formula on the same scores both call this.
    """
    check_choice("stage", stage, STAGES)
    check_choice("temperature", temperature, TEMPERATURES)
    tau = default_tau(stage, temperature) if tau is None else tau
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    scores = np.asarray(scores, dtype=np.float64)
    names = names or [f"domain {i}" for i in range(len(scores))]
    if not (
        scores.ndim == 1 and len(scores) >= 2 and np.all(np.isfinite(scores)) and scores.max() > 0
    ):
        raise ValueError(
            f"leverage scores must be a finite vector of k >= 2 with a positive score, got {scores}"
        )
    if stage == "pretrain":
        rounding = ZERO_SCORE_RTOL * scores.max()
        zero = [names[i] for i in np.flatnonzero(scores <= rounding)]
        if zero:
            raise ValueError(
                f"leverage score is 0 (below {ZERO_SCORE_RTOL:g} of the largest, up to rounding) "
                f"for {', '.join(zero)}: its embedding is (numerically) the mean of the domains' "
                "embeddings, so 1/S is infinite and the pretraining mixture would put all weight "
                "on it; disable centring or re-embed with more samples"
            )
    if temperature == "scaled":
        scores = scores / scores.mean()
    return softmax(1.0 / scores if stage == "pretrain" else scores, tau)


@dataclass(frozen=True)
class ChameleonResult:
    """Everything the weights stage reports, in domain order."""

    affinity: np.ndarray | None  # (k, k) after optional centring; None above AFFINITY_MAX_DOMAINS
    scores: np.ndarray  # (k,) S, normalised to sum 1 when asked
    weights: np.ndarray  # (k,) alpha
    tau: float  # the temperature used (the stage's default when none was given)
    temperature: str  # "paper" or "scaled"
    solver: str  # the form of S used: "dual" or "primal"


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
    bad = [names[i] for i in np.flatnonzero(~np.isfinite(X).all(axis=1))]
    if bad:
        raise ValueError(
            f"domain embeddings contain NaN or Inf for: {', '.join(bad)}; re-embed them"
        )
    return X


def chameleon_weights(
    domain_embeddings: np.ndarray,
    stage: str = "pretrain",
    lam: float = DEFAULT_LAM,
    tau: float | None = None,
    center: bool = DEFAULT_CENTER,
    normalize: bool = DEFAULT_NORMALIZE,
    names: list[str] | None = None,
    temperature: str = DEFAULT_TEMPERATURE,
    solver: str = "auto",
) -> ChameleonResult:
    """Chameleon domain weights from (k, p) domain embeddings.

    ``lam`` is scaled by k inside the leverage scores; ``tau=None`` is the stage's default
    (:func:`default_tau`: 5 for ``"pretrain"``, 0.2 for ``"finetune"`` with the paper's
    temperature). ``solver`` picks the form of S (:func:`leverage_scores`); the result is the
    same up to rounding.
    """
    check_choice("stage", stage, STAGES)
    check_choice("temperature", temperature, TEMPERATURES)
    check_choice("solver", solver, SOLVERS)
    tau = default_tau(stage, temperature) if tau is None else tau
    if not lam > 0:
        raise ValueError(f"lambda must be > 0, got {lam}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    names = names or [f"domain {i}" for i in range(len(domain_embeddings))]
    X = check_embeddings(domain_embeddings, names)
    norm = np.linalg.norm(X)
    if center:
        X = X - X.mean(axis=0)
    # All-identical embeddings (all-zero after centring) make S == 0: 1/S is undefined and any
    # mixture would be an artefact of rounding, so refuse rather than guess.
    if not np.linalg.norm(X) > IDENTICAL_RTOL * norm or not norm > 0:
        raise ValueError(
            "the domain affinity is (numerically) zero: all domain embeddings are identical"
            + (" after centring" if center else "")
            + "; check that the domains hold different text and that the proxy is trained"
        )
    k, p = X.shape
    solver = choose_solver(k, p) if solver == "auto" else solver
    kernel = affinity(X) if solver == "dual" or k <= AFFINITY_MAX_DOMAINS else None
    S = kernel_leverage_scores(kernel, lam) if solver == "dual" else primal_leverage_scores(X, lam)
    if normalize:
        S = S / S.sum()
    alpha = stage_weights(S, stage, tau, temperature, names)
    return ChameleonResult(
        affinity=kernel if k <= AFFINITY_MAX_DOMAINS else None,
        scores=S,
        weights=alpha,
        tau=tau,
        temperature=temperature,
        solver=solver,
    )
