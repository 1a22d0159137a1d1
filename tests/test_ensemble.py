"""Weights from several proxies' embeddings and their bootstrap intervals, checked against
direct computations."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from chameleon_mix.ensemble import bootstrap_weights, ensemble_weights, intervals
from chameleon_mix.krls import chameleon_weights, softmax

SETTINGS = {"stage": "pretrain", "lam": 10.0, "tau": 5.0, "center": True, "normalize": True}


def embeddings(seed: int, k: int = 5, p: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(k, p))


def test_one_replicate_is_the_plain_weights():
    X = embeddings(0)
    weights, scores = ensemble_weights([X], SETTINGS)
    plain = chameleon_weights(X, **SETTINGS)
    np.testing.assert_allclose(weights, plain.weights, rtol=1e-12)
    np.testing.assert_allclose(scores, plain.scores, rtol=1e-12)


def test_replicates_average_their_normalised_scores():
    Xs = [embeddings(0), embeddings(1), embeddings(2)]
    # Direct: S_r = diag(K_r (K_r + k lam I)^-1) of each centred kernel, normalised, averaged.
    k = 5
    mean = np.zeros(k)
    for X in Xs:
        centred = X - X.mean(axis=0)
        K = centred @ centred.T
        S = np.diag(K @ np.linalg.inv(K + k * 10.0 * np.eye(k)))
        mean += S / S.sum() / len(Xs)
    weights, scores = ensemble_weights(Xs, SETTINGS)
    np.testing.assert_allclose(scores, mean, rtol=1e-10)
    np.testing.assert_allclose(weights, softmax(1 / mean, 5.0), rtol=1e-10)


def test_a_replicate_in_another_basis_gives_the_same_weights():
    # Proxies of other seeds share no basis: a rotated copy of a replicate's embeddings must
    # weigh exactly as the replicate, which averaging embeddings would not.
    X = embeddings(0)
    rotated = X @ ortho_group.rvs(X.shape[1], random_state=1)
    np.testing.assert_allclose(
        ensemble_weights([X, rotated], SETTINGS)[0], ensemble_weights([X], SETTINGS)[0], rtol=1e-9
    )
    averaged = chameleon_weights((X + rotated) / 2, **SETTINGS).weights
    assert np.abs(averaged - ensemble_weights([X], SETTINGS)[0]).max() > 0.01


def domain_samples(seed: int, k: int = 5, n: int = 64, p: int = 8, noise: float = 1.0):
    """k domains' (n, p) samples around seeded centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, p)) * 3
    return [c + noise * rng.normal(size=(n, p)) for c in centres]


def test_bootstrap_is_seeded_and_redraws_the_samples():
    samples = domain_samples(0)
    draws = bootstrap_weights([samples], SETTINGS, draws=50, seed=3)
    assert draws.shape == (50, 5)
    np.testing.assert_allclose(draws.sum(axis=1), 1.0)
    np.testing.assert_array_equal(draws, bootstrap_weights([samples], SETTINGS, 50, seed=3))
    assert not np.array_equal(draws, bootstrap_weights([samples], SETTINGS, 50, seed=4))
    # A direct draw: the first draw's domain means are the samples at counts of seed
    # (3, block 0, replicate 0, domain i), as the docstring says.
    means = []
    for i, rows in enumerate(samples):
        counts = np.random.default_rng([3, 0, 0, i]).multinomial(64, np.full(64, 1 / 64), 1)
        means.append(counts[0] @ rows / 64)
    np.testing.assert_allclose(draws[0], chameleon_weights(np.stack(means), **SETTINGS).weights)
    # Samples that are all alike leave nothing to redraw: every draw is the plain mixture.
    alike = [np.repeat(rows[:1], 64, axis=0) for rows in samples]
    plain = chameleon_weights(np.stack([rows[0] for rows in alike]), **SETTINGS).weights
    np.testing.assert_allclose(bootstrap_weights([alike], SETTINGS, 20), np.tile(plain, (20, 1)))


def test_intervals_narrow_with_more_samples_and_cover_the_weights():
    few = domain_samples(0, n=16)
    many = domain_samples(0, n=1024)
    width = {}
    for name, samples in (("few", few), ("many", many)):
        bounds = intervals(bootstrap_weights([samples], SETTINGS, draws=200))
        width[name] = (bounds[:, 1] - bounds[:, 0]).max()
        X = np.stack([rows.mean(axis=0) for rows in samples])
        weights = chameleon_weights(X, **SETTINGS).weights
        assert np.all((bounds[:, 0] <= weights + 0.02) & (weights - 0.02 <= bounds[:, 1]))
    # The sampling noise of a mean shrinks as 1 / sqrt(n): 64x the samples, ~1/8 the width.
    assert width["many"] < width["few"] / 4


def test_the_bootstrap_redraws_replicates_too():
    # Two replicates that disagree: the nested bootstrap's intervals span both mixtures,
    # while each replicate's samples alone (identical rows) would give zero width.
    a = [np.repeat(c[None], 8, axis=0) for c in embeddings(0)]
    b = [np.repeat(c[None], 8, axis=0) for c in embeddings(5)]
    bounds = intervals(bootstrap_weights([a, b], SETTINGS, draws=200))
    alone = [chameleon_weights(np.stack([s[0] for s in x]), **SETTINGS).weights for x in (a, b)]
    low, high = np.minimum(*alone), np.maximum(*alone)
    np.testing.assert_allclose(bounds[:, 0], low, atol=1e-12)
    np.testing.assert_allclose(bounds[:, 1], high, atol=1e-12)


def test_the_memory_bound_blocks_the_draws():
    samples = domain_samples(1)
    blocked = bootstrap_weights([samples], SETTINGS, draws=30, memory=5 * 8 * 8 * 7)  # 7 a block
    assert blocked.shape == (30, 5)
    # The blocks draw with their own seeds; their intervals agree with one block's.
    whole = bootstrap_weights([samples], SETTINGS, draws=30)
    assert np.abs(intervals(blocked) - intervals(whole)).max() < 0.2


def test_intervals_are_the_equal_tailed_quantiles():
    draws = np.arange(101, dtype=float)[:, None] * np.array([[1.0, 2.0]])
    np.testing.assert_allclose(intervals(draws, level=0.9), [[5.0, 95.0], [10.0, 190.0]])
    with pytest.raises(ValueError, match="level must lie in"):
        intervals(draws, level=1.5)
