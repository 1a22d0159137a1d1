"""DoGE (Fan, Pagliardini & Jaggi, ICML 2024, arXiv:2310.15393): domain weights from how well
each domain's gradient generalises.

The proxy trains from scratch on batches drawn uniformly over the k domains. Per step t, with
``g_i`` the gradient of the mean token loss over the batch's rows of domain i (clipped to norm
``grad_clip``, DoGE's own per-domain clip: the public code's ``max_grad_norm``, 5.0), the
paper's Algorithm 1 for universal generalisation, in the form of the public code
(``src/trainer.py``, ``update_domain_weights``):

    W_i = ⟨g_i, g_target⟩ / mean_j ‖g_j‖             generalisation estimate of domain i
    W_i ← clip(W_i, 0, 5)                             the code's ``dw_min``, ``dw_max``
    log α_t = log α_{t−1} + η_t · W / μ,  α_t = softmax(log α_t)
    θ_t = AdamW step with the gradient Σ_i α_t[i] g_i

``target`` says what the domains generalise to:

- ``mix`` (the official universal-generalisation config, ``tgt_domains: mix``): ``g_target``
  is the gradient on a held-out uniform slice of the batch, which the update leaves out. The
  code adds a ``mix`` source (equal windows of every domain, cut from the training data) to
  the uniform sampler as a (k+1)-th domain, so one row in k + 1 is a ``mix`` row; here the
  batch is already uniform over the domains, and its rows ``k, 2k+1, 3k+2, …`` (every
  (k+1)-th, counted over the whole batch so that the split is the same on any number of
  ranks) are the held-out slice. Its gradient is clipped like a domain's, as in the code.
- ``others`` (the code's branch for training domains = target domains):
  ``g_target = Σ_{j≠i} g_j``, every row trains.

``μ`` (``mu``) is the Bregman coefficient, 0.01 in DoGE's configuration; ``η_t`` is the proxy's
learning rate at step t, as in the code, unless a fixed ``lr`` is given. The result is the
average ``(1/T) Σ_t α_t``; the last ``α_T`` is kept too. A domain with no training row in a
step's batch has no gradient that step: ``W_i = 0`` and it adds nothing to the update (the
public code reuses a stale gradient instead). Each gradient comes from a forward and backward
pass over its own rows only, as in the code, so a step costs a plain step's FLOPs plus the
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
TARGETS = ("mix", "others")


def held_out_rows(rows: int, k: int) -> torch.Tensor:
    """Which of this rank's ``rows`` rows form the ``mix`` target's held-out slice (bool
    (rows,)): every (k+1)-th row of the global batch, whose rows the ranks hold in order."""
    first = distributed.rank() * rows  # every rank holds as many consecutive rows
    return (torch.arange(first, first + rows) % (k + 1)) == k


def doge_scores(to_target: np.ndarray, norms: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Clipped generalisation estimates ``W`` (k,): ``to_target`` (k,) the inner products
    ``⟨g_i, g_target⟩``, ``norms`` (k,) the ``‖g_i‖``, ``present`` (k,) bool the domains with
    training rows in the batch (the others score 0)."""
    scores = to_target / (norms[present].mean() + 1e-6)
    return np.where(present, np.clip(scores, *SCORE_CLIP), 0.0)


def doge_update(
    log_weights: np.ndarray, scores: np.ndarray, step_size: float, mu: float
) -> np.ndarray:
    """Mirror-descent step ``log α + η W / μ``, renormalised: returns the new ``log α`` (k,)."""
    updated = log_weights + step_size * scores / mu
    return updated - (updated.max() + np.log(np.exp(updated - updated.max()).sum()))


class DoGE:
    """The DoGE reweighter for :func:`~chameleon_mix.train.train`, over ``k`` domains.

    ``grad_clip`` clips each domain's (and the held-out slice's) gradient; the trainer's
    schedule still clips the combined step with its own ``grad_clip``.
    """

    def __init__(
        self,
        k: int,
        mu: float = 0.01,
        grad_clip: float = 5.0,
        lr: float | None = None,
        target: str = "mix",
    ):
        if target not in TARGETS:
            raise ValueError(f"DoGE target {target!r} is not one of {', '.join(TARGETS)}")
        self.mu, self.grad_clip, self.lr, self.target = mu, grad_clip, lr, target
        self.log_weights = np.full(k, -np.log(k))
        self.trajectory: list[list[float]] = []  # α_t after each step's update
        self.gradient_flops = 0.0  # inner products and the weighted sum of full gradients

    def backward(self, model, tokens, domains, lr, micro_batch_size, autocast) -> float:
        # Each gradient's passes skip DDP (some ranks may hold none of its rows); the ranks'
        # gradients are all-reduced below, before any norm or inner product.
        model = distributed.local_module(model)
        params = [p for p in model.parameters() if p.requires_grad]
        k = len(self.log_weights)
        mix = self.target == "mix"
        held_out = held_out_rows(len(tokens), k).to(domains.device) if mix else None
        # Row i < k: domain i's training rows; row k (target mix): the held-out slice.
        groups = [domains == i for i in range(k)]
        if mix:
            groups = [rows & ~held_out for rows in groups] + [held_out]
        local_rows = np.array([int(rows.sum()) for rows in groups], dtype=np.float64)
        batch_rows = distributed.all_reduce_sum(local_rows).astype(np.int64)
        if mix and batch_rows[k] == 0:
            batch = int(distributed.all_reduce_sum(np.array([float(len(tokens))]))[0])
            raise ValueError(
                f"DoGE's target 'mix' holds out every {k + 1}th row of a batch for the "
                f"generalisation gradient, and a batch of {batch} rows has none; raise "
                f"batch_size to at least {k + 1} or set baselines.doge.target: others"
            )
        gradients = torch.zeros(len(groups), sum(p.numel() for p in params), device=tokens.device)
        loss_sum = 0.0
        for g in map(int, np.flatnonzero(batch_rows)):
            rows, group_tokens = tokens[groups[g]], int(batch_rows[g]) * (tokens.size(1) - 1)
            for chunk in rows.split(micro_batch_size) if len(rows) else []:  # none on this rank
                losses = token_losses(model, chunk, autocast)
                (losses.sum() / group_tokens).backward()
                loss_sum += losses.sum().item()
            gradients[g] = torch.cat(
                [
                    (p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                    for p in params
                ]
            )
            model.zero_grad(set_to_none=True)
        distributed.all_reduce_sum_(gradients)
        for g in map(int, np.flatnonzero(batch_rows)):  # each batch gradient, clipped
            gradients[g] *= min(1.0, self.grad_clip / (gradients[g].norm().item() + 1e-6))

        present = batch_rows[:k] > 0
        domain_gradients = gradients[:k]
        if mix:
            to_target = domain_gradients @ gradients[k]
            norms = domain_gradients.norm(dim=1)
            products = 2 * k  # ⟨g_i, g_mix⟩ and ‖g_i‖
        else:
            gram = domain_gradients @ domain_gradients.T
            to_target = gram.sum(dim=1) - gram.diagonal()
            norms = gram.diagonal().clamp(min=0).sqrt()
            products = k * k
        scores = doge_scores(
            to_target.double().cpu().numpy(), norms.double().cpu().numpy(), present
        )
        step_size = self.lr if self.lr is not None else lr
        self.log_weights = doge_update(self.log_weights, scores, step_size, self.mu)
        weights = np.exp(self.log_weights)
        self.trajectory.append(weights.tolist())

        combined = torch.tensor(weights, dtype=torch.float32, device=tokens.device)
        combined = combined @ domain_gradients
        for p, grad in zip(params, combined.split([p.numel() for p in params])):
            p.grad = grad.view_as(p).clone()
        self.gradient_flops += 2.0 * gradients.size(1) * (products + k)
        return loss_sum / tokens[:, 1:].numel()

    def settings(self) -> dict:
        return {
            "method": "doge",
            "domains": len(self.log_weights),
            "mu": self.mu,
            "lr": self.lr,
            "grad_clip": self.grad_clip,
            "target": self.target,
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
            "target": self.target,
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
    mu: float,
    lr: float | None,
    grad_clip: float,
    target: str,
    device: str | None = None,
) -> dict:
    """Train DoGE's proxy on ``tokens`` (domain -> token directory); each domain's gradient is
    clipped to ``grad_clip`` (the schedule's ``grad_clip`` clips the combined step). The
    weights are in the summary's ``reweighting``."""
    from .train import train_from_scratch

    return train_from_scratch(
        tokens,
        tokenizer_dir,
        model,
        train_config,
        out_dir,
        device=device,
        reweighter=DoGE(len(tokens), mu=mu, grad_clip=grad_clip, lr=lr, target=target),
    )


def doge_mixture(path: str | Path, domains: list[str], proxy_log: str | Path) -> dict:
    """DoGE's averaged weights and their cost: the proxy's training (its per-domain and held-out
    forward and backward passes cover each token once) plus the inner products of gradients."""
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
        target=run["target"],
        domain_grad_clip=run["domain_grad_clip"],
    )
