"""Weights toward a target: the ridge coefficients and the affinity baseline against direct
computations, the mixture file, and the refusals."""

import copy
import json

import numpy as np
import pytest
from conftest import load_test_config

from chameleon_mix.config import ConfigError, validate_config
from chameleon_mix.krls import softmax
from chameleon_mix.plan import Plan, PlanError
from chameleon_mix.settings import resolve
from chameleon_mix.target import (
    target_coefficients,
    target_mixture,
    target_similarities,
    target_weights,
)


def embeddings(seed=0, k=5, p=16):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(k, p)) + 3.0, rng.normal(size=p) + 3.0


def test_coefficients_are_the_ridge_regression_of_the_target_on_the_domains():
    X, x = embeddings()
    lam = 0.7
    mean = X.mean(axis=0)
    Xc, xc = X - mean, x - mean
    k = len(X)
    direct = np.linalg.inv(Xc @ Xc.T + k * lam * np.eye(k)) @ Xc @ xc
    np.testing.assert_allclose(target_coefficients(X, x, lam), direct, rtol=1e-10)
    # Xc^T beta is the ridge reconstruction of the target in feature space (push-through)
    reconstruction = np.linalg.solve(Xc.T @ Xc + k * lam * np.eye(X.shape[1]), Xc.T @ Xc @ xc)
    np.testing.assert_allclose(Xc.T @ target_coefficients(X, x, lam), reconstruction, rtol=1e-8)


def test_a_target_made_of_one_domain_weights_that_domain_most():
    X, _ = embeddings(1)
    target = X[2] + 0.01 * np.random.default_rng(2).normal(size=X.shape[1])
    for form in ("regression", "affinity"):
        weights, scores = target_weights([(X, target)], form, lam=0.01, tau=0.2)
        assert np.argmax(weights) == 2 and np.argmax(scores) == 2
        assert scores.max() == pytest.approx(1.0)


def test_affinity_is_the_cosine_of_the_centred_embeddings():
    X, x = embeddings(3)
    mean = X.mean(axis=0)
    direct = [
        np.dot(X[i] - mean, x - mean) / np.linalg.norm(X[i] - mean) / np.linalg.norm(x - mean)
        for i in range(len(X))
    ]
    np.testing.assert_allclose(target_similarities(X, x), direct, rtol=1e-12)


def test_replicates_average_their_normalised_scores_before_the_softmax():
    (X1, x1), (X2, x2) = embeddings(4), embeddings(5)
    weights, scores = target_weights([(X1, x1), (X2, 10 * x2)], "affinity", 1.0, 0.5)
    one = target_similarities(X1, x1)
    two = target_similarities(X2, 10 * x2)
    expected = (one / np.abs(one).max() + two / np.abs(two).max()) / 2
    np.testing.assert_allclose(scores, expected)
    np.testing.assert_allclose(weights, softmax(expected, 0.5))


def test_a_target_at_the_domains_mean_is_refused():
    X, _ = embeddings(6)
    with pytest.raises(ValueError, match="sits at the domains' mean"):
        target_weights([(X, X.mean(axis=0))], "regression", 1.0, 0.2)


def write_embeddings(root, X, x, names):
    files = []
    for name, vector in zip(names, X):
        np.save(root / f"{name}.npy", vector.astype(np.float32))
        files.append(root / f"{name}.npy")
    np.save(root / "task.npy", np.asarray(x, dtype=np.float32))
    info = {
        "architecture": {"n_layer": 2, "n_head": 2, "n_embd": 16, "n_inner": 64, "vocab_size": 100},
        "layer": 1,
        "tokens": 1000,
        "seq_len": 32,
    }
    (root / "task.json").write_text(json.dumps(info))
    return files, [root / "task.npy"]


def test_the_mixture_file_and_a_target_identical_to_a_domain(tmp_path, capsys):
    X, _ = embeddings(7)
    names = [f"d{i}" for i in range(len(X))]
    files, target = write_embeddings(tmp_path, X, X[1], names)
    settings = {"lam": 10.0, "target_tau": 0.2}
    out = tmp_path / "chameleon_target.json"
    mixture = target_mixture(out, names, files, target, settings, "chameleon_target", "regression")
    assert json.loads(out.read_text()) == mixture
    assert max(mixture["weights"], key=mixture["weights"].get) == "d1"
    assert mixture["target"] == "task" and mixture["compute_flops"] > 0
    assert "embeds exactly as domain(s) d1" in capsys.readouterr().err


def target_config(target=None, methods=("uniform", "chameleon_target")):
    config = load_test_config("config-small")
    small = config["datasets"]["small"]
    small["methods"] = list(methods)
    del small["target"]  # the test config's own, and RegMix's aim at it
    small["baselines"]["regmix"]["target"] = None
    if target is not None:
        small["target"] = target
    return config


def test_a_target_method_without_a_target_is_refused_when_planned():
    config = validate_config(target_config())
    plan = Plan(resolve(config), lambda domain: None)
    with pytest.raises(PlanError, match="method 'chameleon_target' weights the domains toward a"):
        plan.dataset("small").mixture_inputs("chameleon_target")


def test_the_target_is_sampled_and_embedded_like_a_domain_but_not_weighted():
    target = {"name": "shell", "collect": "shell_scripts", "splits": {"train": 20}}
    config = validate_config(target_config(target))
    small = Plan(resolve(config), lambda domain: None).dataset("small")
    assert small.target == "shell" and "shell" not in small.domains
    assert small.evaluated_domains == [*small.domains, "shell"]
    assert small.shard_source("shell") == {
        "files": "results/corpus/shell_scripts.jsonl",
        "format": "jsonl",
    }
    assert small.splits("shell")["train"] == 20
    inputs = small.mixture_inputs("chameleon_target")
    assert inputs["target"] == [
        f"results/small/embeddings/seed-{s}/final/shell.npy" for s in (0, 1)
    ]
    assert "shell" not in small.proxy.domains


@pytest.mark.parametrize(
    "target, message",
    [
        ({"name": "licenses", "collect": "licenses"}, "target.name: 'licenses' is also a domain"),
        ({"name": "t", "collect": "no_such"}, "unknown collector 'no_such'"),
        ({"name": "t", "value": "x"}, "add `source:` and `domain_field:`"),
    ],
)
def test_a_target_that_cannot_be_one_is_refused(target, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(target_config(target))


def test_regmix_may_target_the_target_but_not_an_unknown_name():
    config = target_config({"name": "shell", "collect": "shell_scripts"}, ("uniform", "regmix"))
    config["datasets"]["small"]["baselines"]["regmix"]["target"] = "shell"
    validate_config(copy.deepcopy(config))
    config["datasets"]["small"]["baselines"]["regmix"]["target"] = "nothing"
    with pytest.raises(ConfigError, match="nor its target; name one of .* or the target 'shell'"):
        validate_config(config)
