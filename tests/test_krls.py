"""KRLS and Chameleon weights against direct computations and known directions."""

import tracemalloc

import numpy as np
import pytest
from scipy import optimize

from chameleon_mix.krls import (
    AFFINITY_MAX_DOMAINS,
    DEFAULT_TAU,
    DEFAULT_TAU_SCALED,
    PAPER_DOMAINS,
    affinity,
    center_kernel,
    chameleon_weights,
    choose_solver,
    kernel_leverage_scores,
    leverage_scores,
    softmax,
    stage_weights,
)

rng = np.random.default_rng(0)


def normalized_entropy(weights):
    nonzero = weights[weights > 0]
    return float(-(nonzero * np.log(nonzero)).sum() / np.log(len(weights)))


@pytest.mark.parametrize("k,p", [(3, 5), (7, 16), (17, 8), (10, 64)])
def test_scores_equal_eigen_and_primal_forms(k, p):
    X = rng.normal(size=(k, p))
    lam = 0.7
    lam_scaled = k * lam
    S = kernel_leverage_scores(affinity(X), lam)
    # Appendix A.1: S_i = sum_j sigma_j / (sigma_j + lambda') U_ij^2
    sigma, U = np.linalg.eigh(X @ X.T)
    eigen = (U**2) @ (sigma / (sigma + lam_scaled))
    # Lemma A.1: the ridge leverage scores in feature space, diag(X (X^T X + lambda' I)^-1 X^T)
    primal = np.diag(X @ np.linalg.solve(X.T @ X + lam_scaled * np.eye(p), X.T))
    np.testing.assert_allclose(S, eigen, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(S, primal, rtol=1e-9, atol=1e-12)
    assert np.all((S > 0) & (S < 1))


@pytest.mark.parametrize("k,p", [(30, 120), (120, 30), (48, 48)])
@pytest.mark.parametrize("center", [True, False])
def test_dual_and_primal_solvers_give_the_same_weights(k, p, center):
    X = rng.normal(size=(k, p)) * np.linspace(3, 0.1, p) + 2.0
    for stage in ("pretrain", "finetune"):
        dual = chameleon_weights(X, stage=stage, center=center, lam=0.5, solver="dual")
        primal = chameleon_weights(X, stage=stage, center=center, lam=0.5, solver="primal")
        assert (dual.solver, primal.solver) == ("dual", "primal")
        np.testing.assert_allclose(primal.scores, dual.scores, rtol=1e-10)
        np.testing.assert_allclose(primal.weights, dual.weights, rtol=1e-10)
    Xc = X - X.mean(axis=0) if center else X
    raw = leverage_scores(Xc, 0.5, solver="primal")
    np.testing.assert_allclose(raw, leverage_scores(Xc, 0.5, solver="dual"), rtol=1e-10)
    np.testing.assert_allclose(raw, kernel_leverage_scores(affinity(Xc), 0.5), rtol=1e-10)
    # The affinity is kept (k <= AFFINITY_MAX_DOMAINS) and is the same for both solvers.
    np.testing.assert_allclose(primal.affinity, dual.affinity, rtol=1e-12, atol=1e-9)
    auto = chameleon_weights(X, center=center, lam=0.5)
    assert auto.solver == choose_solver(k, p) == ("dual" if k <= p else "primal")


def test_centring_equals_kernel_of_centred_embeddings():
    X = rng.normal(size=(6, 9)) + 5.0
    Xc = X - X.mean(axis=0)
    np.testing.assert_allclose(center_kernel(affinity(X)), Xc @ Xc.T, atol=1e-10)
    np.testing.assert_allclose(chameleon_weights(X).affinity, Xc @ Xc.T, atol=1e-10)


def test_many_domains_build_no_k_by_k_matrix():
    k, p = 3000, 16
    X = rng.normal(size=(k, p))
    tracemalloc.start()
    result = chameleon_weights(X, temperature="scaled")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert k > AFFINITY_MAX_DOMAINS and result.affinity is None and result.solver == "primal"
    assert peak < 0.1 * k * k * 8, peak  # one (k, k) float64 matrix is 72 MB; a few (k, p) are 1 MB


def test_orthogonal_domain_scores_highest_and_gets_least_pretraining_weight():
    # Four domains share a direction; the fifth is orthogonal to all of them.
    shared = np.zeros((5, 8))
    shared[:4, 0] = [1.0, 1.1, 0.9, 1.05]
    shared[:4, 1] = [0.1, -0.1, 0.05, 0.0]
    shared[4, 5] = 1.0
    result = chameleon_weights(shared, center=False, lam=0.01)
    assert np.argmax(result.scores) == 4
    assert np.argmin(result.weights) == 4
    finetune = chameleon_weights(shared, stage="finetune", center=False, lam=0.01)
    assert np.argmax(finetune.weights) == 4


def test_duplicated_domain_scores_lower_than_unique():
    X = rng.normal(size=(4, 12))
    with_copy = np.vstack([X, X[0]])  # domain 0 and 4 are identical
    S = chameleon_weights(with_copy, lam=0.01).scores
    assert S[0] == pytest.approx(S[4])
    assert S[0] < S[1:4].min()


def test_weights_sum_to_one_and_permutation_equivariant():
    X = rng.normal(size=(7, 20))
    perm = rng.permutation(7)
    for stage in ("pretrain", "finetune"):
        base = chameleon_weights(X, stage=stage)
        permuted = chameleon_weights(X[perm], stage=stage)
        assert base.weights.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(permuted.weights, base.weights[perm], rtol=1e-10)
        np.testing.assert_allclose(permuted.scores, base.scores[perm], rtol=1e-10)


def test_weights_follow_the_formula():
    X = rng.normal(size=(5, 10))
    lam, tau = 3.0, 4.0
    K = center_kernel(X @ X.T)
    hat = K @ np.linalg.inv(K + 5 * lam * np.eye(5))  # the explicit form, only in the test
    S = np.diag(hat) / np.diag(hat).sum()
    expected = np.exp((1 / S) / tau) / np.exp((1 / S) / tau).sum()
    result = chameleon_weights(X, lam=lam, tau=tau)
    np.testing.assert_allclose(result.scores, S, rtol=1e-9)
    np.testing.assert_allclose(result.weights, expected, rtol=1e-9)
    raw = chameleon_weights(X, lam=lam, tau=tau, normalize=False, center=False)
    np.testing.assert_allclose(
        raw.scores, np.diag(X @ X.T @ np.linalg.inv(X @ X.T + 15 * np.eye(5)))
    )
    # The scaled temperature is the same formula on S / mean(S).
    scaled = chameleon_weights(X, lam=lam, tau=tau, temperature="scaled")
    relative = S / S.mean()
    np.testing.assert_allclose(scaled.weights, softmax(1 / relative, tau), rtol=1e-9)
    finetune = chameleon_weights(X, lam=lam, tau=tau, temperature="scaled", stage="finetune")
    np.testing.assert_allclose(finetune.weights, softmax(relative, tau), rtol=1e-9)


def test_stage_weights_is_the_formula_of_chameleon_weights():
    """The paper's control (Appendix B.8) applies the other stage's formula to the same scores
    through stage_weights, which chameleon_weights uses too."""
    X = rng.normal(size=(6, 10))
    for temperature in ("paper", "scaled"):
        for stage in ("pretrain", "finetune"):
            result = chameleon_weights(X, stage=stage, temperature=temperature)
            again = stage_weights(result.scores, stage, None, temperature)
            np.testing.assert_array_equal(again, result.weights)
    finetune = chameleon_weights(X, stage="finetune")
    control = stage_weights(finetune.scores, "pretrain", None, "paper")
    np.testing.assert_allclose(control, softmax(1 / finetune.scores, 5.0), rtol=1e-12)


def test_softmax_is_stable_for_large_inputs():
    out = softmax(np.array([1000.0, 1001.0]), tau=1.0)
    np.testing.assert_allclose(out, [1 / (1 + np.e), np.e / (1 + np.e)])


@pytest.mark.parametrize(
    "X, kwargs, message",
    [
        (np.ones((1, 4)), {}, "at least 2 domains"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), {"names": ["web", "code"]}, "NaN or Inf for: web"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), {}, "NaN or Inf"),
        (np.ones(4), {}, "(k, p) matrix"),
        (rng.normal(size=(3, 4)), {"lam": 0}, "lambda must be > 0"),
        (rng.normal(size=(3, 4)), {"lam": -1}, "lambda must be > 0"),
        (rng.normal(size=(3, 4)), {"tau": 0}, "tau must be > 0"),
        (np.tile(rng.normal(size=4), (5, 1)), {}, "identical after centring"),
        (np.tile(rng.normal(size=4), (50, 1)), {"solver": "primal"}, "identical after centring"),
        (np.zeros((50, 4)), {"center": False}, "identical"),
        (rng.normal(size=(3, 4)), {"stage": "midtrain"}, "stage must be one of"),
        (rng.normal(size=(3, 4)), {"temperature": "hot"}, "temperature must be one of"),
        (rng.normal(size=(3, 4)), {"solver": "qr"}, "solver must be one of"),
    ],
)
def test_bad_input_is_refused(X, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        chameleon_weights(X, **kwargs)


@pytest.mark.parametrize("solver", ["dual", "primal"])
def test_a_domain_at_the_centroid_is_named_not_given_all_the_weight(solver):
    """Its centred embedding is 0, so S is 0 up to rounding (~1e-17, not exactly 0)."""
    others = rng.normal(size=(6, 5)) * 3
    X = np.vstack([others, others.mean(axis=0)])
    names = ["arxiv", "book", "cc", "c4", "github", "stackexchange", "centre"]
    with pytest.raises(ValueError, match=r"leverage score is 0 .* for centre: its embedding is"):
        chameleon_weights(X, names=names, solver=solver)
    with pytest.raises(ValueError, match="for centre"):
        chameleon_weights(X, names=names, solver=solver, temperature="scaled")
    # Finetuning's formula has no 1/S: the domain just gets the least weight.
    finetune = chameleon_weights(X, names=names, stage="finetune", solver=solver)
    assert np.argmin(finetune.weights) == 6
    # The paper's control on those scores meets the same guard.
    with pytest.raises(ValueError, match="for centre"):
        stage_weights(finetune.scores, "pretrain", None, "paper", names)


def test_the_stage_default_temperature_is_reported():
    X = rng.normal(size=(4, 6))
    assert chameleon_weights(X).tau == 5.0
    assert chameleon_weights(X, stage="finetune").tau == 0.2
    assert chameleon_weights(X, tau=0.7).tau == 0.7
    assert chameleon_weights(X, temperature="scaled").tau == pytest.approx(5 / 7)
    assert chameleon_weights(X, stage="finetune", temperature="scaled").tau == pytest.approx(1.4)
    assert chameleon_weights(X).temperature == "paper"


def clustered_embeddings(k, p=64, seed=0):
    """Cluster centroids of an anisotropic cloud, as embeddings of fine-grained domains:
    a shared offset (removed by centring) and a power-law spectrum, standard deviation
    3 j^-0.75 along axis j; their relative scores vary about as much as SlimPajama's."""
    generator = np.random.default_rng([seed, k])
    return 5.0 + generator.normal(size=(k, p)) * 3.0 * np.arange(1, p + 1) ** -0.75


def test_scaled_temperature_keeps_the_entropy_in_a_band_as_k_grows():
    ks = (10, 100, 1000, 10000)
    paper, scaled, spread_paper, spread_scaled = [], [], [], []
    for k in ks:
        S = chameleon_weights(clustered_embeddings(k)).scores
        paper.append(normalized_entropy(stage_weights(S, "pretrain", None, "paper")))
        scaled.append(normalized_entropy(stage_weights(S, "pretrain", None, "scaled")))
        # Finetuning drifts the other way, to uniform: the log-weights' spread shrinks like 1/k.
        spread_paper.append(np.log(stage_weights(S, "finetune", None, "paper")).std())
        spread_scaled.append(np.log(stage_weights(S, "finetune", None, "scaled")).std())
    assert all(0.65 < h < 0.97 for h in scaled), scaled
    assert paper[0] > 0.5 and max(paper[2:]) < 0.05, paper  # the paper's form turns one-hot
    assert all(0.2 < s < 0.6 for s in spread_scaled), spread_scaled
    assert spread_paper[0] > 0.15 and spread_paper[-1] < 1e-3, spread_paper


def slimpajama_scores():
    """Normalised scores S that give the paper's Table 9 Chameleon weights by softmax((1/S)/5):
    1/S_i = 5 log(alpha_i) + c, with c such that S sums to 1."""
    table9 = np.array([0.083, 0.164, 0.202, 0.247, 0.082, 0.149, 0.073])
    logits = 5.0 * np.log(table9)
    c = optimize.brentq(lambda c: (1 / (logits + c)).sum() - 1, -logits.min() + 1e-6, 100)
    return table9, 1 / (logits + c)


def test_scaled_temperature_gives_the_papers_weights_for_seven_slimpajama_domains():
    table9, S = slimpajama_scores()
    # Embeddings with those scores: orthogonal domains of lengths r_i, uncentred, have
    # S_i = r_i^2 / (r_i^2 + k lam); choose raw scores half of S / max(S).
    k, lam = len(S), 10.0
    raw = 0.5 * S / S.max()
    X = np.diag(np.sqrt(k * lam * raw / (1 - raw)))
    paper = chameleon_weights(X, center=False, lam=lam)
    np.testing.assert_allclose(paper.scores, S, rtol=1e-10)
    np.testing.assert_allclose(paper.weights, table9, atol=5e-4)
    assert k == PAPER_DOMAINS
    for normalize in (True, False):  # S / mean(S) does not depend on normalising S
        scaled = chameleon_weights(
            X, center=False, lam=lam, normalize=normalize, temperature="scaled"
        )
        np.testing.assert_allclose(scaled.weights, paper.weights, rtol=1e-10)
    # Finetuning: the paper's 0.2 on S is the scaled form's 0.2 * 7 on S / mean(S).
    np.testing.assert_allclose(
        stage_weights(S, "finetune", None, "scaled"), softmax(S, 0.2), rtol=1e-12
    )
    for stage, factor in (("pretrain", 1 / 7), ("finetune", 7)):
        assert DEFAULT_TAU_SCALED[stage] == pytest.approx(DEFAULT_TAU[stage] * factor)
