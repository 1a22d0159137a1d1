"""RegMix (Liu et al., ICLR 2025, arXiv:2407.01492): the data mixture as a regression problem.

1. Mixtures. Run i draws a concentration ``c`` uniformly from ``concentrations`` (the public
   code's 15 strengths log-spaced over [0.1, 5]) and its mixture ``x_i ~ Dir(c · q)``, with
   ``q ∝ p^τ`` the token-count prior ``p`` tempered by ``τ = temperature`` (0.5), as
   ``mixture_config/synthesize_mixture.py`` does. With a maximum usage ``m`` (``max_usage``,
   the code's ``MAXIMUM_USAGE = 15``: no domain repeated more than 15 times in the large run)
   a draw with any ``x_i > min(m p_i, 1)`` is rejected and drawn again, as the code's
   rejection sampling does. The generator is seeded with ``(seed, i)`` alone, so adding runs
   never changes the earlier ones, and a run whose first draw is within the bound is the same
   run with or without it.
2. Runs. One small model per mixture, trained with the project's trainer on the regmix
   schedule (RegMix: 1000 steps of 512 x 2048 tokens at a constant learning rate); its
   validation loss on every domain is recorded (:func:`regmix_run`).
3. Regression. LightGBM from mixture to the target loss as the ``regression_fitting``
   notebook fits it: objective ``regression``, learning rate 0.01, at most 1000 rounds,
   seeded, early-stopped when the held-out runs' l2 loss has not improved for 3 rounds. The
   notebook holds out its first 128 of 1000 runs; here the first ``HELD_OUT_SHARE`` of them
   (12.8%, at least one), and the minimum rows per leaf (LightGBM's default 20, which would
   leave fewer than 40 runs without a single split) is a tenth of the fitted runs.
4. Simulation. ``candidates`` mixtures from ``Dir(p)`` (the notebook's ``prior * 1``) are
   scored by the regressor; the mean of the ``top_k`` (128) with the lowest predicted loss is
   RegMix's mixture. With ``max_usage`` the candidates are held to the same bound (the
   notebook simulates unbounded; the bound is there for the large run's token budget, and
   the regressor has only seen bounded mixtures), so their mean keeps it too.

The target is the validation loss of one domain (the paper targets Pile-CC; Chameleon's
comparison uses SlimPajama's CC) or, with ``target=None``, the mean over the domains. RegMix's
rounding of the runs' weights to multiples of 2e-4 (zero below it) only keeps its 512 runs'
configurations apart and is left out.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

CONCENTRATIONS = np.logspace(np.log10(0.1), np.log10(5.0), 15).round(4).tolist()
PRIOR_TEMPERATURE = 0.5
LIGHTGBM = {"objective": "regression", "learning_rate": 1e-2, "verbosity": -1}
ROUNDS = 1000
HELD_OUT_SHARE = 128 / 1000  # the notebook's validation runs
STOPPING_ROUNDS = 3  # the notebook's lgb.early_stopping(stopping_rounds=3)
MAX_DRAWS = 10_000  # mixtures drawn for one run before the usage bound is declared unmet
MAX_ROUNDS = 100  # draws of `candidates` mixtures (RegMix's SAMPLE_MULTIPLIER) for the simulation


# What a run depends on: `runs`, `target` and the fit stay out, so changing them retrains
# no run. What the fit depends on: the runs' own settings stay out (they are the runs').
RUN_KEYS = ("seed", "concentrations", "temperature", "prior", "max_usage")
FIT_KEYS = ("target", "candidates", "top_k", "seed", "max_usage")


def run_settings(regmix: dict) -> dict:
    """A run's settings, from a dataset's resolved ``baselines.regmix``."""
    return {key: regmix[key] for key in RUN_KEYS}


def fit_settings(regmix: dict) -> dict:
    """The fit's settings, from a dataset's resolved ``baselines.regmix``."""
    return {key: regmix[key] for key in FIT_KEYS}


def usage_bound(prior: np.ndarray, max_usage: float | None) -> np.ndarray | None:
    """The largest weight each domain may get, ``min(m p_i, 1)`` (k,), from the prior ``p``
    (k,, normalised here); None without a maximum usage ``m``."""
    if max_usage is None:
        return None
    prior = np.asarray(prior, dtype=np.float64)
    return np.minimum(max_usage * prior / prior.sum(), 1.0)


def sample_mixture(
    prior: np.ndarray,
    seed: int,
    index: int,
    concentrations: list[float] = CONCENTRATIONS,
    temperature: float = PRIOR_TEMPERATURE,
    max_usage: float | None = None,
) -> tuple[np.ndarray, float]:
    """Run ``index``'s mixture (k,) and its concentration, from the prior ``p`` (k,); with
    ``max_usage`` the first draw within :func:`usage_bound`."""
    rng = np.random.default_rng([seed, index])
    tempered = np.asarray(prior, dtype=np.float64) ** temperature
    bound = usage_bound(prior, max_usage)
    for _ in range(MAX_DRAWS):
        concentration = float(rng.choice(concentrations))
        mixture = rng.dirichlet(concentration * tempered / tempered.sum())
        if bound is None or (mixture <= bound).all():
            return mixture, concentration
    raise ValueError(
        f"RegMix run {index}: none of {MAX_DRAWS} mixtures drawn keeps every domain within "
        f"max_usage {max_usage} x its prior share (bounds {np.round(bound, 4).tolist()}); "
        "raise baselines.regmix.max_usage"
    )


def fit_regressor(mixtures: np.ndarray, losses: np.ndarray, seed: int):
    """LightGBM regressor from ``mixtures`` (M, k) to ``losses`` (M,), early-stopped on the
    first :func:`held_out` runs and fitted on the rest; a ``lightgbm.Booster`` whose
    ``best_iteration`` (the rounds kept) ``predict`` uses."""
    import lightgbm

    held = held_out(len(losses))
    fitted = len(losses) - held
    params = {
        **LIGHTGBM,
        "metric": "l2",
        "seed": seed,
        "deterministic": True,
        "num_threads": 1,  # with `deterministic`, the same model on every machine
        "min_data_in_leaf": max(1, min(20, fitted // 10)),
        "min_data_in_bin": 1,
    }
    dataset = {"params": {"min_data_in_bin": 1, "verbosity": -1}}
    train = lightgbm.Dataset(mixtures[held:], losses[held:], **dataset)
    valid = lightgbm.Dataset(mixtures[:held], losses[:held], reference=train, **dataset)
    return lightgbm.train(
        params,
        train,
        num_boost_round=ROUNDS,
        valid_sets=[valid],
        callbacks=[lightgbm.early_stopping(STOPPING_ROUNDS, verbose=False)],
    )


def held_out(runs: int) -> int:
    """How many of ``runs`` (the first ones) the regression holds out for early stopping."""
    if runs < 2:
        raise ValueError(f"RegMix needs at least 2 runs to fit and to stop early, got {runs}")
    return min(runs - 1, max(1, round(HELD_OUT_SHARE * runs)))


def simulated_mixtures(
    prior: np.ndarray, candidates: int, seed: int, max_usage: float | None = None
) -> np.ndarray:
    """``candidates`` mixtures (candidates, k) from ``Dir(p)``; with ``max_usage`` only those
    within :func:`usage_bound`, drawn ``candidates`` at a time."""
    rng = np.random.default_rng(seed)
    prior = np.asarray(prior, dtype=np.float64)
    bound = usage_bound(prior, max_usage)
    kept = []
    for _ in range(MAX_ROUNDS):
        samples = rng.dirichlet(prior, candidates)
        kept.append(samples if bound is None else samples[(samples <= bound).all(axis=1)])
        if sum(map(len, kept)) >= candidates:
            return np.concatenate(kept)[:candidates]
    raise ValueError(
        f"RegMix max_usage {max_usage}: only {sum(map(len, kept))} of "
        f"{MAX_ROUNDS * candidates} simulated mixtures keep every domain within "
        f"min({max_usage} p_i, 1), fewer than candidates={candidates}; raise max_usage or "
        "lower candidates"
    )


def best_mixture(
    regressor,
    prior: np.ndarray,
    candidates: int,
    top_k: int,
    seed: int,
    max_usage: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Mean of the ``top_k`` of ``candidates`` simulated mixtures (:func:`simulated_mixtures`)
    with the lowest predicted loss: returns (mixture (k,), those predicted losses (top_k,))."""
    samples = simulated_mixtures(prior, candidates, seed, max_usage)
    predicted = regressor.predict(samples)
    best = np.argsort(predicted, kind="stable")[:top_k]
    return samples[best].mean(axis=0), predicted[best]


def regmix_run(
    index: int,
    tokens: dict[str, str | Path],
    tokenizer_dir: str | Path,
    model: str | dict,
    train_config: dict,
    out_json: str | Path,
    seed: int = 0,
    concentrations: list[float] = CONCENTRATIONS,
    temperature: float = PRIOR_TEMPERATURE,
    prior: dict[str, float] | None = None,
    max_usage: float | None = None,
    device: str | None = None,
    scored_only: dict[str, str | Path] | None = None,
) -> dict:
    """Train run ``index`` on its mixture of the train splits of ``tokens`` (domain -> token
    directory) and write its loss on each domain's validation split, and on the validation
    split of each of ``scored_only`` (name -> token directory: a target, never trained on).

    ``prior=None`` takes the token counts of the train splits; ``max_usage`` bounds the
    mixture (:func:`sample_mixture`). The model is trained in a temporary directory: only the
    JSON (mixture, losses, FLOPs) is kept.
    """
    import torch

    from . import distributed
    from .evaluate import perplexity
    from .flops import forward_flops, training_flops
    from .io import write_json
    from .model import build_model, model_spec
    from .tokenizer import load_tokenizer
    from .tokens import (
        check_tokenizer,
        documents,
        read_offsets,
        read_tokens,
        verify_token_file,
    )
    from .train import TrainConfig, token_streams, train

    cfg = TrainConfig(**train_config)
    tokenizer = load_tokenizer(tokenizer_dir)
    streams, digests = token_streams(tokens, tokenizer, f"the tokenizer {tokenizer_dir}")
    for directory in (scored_only or {}).values():  # a target: scored, never trained on
        check_tokenizer(directory, tokenizer, f"the tokenizer {tokenizer_dir}")
    names = list(streams)
    if prior is None:
        counts = np.array([len(streams[n]) for n in names], dtype=np.float64)
        prior = dict(zip(names, (counts / counts.sum()).tolist()))
    mixture, concentration = sample_mixture(
        np.array([prior[n] for n in names]), seed, index, concentrations, temperature, max_usage
    )
    weights = dict(zip(names, mixture.tolist()))
    print(f"run {index}: concentration {concentration}, mixture {weights}", flush=True)
    torch.manual_seed(cfg.seed)
    net = build_model(model, len(tokenizer), cfg.seq_len, tokenizer.eos_token_id)
    Path(out_json).parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=Path(out_json).parent) as tmp:
        log = train(net, streams, weights, cfg, tmp, device=device, data_digests=digests)
    if not distributed.is_main():  # a data-parallel run: rank 0 alone evaluates and writes
        return {}
    spec = {**model_spec(model), "vocab_size": len(tokenizer)}  # the LM head's FLOPs need it
    losses, evaluated = {}, 0
    for name, directory in {**tokens, **(scored_only or {})}.items():
        verify_token_file(directory, "val")
        val = documents(read_tokens(directory, "val"), read_offsets(directory, "val"))
        scored = perplexity(net, val, tokenizer.eos_token_id, seq_len=cfg.seq_len)
        losses[name] = scored["nll"] / scored["tokens"]
        evaluated += scored["tokens"]
    train_flops = training_flops(spec, log["tokens_total"], cfg.seq_len)
    eval_flops = forward_flops(spec, evaluated, cfg.seq_len)
    run = {
        "index": index,
        "seed": seed,
        "concentration": concentration,
        "prior": prior,
        "max_usage": max_usage,
        "mixture": weights,
        "validation_loss": losses,
        "tokens": log["tokens_total"],
        "model": spec,
        "training_flops": train_flops,
        "evaluation_flops": eval_flops,
        "compute_flops": train_flops + eval_flops,
    }
    write_json(out_json, run)
    return run


def regmix_mixture(
    path: str | Path,
    domains: list[str],
    run_files: list[str | Path],
    target: str | None = None,
    candidates: int = 100_000,
    top_k: int = 128,
    seed: int = 0,
    max_usage: float | None = None,
) -> dict:
    """Fit the regression on the runs' (mixture, target loss) pairs and write RegMix's
    mixture; its compute is every run's training and evaluation. ``max_usage`` bounds the
    simulated candidates, and must be the bound the runs were sampled with."""
    from .mixtures import check_weights, write_mixture

    runs = [json.loads(Path(f).read_text()) for f in run_files]
    for f, run in zip(run_files, runs):
        if sorted(run["mixture"]) != sorted(domains):
            raise ValueError(
                f"RegMix run {f} covers domains {sorted(run['mixture'])}, the dataset "
                f"{sorted(domains)}; delete the run files so that they are trained again"
            )
        if run.get("max_usage") != max_usage:
            raise ValueError(
                f"RegMix run {f} was sampled with max_usage {run.get('max_usage')}, the fit "
                f"asks for {max_usage}; delete the run files so that they are trained again"
            )
    scored = [name for name in runs[0]["validation_loss"] if name not in domains]
    if (
        target is not None
        and target not in domains
        and not all(target in run["validation_loss"] for run in runs)
    ):
        raise ValueError(
            f"RegMix target {target!r} is neither a domain ({domains}) nor scored by every run "
            f"(the runs also score: {scored or 'nothing'}); delete the run files so that they "
            "are trained again with the dataset's target"
        )
    mixtures = np.array([[run["mixture"][d] for d in domains] for run in runs])
    losses = np.array(
        [
            run["validation_loss"][target]
            if target is not None
            else np.mean([run["validation_loss"][d] for d in domains])
            for run in runs
        ]
    )
    prior = np.array([runs[0]["prior"][d] for d in domains])
    regressor = fit_regressor(mixtures, losses, seed)
    mixture, predicted = best_mixture(regressor, prior, candidates, top_k, seed, max_usage)
    weights = check_weights(dict(zip(domains, mixture.tolist())), domains, "RegMix mixture")
    best_run = int(np.argmin(losses))
    return write_mixture(
        path,
        "regmix",
        weights,
        compute_flops=float(sum(run["compute_flops"] for run in runs)),
        runs=len(runs),
        target=target or "mean of the domains' validation losses",
        top_k=top_k,
        candidates=candidates,
        max_usage=max_usage,
        predicted_target_loss=float(predicted.mean()),
        held_out_runs=held_out(len(runs)),
        boosting_rounds=int(regressor.best_iteration),
        best_run={"index": runs[best_run]["index"], "target_loss": float(losses[best_run])},
        prior=dict(zip(domains, prior.tolist())),
    )
