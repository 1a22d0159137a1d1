"""The baseline mixers: DoReMi's and DoGE's updates against a direct computation on a tiny
model, the direction each moves the weights on constructed domains, exact resume, and RegMix
on a synthetic loss surface."""

import inspect
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from chameleon_mix.config import ConfigError, validate_config
from chameleon_mix.doge import DoGE, doge_mixture, held_out_rows, train_doge
from chameleon_mix.doremi import DoReMi, doremi_mixture
from chameleon_mix.flops import forward_flops, training_flops
from chameleon_mix.model import build_model
from chameleon_mix.regmix import (
    CONCENTRATIONS,
    best_mixture,
    fit_regressor,
    regmix_mixture,
    sample_mixture,
    simulated_mixtures,
    usage_bound,
)
from chameleon_mix.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]
SPEC = {"n_layer": 1, "n_head": 2, "n_embd": 32}
VOCAB, SEQ = 64, 16
LOGGED_SPEC = {**SPEC, "vocab_size": VOCAB}  # a train log's model entry (FLOPs need the head)
NO_AUTOCAST = torch.autocast("cpu", enabled=False)


def train_on_cpu(*args, **kwargs):
    """On CPU even where a GPU is present: float32 throughout and bit-exact resume."""
    return train(*args, device="cpu", **kwargs)


def tiny_model(seed):
    torch.manual_seed(seed)
    return build_model(SPEC, VOCAB, SEQ, 0)


def direct_token_losses(model, tokens):
    """−log p(next token), written out with log_softmax and gather: (n, T)."""
    log_probs = model(tokens[:, :-1]).logits.log_softmax(dim=-1)
    return -log_probs.gather(-1, tokens[:, 1:, None]).squeeze(-1)


def batches(k):
    rng = np.random.default_rng(0)
    tokens = [torch.from_numpy(rng.integers(0, VOCAB, (6, SEQ + 1))) for _ in range(2)]
    # Step 2 leaves out the last domain: DoReMi keeps its excess loss, DoGE gives it no score.
    domains = [torch.tensor([0, 1, 0, k - 1, 1, 0]), torch.tensor([1, 0, 0, 1, 1, 0])]
    return list(zip(tokens, domains))


def sgd_step(model):
    """Move the parameters between the two checked steps, as the optimizer would."""
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.5 * p.grad
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("micro", [6, 2], ids=["one-micro-batch", "accumulated"])
def test_doremi_steps_equal_a_direct_computation(micro):
    k, eta, eps = 3, 1.0, 1e-3
    proxy, reference = tiny_model(0), tiny_model(1)
    reweighter = DoReMi(reference, k, eta, eps)
    weights, excess = np.full(k, 1 / k), np.zeros(k)
    for tokens, domains in batches(k):
        with torch.no_grad():
            gap = direct_token_losses(proxy, tokens) - direct_token_losses(reference, tokens)
        for i in domains.unique().tolist():
            excess[i] = gap[domains == i].clamp(min=0).mean().item()
        raised = weights * np.exp(eta * excess)
        weights = (1 - eps) * raised / raised.sum() + eps / k
        objective = sum(
            weights[i] * direct_token_losses(proxy, tokens)[domains == i].mean()
            for i in domains.unique().tolist()
        )
        expected = torch.autograd.grad(objective, list(proxy.parameters()))

        loss = reweighter.backward(proxy, tokens, domains, 1e-3, micro, NO_AUTOCAST)
        np.testing.assert_allclose(reweighter.excess, excess, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(reweighter.weights, weights, rtol=1e-6)
        for p, g in zip(proxy.parameters(), expected):
            torch.testing.assert_close(p.grad, g, rtol=1e-4, atol=1e-6)
        assert loss == pytest.approx(direct_token_losses(proxy, tokens).mean().item(), rel=1e-5)
        sgd_step(proxy)
    assert excess[k - 1] > 0  # the absent domain kept its step-1 excess
    np.testing.assert_allclose(reweighter.trajectory[-1], weights, rtol=1e-6)


def flat_gradient(model, tokens):
    """The gradient of the mean token loss over ``tokens``, flattened: (parameters,)."""
    loss = direct_token_losses(model, tokens).mean()
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss, list(model.parameters()))])


def clipped(gradient, clip):
    return gradient * min(1.0, clip / (gradient.norm().item() + 1e-6))


@pytest.mark.parametrize("micro", [6, 1], ids=["one-micro-batch", "accumulated"])
@pytest.mark.parametrize("target", ["mix", "others"])
def test_doge_steps_equal_a_direct_computation(target, micro):
    k, mu, lr, clip = 3, 0.01, 2e-3, 0.5
    model = tiny_model(0)
    reweighter = DoGE(k, mu=mu, grad_clip=clip, target=target)
    params = list(model.parameters())
    weights = np.full(k, 1 / k)
    for tokens, domains in batches(k):
        # mix: rows 3 (every 4th) are the held-out slice; step 1's is domain 2's only row, so
        # domain 2 has no training row that step and must get no score and no update.
        held = (torch.arange(len(tokens)) % (k + 1) == k) if target == "mix" else None
        trains = ~held if target == "mix" else torch.ones(len(tokens), dtype=torch.bool)
        present = domains[trains].unique().tolist()
        grads = {
            i: clipped(flat_gradient(model, tokens[(domains == i) & trains]), clip) for i in present
        }
        mean_norm = np.mean([grads[i].norm().item() for i in present])
        if target == "mix":
            held_out = clipped(flat_gradient(model, tokens[held]), clip)
            to_target = {i: torch.dot(grads[i], held_out).item() for i in present}
        else:
            to_target = {
                i: sum(torch.dot(grads[i], grads[j]).item() for j in present if j != i)
                for i in present
            }
        scores = np.zeros(k)
        for i in present:
            scores[i] = min(max(to_target[i] / (mean_norm + 1e-6), 0.0), 5.0)
        raised = weights * np.exp(lr * scores / mu)
        weights = raised / raised.sum()
        combined = sum(weights[i] * grads[i] for i in present)  # the training rows' only

        reweighter.backward(model, tokens, domains, lr, micro, NO_AUTOCAST)
        np.testing.assert_allclose(np.exp(reweighter.log_weights), weights, rtol=1e-5)
        got = torch.cat([p.grad.reshape(-1) for p in params])
        torch.testing.assert_close(got, combined, rtol=1e-4, atol=1e-6)
        sgd_step(model)
    assert len(reweighter.trajectory) == 2


def test_doge_targets_score_differently_and_mix_needs_a_held_out_row():
    k = 3
    tokens, domains = batches(k)[0]
    trajectories = {}
    for target in ("mix", "others"):
        reweighter = DoGE(k, target=target)
        reweighter.backward(tiny_model(0), tokens, domains, 1e-2, 6, NO_AUTOCAST)
        trajectories[target] = reweighter.trajectory[0]
    assert np.abs(np.subtract(trajectories["mix"], trajectories["others"])).max() > 1e-3
    assert held_out_rows(9, k).tolist() == [False, False, False, True] * 2 + [False]
    with pytest.raises(ValueError) as short:
        DoGE(k).backward(tiny_model(0), tokens[:3], domains[:3], 1e-2, 3, NO_AUTOCAST)
    assert str(short.value) == (
        "DoGE's target 'mix' holds out every 4th row of a batch for the generalisation "
        "gradient, and a batch of 3 rows has none; raise batch_size to at least 4 or set "
        "baselines.doge.target: others"
    )
    with pytest.raises(ValueError, match="DoGE target 'all' is not one of mix, others"):
        DoGE(k, target="all")


def learnable_and_noise_streams():
    """A short repeated pattern a model learns within steps, and uniform noise it never can."""
    rng = np.random.default_rng(0)
    pattern = np.tile(np.arange(10, 26, dtype=np.int32), 200)
    return pattern, rng.integers(0, VOCAB, 3200).astype(np.int32)


def schedule(**changes):
    settings = dict(steps=30, batch_size=8, seq_len=SEQ, lr=5e-3, min_lr=5e-4, warmup_steps=3)
    return TrainConfig(**{**settings, **changes})


def test_doremi_upweights_the_domain_where_the_proxy_lags_the_reference(tmp_path):
    pattern, noise = learnable_and_noise_streams()
    streams = {"pattern": pattern, "noise": noise}
    uniform = {"pattern": 0.5, "noise": 0.5}
    model = {"model": LOGGED_SPEC}
    reference = tiny_model(0)
    train_on_cpu(reference, streams, uniform, schedule(), tmp_path / "ref", metadata=model)
    proxy = train_on_cpu(
        tiny_model(1),
        streams,
        uniform,
        schedule(steps=15),
        tmp_path / "proxy",
        metadata=model,
        reweighter=DoReMi(reference, 2),
    )
    run = proxy["reweighting"]
    # The reference has learnt the pattern, the fresh proxy has not: its excess loss is there.
    assert run["trajectory"][0][0] > 0.9
    assert run["average"]["pattern"] > 0.7
    assert np.mean(run["trajectory"], axis=0) == pytest.approx(list(run["average"].values()))

    mixture = doremi_mixture(
        tmp_path / "doremi.json",
        ["noise", "pattern"],
        tmp_path / "proxy/train_log.json",
        tmp_path / "ref/train_log.json",
        reference_reused=False,
    )
    tokens = 15 * 8 * SEQ
    assert mixture["weights"]["pattern"] == pytest.approx(run["average"]["pattern"])
    assert mixture["compute_flops"] == pytest.approx(
        training_flops(LOGGED_SPEC, 30 * 8 * SEQ, SEQ)  # the reference, its own 30 steps
        + training_flops(LOGGED_SPEC, tokens, SEQ)  # the proxy
        + forward_flops(LOGGED_SPEC, tokens, SEQ)  # the reference's losses on the proxy's batches
    )
    assert mixture["reference_steps"] == 30


@pytest.mark.parametrize("target", ["mix", "others"])
def test_doge_downweights_the_domain_whose_gradient_helps_no_other(target, tmp_path):
    pattern, noise = learnable_and_noise_streams()
    # Two domains from one process (their gradients agree) and noise (agrees with neither).
    streams = {"pattern": pattern, "shifted": np.roll(pattern, 5), "noise": noise}
    proxy = train_on_cpu(
        tiny_model(1),
        streams,
        dict.fromkeys(streams, 1 / 3),
        schedule(steps=20),
        tmp_path / "proxy",
        metadata={"model": LOGGED_SPEC},
        reweighter=DoGE(3, target=target),
    )
    run = proxy["reweighting"]
    assert run["average"]["noise"] < 0.15
    assert run["last"]["noise"] < run["average"]["noise"]

    mixture = doge_mixture(tmp_path / "doge.json", list(streams), tmp_path / "proxy/train_log.json")
    assert mixture["target"] == target and mixture["domain_grad_clip"] == 5.0
    parameters = sum(p.numel() for p in tiny_model(0).parameters())
    # per step: the k x k Gram matrix (others) or k products with g_mix and k norms (mix),
    # then the k-term weighted sum
    products = {"others": 9, "mix": 6}[target]
    assert mixture["gradient_flops"] == pytest.approx(20 * 2 * parameters * (products + 3))
    assert mixture["compute_flops"] == pytest.approx(
        training_flops(LOGGED_SPEC, 20 * 8 * SEQ, SEQ) + mixture["gradient_flops"]
    )


def test_doge_clips_each_domain_gradient_with_its_own_clip(tokens, tokenizer_dir, tmp_path):
    """DoGE's grad_clip bounds every per-domain gradient, hence the step (a convex combination
    of them), whatever the schedule's grad_clip; the schedule's clip never reaches them."""
    short = {"steps": 2, "batch_size": 6, "seq_len": SEQ, "warmup_steps": 1}
    short.update(log_every=1, grad_clip=1e9)
    trained = train_doge(
        tokens, tokenizer_dir, SPEC, short, tmp_path / "own", mu=0.01, lr=None,
        grad_clip=0.05, target="mix", device="cpu",
    )  # fmt: skip
    assert max(entry["grad_norm"] for entry in trained["log"]) <= 0.05 * (1 + 1e-5)
    assert trained["reweighting"]["domain_grad_clip"] == 0.05
    assert trained["fingerprint"]["reweighter"]["grad_clip"] == 0.05
    unclipped = train_doge(
        tokens, tokenizer_dir, SPEC, {**short, "grad_clip": 0.05}, tmp_path / "step",
        mu=0.01, lr=None, grad_clip=1e9, target="mix", device="cpu",
    )  # fmt: skip
    assert min(entry["grad_norm"] for entry in unclipped["log"]) > 0.05  # before the step clip


@pytest.mark.parametrize("method", ["doremi", "doge"])
def test_a_resumed_reweighted_run_equals_an_uninterrupted_one(method, tmp_path):
    pattern, noise = learnable_and_noise_streams()
    streams = {"pattern": pattern, "noise": noise}
    cfg = schedule(steps=6, micro_batch_size=4, checkpoint_every=2)

    def run(out, **kwargs):
        reweighter = DoReMi(tiny_model(2), 2) if method == "doremi" else DoGE(2)
        model = tiny_model(1)
        summary = train_on_cpu(
            model,
            streams,
            {"pattern": 0.5, "noise": 0.5},
            cfg,
            out,
            reweighter=reweighter,
            **kwargs,
        )
        return model, summary

    full_model, full = run(tmp_path / "full")
    assert run(tmp_path / "cut", stop_after=5)[1] == {"stopped_at": 5}
    resumed_model, resumed = run(tmp_path / "cut")
    assert resumed["resumed_from_step"] == 4
    assert resumed["reweighting"]["trajectory"] == full["reweighting"]["trajectory"]
    for a, b in zip(full_model.state_dict().values(), resumed_model.state_dict().values()):
        assert torch.equal(a, b)


def test_a_checkpoint_resumes_only_the_run_that_wrote_it(tmp_path):
    pattern, noise = learnable_and_noise_streams()
    streams = {"pattern": pattern, "noise": noise}
    uniform = {"pattern": 0.5, "noise": 0.5}
    cfg = schedule(steps=4, checkpoint_every=2)

    def run(out, **kwargs):
        return train_on_cpu(tiny_model(0), streams, uniform, cfg, tmp_path / out, **kwargs)

    # Another run's checkpoints (tests/test_resume.py) are set aside: the run starts afresh.
    run("plain", stop_after=2)
    assert run("plain", reweighter=DoGE(2))["resumed_from_step"] == 0
    assert (tmp_path / "plain/checkpoints.stale-1/step-2").is_dir()
    run("doge", stop_after=2, reweighter=DoGE(2, mu=0.01))
    assert run("doge", reweighter=DoGE(2, mu=0.05))["resumed_from_step"] == 0
    run("target", stop_after=2, reweighter=DoGE(2, target="others"))
    assert run("target", reweighter=DoGE(2, target="mix"))["resumed_from_step"] == 0
    run("clip", stop_after=2, reweighter=DoGE(2, grad_clip=5.0))
    assert run("clip", reweighter=DoGE(2, grad_clip=1.0))["resumed_from_step"] == 0
    run("doremi", stop_after=2, reweighter=DoReMi(tiny_model(2), 2))
    assert run("doremi", reweighter=DoReMi(tiny_model(3), 2))["resumed_from_step"] == 0
    assert run("doremi", reweighter=DoReMi(tiny_model(3), 2))["resumed_from_step"] == 4


def test_regmix_mixtures_are_a_function_of_seed_and_run_index():
    prior = np.array([0.6, 0.3, 0.1])
    mixture, concentration = sample_mixture(prior, seed=7, index=3)
    again, _ = sample_mixture(prior, seed=7, index=3)
    np.testing.assert_array_equal(mixture, again)  # whatever the number of runs
    assert concentration in CONCENTRATIONS
    assert mixture.sum() == pytest.approx(1) and (mixture >= 0).all()
    assert not np.array_equal(mixture, sample_mixture(prior, seed=7, index=4)[0])
    assert not np.array_equal(mixture, sample_mixture(prior, seed=8, index=3)[0])
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    regmix = schema["$defs"]["dataset"]["properties"]["baselines"]["properties"]["regmix"]
    assert regmix["properties"]["concentrations"]["default"] == CONCENTRATIONS


def test_regmix_recovers_the_minimiser_of_a_synthetic_loss_surface():
    prior = np.array([0.4, 0.3, 0.2, 0.1])
    optimum = np.array([0.1, 0.2, 0.3, 0.4])
    mixtures = np.array([sample_mixture(prior, 0, i)[0] for i in range(128)])
    losses = ((mixtures - optimum) ** 2).sum(axis=1)
    regressor = fit_regressor(mixtures, losses, seed=0)
    mixture, predicted = best_mixture(regressor, prior, candidates=20_000, top_k=64, seed=0)
    assert np.abs(mixture - optimum).sum() < 0.3 < np.abs(prior - optimum).sum()
    assert predicted.max() < np.median(regressor.predict(mixtures))


def test_regmix_mixture_minimises_the_target_domains_loss(tmp_path):
    domains = ["a", "b", "c"]
    prior = np.array([0.5, 0.3, 0.2])
    files = []
    for i in range(60):
        x, _ = sample_mixture(prior, 1, i)
        # Each domain's validation loss falls with its own share of the mixture.
        run = {
            "index": i,
            "mixture": dict(zip(domains, x.tolist())),
            "prior": dict(zip(domains, prior.tolist())),
            "validation_loss": {d: 4.0 - 2.0 * w for d, w in zip(domains, x)},
            "compute_flops": 1e9 + i,
        }
        # a target text scored by every run, never trained on: closest to domains a and b
        run["validation_loss"]["task"] = 4.0 - x[0] - x[1]
        files.append(tmp_path / f"{i}.json")
        files[-1].write_text(json.dumps(run))
    out = tmp_path / "regmix.json"
    mixture = regmix_mixture(out, domains, files, target="c", candidates=5000, top_k=32)
    assert mixture["weights"]["c"] > 0.8
    assert mixture["compute_flops"] == pytest.approx(60 * 1e9 + sum(range(60)))
    assert json.loads(out.read_text())["target"] == "c"
    toward_task = regmix_mixture(out, domains, files, target="task", candidates=5000, top_k=32)
    assert toward_task["weights"]["c"] < 0.1 and toward_task["target"] == "task"
    with pytest.raises(ValueError, match="target 'd' is neither a domain .* scored by every run"):
        regmix_mixture(out, domains, files, target="d")


def test_regmix_max_usage_bounds_every_run_candidate_and_the_final_mixture(tmp_path):
    domains = ["a", "b", "c"]
    prior = np.array([0.75, 0.2, 0.05])
    bound = usage_bound(prior, 4.0)
    np.testing.assert_allclose(bound, [1.0, 0.8, 0.2])
    changed = 0
    for i in range(40):
        free, _ = sample_mixture(prior, 1, i)
        bounded, _ = sample_mixture(prior, 1, i, max_usage=4.0)
        assert (bounded <= bound).all()
        # a run whose first draw is within the bound is the same run with or without it
        if (free <= bound).all():
            np.testing.assert_array_equal(bounded, free)
        changed += not np.array_equal(bounded, free)
    assert changed > 0
    candidates = simulated_mixtures(prior, 5000, seed=0, max_usage=4.0)
    assert candidates.shape == (5000, 3) and (candidates <= bound).all()
    np.testing.assert_array_equal(
        simulated_mixtures(prior, 50, seed=0), np.random.default_rng(0).dirichlet(prior, 50)
    )

    def write_runs(max_usage):
        files = []
        for i in range(60):
            x, _ = sample_mixture(prior, 1, i, max_usage=max_usage)
            run = {  # c's validation loss falls with its share: the optimum is all c
                "index": i,
                "mixture": dict(zip(domains, x.tolist())),
                "prior": dict(zip(domains, prior.tolist())),
                "max_usage": max_usage,
                "validation_loss": {d: 4.0 - 2.0 * w for d, w in zip(domains, x)},
                "compute_flops": 1.0,
            }
            files.append(tmp_path / f"{max_usage}-{i}.json")
            files[-1].write_text(json.dumps(run))
        return files

    out = tmp_path / "regmix.json"
    free = regmix_mixture(out, domains, write_runs(None), target="c", candidates=5000, top_k=32)
    assert free["weights"]["c"] > 0.5 > bound[2]
    runs = write_runs(4.0)
    bounded = regmix_mixture(
        out, domains, runs, target="c", candidates=5000, top_k=32, max_usage=4.0
    )
    assert all(bounded["weights"][d] <= b + 1e-12 for d, b in zip(domains, bound))
    assert bounded["weights"]["c"] > 2 * prior[2] and bounded["max_usage"] == 4.0
    with pytest.raises(ValueError) as mismatch:
        regmix_mixture(out, domains, runs, target="c", candidates=5000, top_k=32)
    assert str(mismatch.value) == (
        f"RegMix run {runs[0]} was sampled with max_usage 4.0, the fit asks for None; delete "
        "the run files so that they are trained again"
    )
    with pytest.raises(ValueError) as tight:
        simulated_mixtures(prior, 100, seed=0, max_usage=1.0)
    assert str(tight.value) == (
        "RegMix max_usage 1.0: only 0 of 10000 simulated mixtures keep every domain within "
        "min(1.0 p_i, 1), fewer than candidates=100; raise max_usage or lower candidates"
    )


def small_config(baselines: dict) -> dict:
    """The shipped config's demo dataset and its proxy, with these baselines."""
    shipped = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    demo = {**shipped["datasets"]["demo"], "baselines": baselines}
    return {
        "datasets": {"demo": demo},
        "proxies": {"demo-tiny": shipped["proxies"]["demo-tiny"]},
    }


def test_the_schema_takes_schedule_overlays_and_the_new_keys_with_the_librarys_defaults():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    train = schema["$defs"]["train"]["properties"]
    overlay = schema["$defs"]["schedule_overlay"]["properties"]
    assert set(overlay) == set(train) - {"checkpoints"}
    assert all(spec == {"$ref": f"#/$defs/train/properties/{key}"} for key, spec in overlay.items())

    config = validate_config(
        small_config(
            {
                "doremi": {"train": {"steps": 500}},
                "doge": {"target": "others", "grad_clip": 2.0, "train": {"lr": 1e-3}},
                "regmix": {"max_usage": 15, "train": {"steps": 400, "min_lr": 2.0e-3}},
            }
        )
    )
    baselines = config["datasets"]["demo"]["baselines"]
    assert baselines["doremi"]["train"] == {"steps": 500}  # an overlay gets no defaults
    assert baselines["regmix"]["train"] == {"steps": 400, "min_lr": 2.0e-3}
    assert baselines["doge"] == {
        "mu": 0.01, "lr": None, "target": "others", "grad_clip": 2.0, "train": {"lr": 1e-3},
    }  # fmt: skip
    defaults = validate_config(small_config({}))["datasets"]["demo"]["baselines"]
    assert "train" not in defaults["doge"] and defaults["regmix"]["max_usage"] is None
    # Each default once: the library's match the schema's.
    doge, doremi = inspect.signature(DoGE).parameters, inspect.signature(DoReMi).parameters
    for key in ("mu", "lr", "target", "grad_clip"):
        assert doge[key].default == defaults["doge"][key], key
    for key in ("eta", "eps"):
        assert doremi[key].default == defaults["doremi"][key], key

    for baselines, message in [
        (
            {"doge": {"train": {"stpes": 10}}},
            "config: datasets.demo.baselines.doge.train: unknown key 'stpes'; allowed keys: "
            "batch_size, checkpoint_every, compile, grad_clip, log_every, loss_chunk, lr, "
            "micro_batch_size, min_lr, pad_vocab, seed, seq_len, steps, warmup_steps, weight_decay",
        ),
        (
            {"regmix": {"train": {"checkpoints": [5]}}},
            "config: datasets.demo.baselines.regmix.train: unknown key 'checkpoints'; allowed",
        ),
        (
            {"doremi": {"train": {"steps": 0}}},
            "config: datasets.demo.baselines.doremi.train.steps: 0 is too small",
        ),
        (
            {"doge": {"target": "all"}},
            "config: datasets.demo.baselines.doge.target: 'all' is not one of ['mix', 'others']",
        ),
        (
            {"regmix": {"max_usage": 0.5}},
            "config: datasets.demo.baselines.regmix.max_usage: 0.5 is too small",
        ),
        (  # the overlay merged over the proxy's schedule is checked as a whole
            {"regmix": {"train": {"steps": 10}}},
            "config: datasets.demo.baselines.regmix.train.warmup_steps: 100 exceeds steps 10",
        ),
        (
            {"regmix": {"steps": 100}},
            "config: datasets.demo.baselines.regmix: unknown key 'steps'; allowed keys:",
        ),
    ]:
        with pytest.raises(ConfigError) as bad:
            validate_config(small_config(baselines))
        assert str(bad.value).startswith(message), str(bad.value)


def test_regmix_regression_stops_early_on_the_held_out_runs():
    """As RegMix's notebook: the first runs (12.8%) are held out, the rest fitted, and boosting
    stops 3 rounds after the held-out l2 loss last improved."""
    import lightgbm

    from chameleon_mix.regmix import STOPPING_ROUNDS, held_out

    prior = np.array([0.4, 0.3, 0.2, 0.1])
    mixtures = np.array([sample_mixture(prior, 0, i)[0] for i in range(200)])
    noise = np.random.default_rng(0).normal(scale=0.05, size=200)
    losses = ((mixtures - [0.1, 0.2, 0.3, 0.4]) ** 2).sum(axis=1) + noise
    assert held_out(200) == 26 and held_out(8) == 1 and held_out(2) == 1
    regressor = fit_regressor(mixtures, losses, seed=0)
    assert 0 < regressor.best_iteration < 1000
    # The rounds kept are those up to the lowest held-out l2, computed directly; the next
    # STOPPING_ROUNDS did not improve on it (LightGBM keeps the best rounds only).
    held = mixtures[:26], losses[:26]
    errors = [
        np.mean((regressor.predict(held[0], num_iteration=i) - held[1]) ** 2)
        for i in range(1, regressor.best_iteration + 1)
    ]
    assert int(np.argmin(errors)) + 1 == regressor.best_iteration
    longer = lightgbm.train(
        {**regressor.params, "early_stopping_round": None},
        lightgbm.Dataset(
            mixtures[26:], losses[26:], params={"min_data_in_bin": 1, "verbosity": -1}
        ),
        num_boost_round=regressor.best_iteration + STOPPING_ROUNDS,
    )
    later = [
        np.mean((longer.predict(held[0], num_iteration=i) - held[1]) ** 2)
        for i in range(regressor.best_iteration + 1, regressor.best_iteration + STOPPING_ROUNDS + 1)
    ]
    assert min(later) >= errors[-1]
    assert isinstance(regressor, lightgbm.Booster)
    with pytest.raises(ValueError, match="at least 2 runs"):
        held_out(1)


def test_doremi_reference_trains_on_uniform_or_the_corpus_token_shares(tmp_path):
    from chameleon_mix.doremi import reference_weights

    corpus_stats = tmp_path / "corpus_stats.json"
    corpus_stats.write_text(
        json.dumps({"domains": {"a": {"tokens": 300.0}, "b": {"tokens": 100.0}}})
    )
    assert reference_weights("uniform", ["a", "b"]) is None  # the trainer's uniform default
    assert reference_weights("natural", ["a", "b"], corpus_stats) == {"a": 0.75, "b": 0.25}
    with pytest.raises(ValueError, match="DoReMi reference must be one of"):
        reference_weights("proportional", ["a", "b"], corpus_stats)
