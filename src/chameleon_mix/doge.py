"""DoGE (Fan, Pagliardini & Jaggi, ICML 2024, arXiv:2310.15393): domain weights from how well
each domain's gradient generalises to the rest of the mixture.

The proxy trains from scratch on batches drawn uniformly over the k domains. Per step t, with
``g_i`` the gradient of the mean token loss over the batch's rows of domain i (clipped to norm
``grad_clip``, as the public code clips each domain's gradient), the paper's Algorithm 1 for
universal generalisation, in the form of the public code (``src/trainer.py``,
``update_domain_weights``):

    W_i = ⟨g_i, Σ_{j≠i} g_j⟩ / mean_j ‖g_j‖        generalisation estimate of domain i
    W_i ← clip(W_i, 0, 5)                             the code's ``dw_min``, ``dw_max``
    log α_t = log α_{t−1} + η_t · W / μ,  α_t = softmax(log α_t)
    θ_t = AdamW step with the gradient Σ_i α_t[i] g_i

``μ`` (``mu``) is the Bregman coefficient, 0.01 in DoGE's configuration; ``η_t`` is the proxy's
learning rate at step t, as in the code, unless a fixed ``lr`` is given. The result is the
average ``(1/T) Σ_t α_t``; the last ``α_T`` is kept too. A domain with no row in a step's batch
has no gradient that step: ``W_i = 0`` and it adds nothing to the update (the public code
reuses a stale gradient instead). Each domain's gradient comes from a forward and backward pass
over its own rows only, as in the code, so a step costs a plain step's FLOPs plus the k x k
inner products of full gradients. :class:`DoGE` is a :class:`~chameleon_mix.train.Reweighter`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .train import token_losses

SCORE_CLIP = (0.0, 5.0)  # DoGE's dw_min, dw_max


def doge_scores(gram: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Clipped generalisation estimates ``W`` (k,) from the gradients' Gram matrix.

    ``gram``: (k, k) inner products ``⟨g_i, g_j⟩`` (rows and columns of absent domains are 0);
    ``present``: (k,) bool, the domains with rows in the batch.
    """
    norms = np.sqrt(np.clip(np.diag(gram), 0.0, None))
    to_others = gram.sum(axis=1) - np.diag(gram)
    scores = to_others / (norms[present].mean() + 1e-6)
    return np.where(present, np.clip(scores, *SCORE_CLIP), 0.0)


def doge_update(
    log_weights: np.ndarray, scores: np.ndarray, step_size: float, mu: float
) -> np.ndarray:
    """Mirror-descent step ``log α + η W / μ``, renormalised: returns the new ``log α`` (k,)."""
    updated = log_weights + step_size * scores / mu
    return updated - (updated.max() + np.log(np.exp(updated - updated.max()).sum()))


class DoGE:
    """The DoGE reweighter for :func:`~chameleon_mix.train.train`, over ``k`` domains."""

    def __init__(self, k: int, mu: float = 0.01, grad_clip: float = 1.0, lr: float | None = None):
        self.mu, self.grad_clip, self.lr = mu, grad_clip, lr
        self.log_weights = np.full(k, -np.log(k))
        self.trajectory: list[list[float]] = []  # α_t after each step's update
        self.gradient_flops = 0.0  # inner products and the weighted sum of full gradients

    def backward(self, model, tokens, domains, lr, micro_batch_size, autocast) -> float:
        # Each domain's passes skip DDP (some ranks may hold none of its rows); the ranks'
        # per-domain gradients are all-reduced below, before any norm or inner product.
        model = distributed.local_module(model)
        params = [p for p in model.parameters() if p.requires_grad]
        k = len(self.log_weights)
        gradients = torch.zeros(k, sum(p.numel() for p in params), device=tokens.device)
        local_rows = np.bincount(domains.cpu().numpy(), minlength=k).astype(np.float64)
        batch_rows = distributed.all_reduce_sum(local_rows).astype(np.int64)
        present = batch_rows > 0
        loss_sum = 0.0
        for i in map(int, np.flatnonzero(present)):
            rows, domain_tokens = tokens[domains == i], int(batch_rows[i]) * (tokens.size(1) - 1)
            for chunk in rows.split(micro_batch_size) if len(rows) else []:  # none on this rank
                losses = token_losses(model, chunk, autocast)
                (losses.sum() / domain_tokens).backward()
                loss_sum += losses.sum().item()
            gradients[i] = torch.cat(
                [
                    (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                    for p in params
                ]
            )
            model.zero_grad(set_to_none=True)
        distributed.all_reduce_sum_(gradients)
        for i in map(int, np.flatnonzero(present)):  # each domain's batch gradient, clipped
            gradients[i] *= min(1.0, self.grad_clip / (gradients[i].norm().item() + 1e-6))

        gram = (gradients @ gradients.T).double().cpu().numpy()
        scores = doge_scores(gram, present)
        step_size = self.lr if self.lr is not None else lr
        self.log_weights = doge_update(self.log_weights, scores, step_size, self.mu)
        weights = np.exp(self.log_weights)
        self.trajectory.append(weights.tolist())

        combined = torch.tensor(weights, dtype=torch.float32, device=tokens.device) @ gradients
        for p, grad in zip(params, combined.split([p.numel() for p in params])):
            p.grad = grad.view_as(p).clone()
        self.gradient_flops += 2.0 * gradients.size(1) * (k * k + k)
        return loss_sum / tokens[:, 1:].numel()

    def settings(self) -> dict:
        return {
            "method": "doge",
            "domains": len(self.log_weights),
            "mu": self.mu,
            "lr": self.lr,
            "grad_clip": self.grad_clip,
        }

    def state_dict(self) -> dict:
        return {
            "log_weights": self.log_weights.tolist(),
            "trajectory": self.trajectory,
            "gradient_flops": self.gradient_flops,
        }

    def load_state_dict(self, state: dict) -> None:
        self.log_weights = np.array(state["log_weights"])
        self.trajectory = [list(w) for w in state["trajectory"]]
        self.gradient_flops = state["gradient_flops"]

    def summary(self, domains: list[str]) -> dict:
        average = np.mean(self.trajectory, axis=0)
        return {
            "method": "doge",
            "mu": self.mu,
            "lr": self.lr,
            "domain_grad_clip": self.grad_clip,
            "domains": domains,
            "average": dict(zip(domains, average.tolist())),
            "last": dict(zip(domains, np.exp(self.log_weights).tolist())),
            "trajectory": self.trajectory,
            "gradient_flops": self.gradient_flops,
        }


def train_doge(
    tokens: dict[str, str | Path],
    tokenizer_dir: str | Path,
    model: str | dict,
    train_config: dict,
    out_dir: str | Path,
    mu: float = 0.01,
    lr: float | None = None,
    device: str | None = None,
) -> dict:
    """Train DoGE's proxy on ``tokens`` (domain -> token directory); each domain's gradient is
    clipped to the schedule's ``grad_clip``. The weights are in the summary's ``reweighting``."""
    from .train import TrainConfig, train_from_scratch

    grad_clip = TrainConfig(**train_config).grad_clip
    return train_from_scratch(
        tokens,
        tokenizer_dir,
        model,
        train_config,
        out_dir,
        device=device,
        reweighter=DoGE(len(tokens), mu, grad_clip, lr),
    )


def doge_mixture(path: str | Path, domains: list[str], proxy_log: str | Path) -> dict:
    """DoGE's averaged weights and their cost: the proxy's training (its per-domain forward and
    backward passes cover each token once) plus the inner products of per-domain gradients."""
    from .flops import training_flops
    from .mixtures import check_weights, write_mixture

    log = json.loads(Path(proxy_log).read_text())
    run = log["reweighting"]
    weights = check_weights(run["average"], domains, f"DoGE weights in {proxy_log}")
    proxy_flops = training_flops(log["model"], log["tokens_total"], log["config"]["seq_len"])
    return write_mixture(
        path,
        "doge",
        weights,
        compute_flops=proxy_flops + run["gradient_flops"],
        proxy_flops=proxy_flops,
        gradient_flops=run["gradient_flops"],
        last_weights=run["last"],
        steps=len(run["trajectory"]),
        mu=run["mu"],
        lr=run["lr"],
    )
