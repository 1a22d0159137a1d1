"""KRLS and Chameleon weights against direct computations and known directions."""

import numpy as np
import pytest

from chameleon_mix.krls import (
    affinity,
    center_kernel,
    chameleon_weights,
    leverage_scores,
    softmax,
)

rng = np.random.default_rng(0)


@pytest.mark.parametrize("k,p", [(3, 5), (7, 16), (17, 8), (10, 64)])
def test_scores_equal_eigen_and_primal_forms(k, p):
    X = rng.normal(size=(k, p))
    lam = 0.7
    lam_scaled = k * lam
    S = leverage_scores(affinity(X), lam)
    # Appendix A.1: S_i = sum_j sigma_j / (sigma_j + lambda') U_ij^2
    sigma, U = np.linalg.eigh(X @ X.T)
    eigen = (U**2) @ (sigma / (sigma + lam_scaled))
    # Lemma A.1: the ridge leverage scores in feature space, diag(X (X^T X + lambda' I)^-1 X^T)
    primal = np.diag(X @ np.linalg.solve(X.T @ X + lam_scaled * np.eye(p), X.T))
    np.testing.assert_allclose(S, eigen, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(S, primal, rtol=1e-9, atol=1e-12)
    assert np.all((S > 0) & (S < 1))


def test_centring_equals_kernel_of_centred_embeddings():
    X = rng.normal(size=(6, 9)) + 5.0
    Xc = X - X.mean(axis=0)
    np.testing.assert_allclose(center_kernel(affinity(X)), Xc @ Xc.T, atol=1e-10)


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
        (np.tile(rng.normal(size=4), (5, 1)), {}, "identical"),
        (rng.normal(size=(3, 4)), {"stage": "midtrain"}, "stage must be one of"),
    ],
)
def test_bad_input_is_refused(X, kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        chameleon_weights(X, **kwargs)


def test_the_stage_default_temperature_is_reported():
    X = rng.normal(size=(4, 6))
    assert chameleon_weights(X).tau == 5.0
    assert chameleon_weights(X, stage="finetune").tau == 0.2
    assert chameleon_weights(X, tau=0.7).tau == 0.7
