"""Mixtures under a token budget: the KL projection onto the repetition limits, checked
against a direct convex solve, and the refusals of budgets no mixture can meet."""

import json

import numpy as np
import pytest
from conftest import SLIMPAJAMA_SHARES
from scipy.optimize import minimize

from chameleon_mix.budget import BudgetError, check_budget, constrain, kl_projection
from chameleon_mix.cli import main
from chameleon_mix.config import ConfigError, validate_config
from chameleon_mix.mixtures import make_mixture

# SlimPajama-627B's token shares and the paper's mixtures (Table 9).
SHARES = SLIMPAJAMA_SHARES
TABLE_9 = {
    "doremi": [0.057, 0.002, 0.237, 0.237, 0.130, 0.101, 0.236],
    "doge": [0.041, 0.078, 0.268, 0.283, 0.059, 0.230, 0.041],
    "chameleon": [0.083, 0.164, 0.202, 0.247, 0.082, 0.149, 0.073],
    "regmix": [0.001, 0.025, 0.924, 0.024, 0.019, 0.006, 0.001],
}
CORPUS_TOKENS = {d: share * 627e9 for d, share in SHARES.items()}


def convex_solve(weights: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """min KL(x || w) s.t. 0 <= x <= caps, sum x = 1, by a general solver (SLSQP)."""
    weights = weights / weights.sum()

    def kl(x):
        x = np.maximum(x, 1e-300)
        return float(np.sum(x * np.log(x / weights)))

    def gradient(x):
        return np.log(np.maximum(x, 1e-300) / weights) + 1

    start = np.minimum(weights, caps)
    start /= start.sum()
    result = minimize(
        kl,
        start,
        jac=gradient,
        method="SLSQP",
        bounds=[(0.0, c) for c in caps],
        constraints=[
            {"type": "eq", "fun": lambda x: x.sum() - 1, "jac": lambda x: np.ones_like(x)}
        ],
        options={"ftol": 1e-13, "maxiter": 1000},
    )
    assert result.success, result.message
    return result.x


@pytest.mark.parametrize("method", list(TABLE_9))
def test_three_times_the_corpus_keeps_every_domain_within_4_epochs(method):
    weights = dict(zip(SHARES, TABLE_9[method]))
    weights = {d: w / sum(weights.values()) for d, w in weights.items()}
    tokens = 3 * sum(CORPUS_TOKENS.values())
    mixture = constrain(weights, CORPUS_TOKENS, tokens, 4.0)
    constrained = mixture["weights"]
    assert sum(constrained.values()) == pytest.approx(1.0, abs=1e-12)
    for domain, epochs in mixture["epochs"].items():
        assert epochs <= 4.0 * (1 + 1e-12)
        assert epochs == pytest.approx(constrained[domain] * tokens / CORPUS_TOKENS[domain])
    capped = set(mixture["capped"])
    assert capped  # at 3x the corpus every one of these mixtures repeats something > 4 times
    free = [d for d in SHARES if d not in capped]
    ratios = {constrained[d] / weights[d] for d in free}  # the uncapped keep their ratios
    assert max(ratios) == pytest.approx(min(ratios), rel=1e-12)
    assert min(ratios) >= 1.0
    names = list(SHARES)
    caps = np.array([4.0 * CORPUS_TOKENS[d] / tokens for d in names])
    direct = convex_solve(np.array([weights[d] for d in names]), caps)
    np.testing.assert_allclose([constrained[d] for d in names], direct, atol=1e-6)


def test_the_projection_equals_the_convex_solve_on_random_mixtures():
    rng = np.random.default_rng(0)
    for _ in range(20):
        k = int(rng.integers(2, 12))
        weights = rng.dirichlet(np.full(k, 0.5))
        caps = rng.uniform(0.02, 1.0, k)
        caps *= rng.uniform(1.05, 2.0) / caps.sum()  # feasible, some binding
        projected = kl_projection(weights, caps)
        np.testing.assert_allclose(projected, convex_solve(weights, caps), atol=1e-6)
        assert np.all(projected <= caps * (1 + 1e-12))


def test_an_unconstrained_budget_changes_nothing():
    weights = dict(zip(SHARES, TABLE_9["chameleon"]))
    mixture = constrain(weights, CORPUS_TOKENS, 1e9, 4.0)  # far below the corpus
    assert mixture["weights"] == pytest.approx(weights, abs=1e-15)
    assert mixture["capped"] == []
    assert mixture["unconstrained_weights"] == weights


def test_five_times_the_corpus_is_refused_with_what_would_work():
    total = sum(CORPUS_TOKENS.values())
    with pytest.raises(BudgetError) as error:
        check_budget(5 * total, 4.0, CORPUS_TOKENS, "datasets.slimpajama.budget")
    message = str(error.value)
    assert "datasets.slimpajama.budget" in message
    assert f"{4 * total:,.0f}" in message  # the largest tokens that work
    assert "raise max_epochs to at least 5" in message


def test_domains_a_mixture_leaves_out_cannot_take_the_budgets_tokens():
    with pytest.raises(BudgetError, match="leaves out"):
        kl_projection(np.array([0.5, 0.5, 0.0]), np.array([0.3, 0.3, 1.0]))


def write_inputs(tmp_path, tokens=None):
    stats = tmp_path / "corpus_stats.json"
    tokens = tokens or CORPUS_TOKENS
    stats.write_text(json.dumps({"domains": {d: {"tokens": n} for d, n in tokens.items()}}))
    weights = tmp_path / "table9.json"
    weights.write_text(json.dumps({"weights": dict(zip(SHARES, TABLE_9["chameleon"]))}))
    return stats, weights


def test_cli_reproduces_the_slimpajama_example(tmp_path, capsys):
    """Table 9's Chameleon weights over one pass of SlimPajama: StackExchange 4.5 epochs,
    Book 3.9; under max_epochs 4 StackExchange is capped and the rest keep their ratios."""
    stats, weights = write_inputs(tmp_path)
    out = tmp_path / "budgeted.json"
    assert (
        main(
            [
                "budget",
                str(weights),
                "--corpus-stats",
                str(stats),
                "--tokens",
                "627000000000",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in printed.splitlines()[1:] if line.strip()}
    assert float(rows["stackexchange"][2]) == pytest.approx(4.52, abs=0.01)
    assert float(rows["book"][2]) == pytest.approx(3.90, abs=0.01)
    assert rows["stackexchange"][-1] == "capped"
    mixture = json.loads(out.read_text())
    assert mixture["epochs"]["stackexchange"] == pytest.approx(4.0)
    assert max(mixture["epochs"].values()) <= 4.0 + 1e-9


@pytest.mark.parametrize("tokens", ["-5", "0", "nan", "1.5", "inf"])
def test_cli_refuses_a_budget_that_is_no_count_of_tokens(tmp_path, capsys, tokens):
    stats, weights = write_inputs(tmp_path)
    out = tmp_path / "budgeted.json"
    argv = ["budget", str(weights), "--corpus-stats", str(stats), "--tokens", tokens]
    assert main([*argv, "--out", str(out)]) == 2
    assert "--tokens" in capsys.readouterr().err
    assert not out.exists()


def test_cli_refuses_missing_statistics_and_empty_domains(tmp_path, capsys):
    stats, weights = write_inputs(tmp_path, {**CORPUS_TOKENS, "book": 0})
    argv = ["budget", str(weights), "--tokens", "1000"]
    assert main([*argv, "--corpus-stats", str(stats)]) == 2
    assert "'book' have no tokens" in capsys.readouterr().err
    assert main([*argv, "--corpus-stats", str(tmp_path / "missing.json")]) == 2
    assert "no corpus statistics at" in capsys.readouterr().err


def test_an_infeasible_budget_writes_no_mixture(tmp_path):
    stats, _ = write_inputs(tmp_path)
    out = tmp_path / "mixture.json"
    budget = {"tokens": int(5 * sum(CORPUS_TOKENS.values())), "max_epochs": 4.0}
    with pytest.raises(BudgetError, match="datasets.x.budget"):
        make_mixture(
            "uniform", out, list(SHARES), {"corpus_stats": stats}, {}, budget, "datasets.x.budget"
        )
    assert not out.exists()
    budget["max_epochs"] = 6.0
    mixture = make_mixture("uniform", out, list(SHARES), {"corpus_stats": stats}, {}, budget)
    assert json.loads(out.read_text()) == mixture
    assert mixture["unconstrained_weights"] == pytest.approx({d: 1 / 7 for d in SHARES})
    assert max(mixture["epochs"].values()) <= 6.0 + 1e-9


@pytest.mark.parametrize(
    "budget, complaint",
    [
        ({"tokens": -1}, "budget.tokens"),
        ({"tokens": 0}, "budget.tokens"),
        ({"tokens": 1.5e12}, "budget.tokens"),
        ({"tokens": "1T"}, "budget.tokens"),
        ({"tokens": 10**12, "max_epochs": 0}, "budget.max_epochs"),
        ({"tokens": 10**12, "max_epochs": float("nan")}, "budget.max_epochs"),
        ({"tokens": 10**12, "epochs": 4}, "budget"),
    ],
)
def test_config_refuses_budgets_that_are_no_budget(budget, complaint):
    from conftest import load_test_config

    config = load_test_config("config-small")
    dataset = next(iter(config["datasets"]))
    config["datasets"][dataset]["budget"] = budget
    with pytest.raises(ConfigError, match=f"datasets.{dataset}.{complaint}"):
        validate_config(config)
