"""DoReMi (Xie et al., NeurIPS 2023, arXiv:2305.10429): domain weights by Group DRO on a proxy.

A reference model is trained with uniform weights or the domains' token shares
(:func:`reference_weights`); a proxy of the same size is then
trained from scratch on batches drawn uniformly over the k domains, while the domain weights
``α`` follow the proxy's excess loss over the reference. Per step t (the paper's Algorithm 1):

    λ_t[i] = (1 / |tokens of domain i in the batch|) Σ_{those tokens j} max(ℓ_θ(j) − ℓ_ref(j), 0)
    α'_t   = α_{t−1} ⊙ exp(η λ_t)                       (η = ``eta``, default 1)
    α_t    = (1 − ε) α'_t / Σ_i α'_t[i] + ε / k        (ε = ``eps``, default 1e-3)
    θ_t    = AdamW step on L(θ_{t−1}, α_t) = Σ_i α_t[i] · mean token loss of domain i

and the result is the average ``(1/T) Σ_t α_t``. The loss is the paper's per-domain average
(Eq. 1) over the batch. As in the public code (``doremi/trainer.py``), a domain absent from a
batch keeps its last ``λ``; before it has been seen its ``λ`` is 0 (the public code starts at
``log |V|``, which with small batches hands an unseen domain most of the weight at step 1).
The trainer's own loop runs it: :class:`DoReMi` is a :class:`~chameleon_mix.train.Reweighter`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .checkpoints import state_digest
from .train import token_losses


def excess_losses(
    proxy: np.ndarray, reference: np.ndarray, domains: np.ndarray, previous: np.ndarray
) -> np.ndarray:
    """Per-domain clipped excess loss ``λ`` (k,) of the whole batch, over all ranks.

    ``proxy``, ``reference``: per-token losses (n, T) of this rank's rows; ``domains``: each
    row's domain (n,); ``previous``: the last ``λ`` (k,), kept for domains with no row in the
    batch. Each rank sums its rows' excess losses and counts its tokens per domain; the sums
    and counts are all-reduced, so ``λ`` (and with it ``α``) is the same on every rank.
    """
    clipped = np.maximum(proxy - reference, 0.0)
    k = len(previous)
    sums, counts = np.zeros(k), np.zeros(k)
    for i in np.unique(domains):
        rows = clipped[domains == i]
        sums[i], counts[i] = rows.sum(), rows.size
    sums, counts = np.split(distributed.all_reduce_sum(np.concatenate([sums, counts])), 2)
    seen = counts > 0
    excess = np.array(previous, dtype=np.float64)
    excess[seen] = sums[seen] / counts[seen]
    return excess


def doremi_update(weights: np.ndarray, excess: np.ndarray, eta: float, eps: float) -> np.ndarray:
    """One exponentiated-gradient step with smoothing: ``α_{t−1}`` (k,), ``λ_t`` (k,) -> ``α_t``."""
    log_weights = np.log(weights) + eta * excess
    log_weights -= log_weights.max()  # exp cannot overflow; normalising removes the shift
    updated = np.exp(log_weights) / np.exp(log_weights).sum()
    return (1.0 - eps) * updated + eps / len(updated)


class DoReMi:
    """The DoReMi reweighter for :func:`~chameleon_mix.train.train`, over ``k`` domains."""

    def __init__(self, reference: torch.nn.Module, k: int, eta: float = 1.0, eps: float = 1e-3):
        self.reference = reference.eval().requires_grad_(False)
        self.reference_digest = state_digest(reference)  # a retrained reference is another run
        self.eta, self.eps = eta, eps
        self.weights = np.full(k, 1.0 / k)
        self.excess = np.zeros(k)
        self.trajectory: list[list[float]] = []  # α_t after each step's update
        self.reference_tokens = 0  # tokens through the reference (forward only)
        self.recomputed_tokens = 0  # proxy forwards repeated under gradient accumulation

    def backward(self, model, tokens, domains, lr, micro_batch_size, autocast) -> float:
        self.reference.to(tokens.device)
        chunks = tokens.split(micro_batch_size)
        # One micro-batch: its forward serves both the excess loss and the gradient. Several:
        # a graph per micro-batch would defeat accumulation's memory saving, so the proxy's
        # forward is repeated with gradients after the weights are updated.
        single = len(chunks) == 1
        with torch.set_grad_enabled(single):
            proxy_losses = [token_losses(model, chunk, autocast) for chunk in chunks]
        with torch.no_grad():
            reference_losses = torch.cat(
                [token_losses(self.reference, chunk, autocast) for chunk in chunks]
            )
        proxy_all = torch.cat([losses.detach() for losses in proxy_losses])
        rows = domains.cpu().numpy()
        self.excess = excess_losses(
            proxy_all.cpu().double().numpy(),
            reference_losses.cpu().double().numpy(),
            rows,
            self.excess,
        )
        self.weights = doremi_update(self.weights, self.excess, self.eta, self.eps)
        self.trajectory.append(self.weights.tolist())

        # Σ_i α_i · (mean loss of domain i) = Σ_tokens α_d / N_d · ℓ: each token's coefficient,
        # N_d counted over the whole batch. DDP averages the ranks' gradients: times the ranks.
        local_tokens = np.bincount(rows, minlength=len(self.weights)) * proxy_all.size(1)
        per_domain_tokens = distributed.all_reduce_sum(local_tokens.astype(np.float64))
        coefficient = torch.tensor(
            self.weights * distributed.world_size() / np.maximum(per_domain_tokens, 1),
            dtype=torch.float32,
        ).to(tokens.device)
        for i, (chunk, chunk_domains, losses) in enumerate(
            zip(chunks, domains.split(micro_batch_size), proxy_losses)
        ):
            with distributed.sync_gradients(model, last=i == len(chunks) - 1):
                if not single:
                    losses = token_losses(model, chunk, autocast)
                (losses.sum(dim=1) * coefficient[chunk_domains]).sum().backward()
        self.reference_tokens += proxy_all.numel()
        self.recomputed_tokens += 0 if single else proxy_all.numel()
        return proxy_all.mean().item()

    def settings(self) -> dict:
        return {
            "method": "doremi",
            "domains": len(self.weights),
            "eta": self.eta,
            "eps": self.eps,
            "reference": self.reference_digest,
        }

    def state_dict(self) -> dict:
        return {
            "weights": self.weights.tolist(),
            "excess": self.excess.tolist(),
            "trajectory": self.trajectory,
            "reference_tokens": self.reference_tokens,
            "recomputed_tokens": self.recomputed_tokens,
        }

    def load_state_dict(self, state: dict) -> None:
        self.weights = np.array(state["weights"])
        self.excess = np.array(state["excess"])
        self.trajectory = [list(w) for w in state["trajectory"]]
        self.reference_tokens = state["reference_tokens"]
        self.recomputed_tokens = state["recomputed_tokens"]

    def summary(self, domains: list[str]) -> dict:
        average = np.mean(self.trajectory, axis=0)
        return {
            "method": "doremi",
            "eta": self.eta,
            "eps": self.eps,
            "domains": domains,
            "average": dict(zip(domains, average.tolist())),
            "last": dict(zip(domains, self.weights.tolist())),
            "trajectory": self.trajectory,
            "reference_forward_tokens": self.reference_tokens,
            "recomputed_forward_tokens": self.recomputed_tokens,
        }


REFERENCES = ("uniform", "natural")


def reference_weights(
    mixture: str, domains: list[str], corpus_stats: str | Path | None = None
) -> dict[str, float] | None:
    """The reference model's mixture over ``domains``: None for ``uniform`` (the trainer's
    default), each domain's share of the corpus's tokens (``corpus_stats.json``) for
    ``natural`` (DoReMi's authors' recommended reference)."""
    from .corpus_stats import natural_shares

    if mixture not in REFERENCES:
        raise ValueError(f"DoReMi reference must be one of {REFERENCES}, got {mixture!r}")
    if mixture == "uniform":
        return None
    return natural_shares(corpus_stats, domains)


def train_doremi(
    tokens: dict[str, str | Path],
    tokenizer_dir: str | Path,
    reference_dir: str | Path,
    model: str | dict,
    train_config: dict,
    out_dir: str | Path,
    eta: float = 1.0,
    eps: float = 1e-3,
    device: str | None = None,
) -> dict:
    """Train DoReMi's proxy on ``tokens`` (domain -> token directory) against the reference
    model in ``reference_dir``; the weights are in the returned summary under ``reweighting``."""
    from .model import load_model
    from .tokenizer import load_tokenizer
    from .train import train_from_scratch

    reference = load_model(reference_dir)
    vocabulary = len(load_tokenizer(tokenizer_dir))
    if reference.config.vocab_size != vocabulary:
        raise ValueError(
            f"reference model {reference_dir} has a vocabulary of {reference.config.vocab_size}, "
            f"the tokenizer {tokenizer_dir} {vocabulary}; train the reference with this tokenizer"
        )
    return train_from_scratch(
        tokens,
        tokenizer_dir,
        model,
        train_config,
        out_dir,
        device=device,
        reweighter=DoReMi(reference, len(tokens), eta, eps),
    )


def doremi_mixture(
    path: str | Path,
    domains: list[str],
    proxy_log: str | Path,
    reference_log: str | Path,
    reference_reused: bool,
) -> dict:
    """DoReMi's averaged weights and their cost: the reference's training (counted even when
    it is the uniform proxy Chameleon also uses, since DoReMi needs it), the proxy's training
    and the reference's forward passes during it. Each is counted from its own training log
    (tokens, model, sequence length), whatever schedule each was trained on."""
    from .flops import forward_flops, training_flops
    from .mixtures import check_weights, write_mixture

    log = json.loads(Path(proxy_log).read_text())
    reference = json.loads(Path(reference_log).read_text())
    run = log["reweighting"]
    weights = check_weights(run["average"], domains, f"DoReMi weights in {proxy_log}")
    reference_flops = training_flops(
        reference["model"], reference["tokens_total"], reference["config"]["seq_len"]
    )
    seq_len = log["config"]["seq_len"]
    proxy_flops = training_flops(log["model"], log["tokens_total"], seq_len) + forward_flops(
        log["model"], run["recomputed_forward_tokens"], seq_len
    )
    reference_forward = forward_flops(log["model"], run["reference_forward_tokens"], seq_len)
    return write_mixture(
        path,
        "doremi",
        weights,
        compute_flops=reference_flops + proxy_flops + reference_forward,
        reference_flops=reference_flops,
        proxy_flops=proxy_flops,
        reference_forward_flops=reference_forward,
        reference_reused=reference_reused,
        reference_steps=reference["config"]["steps"],
        last_weights=run["last"],
        steps=len(run["trajectory"]),
        eta=run["eta"],
        eps=run["eps"],
    )
