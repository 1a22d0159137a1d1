"""Train a causal LM on a weighted mixture of domains: one loop for the proxy and base models.

Data: each domain's train split is its token file (:mod:`chameleon_mix.tokens`, written once
per domain), memory-mapped: one stream of token ids, documents separated by EOS, of which a job
holds only the pages its windows touch; nothing is tokenized here. A training example is a
random window of ``seq_len + 1`` tokens from a domain drawn from the mixture weights, so
nothing is padded. The batch of step ``t`` depends
only on ``(seed, t)``; with no dropout, a run resumed from a checkpoint therefore reaches the
same state as one that was never interrupted.

Optimisation: AdamW (weight decay on matrices only), linear warmup then cosine decay to
``min_lr``, gradient clipping, bf16 autocast on CUDA and float32 on CPU.

Data parallelism (:mod:`chameleon_mix.distributed`): under ``torchrun`` every rank draws the
same global batch of step ``t`` and trains on its own ``batch_size / ranks`` rows, in
micro-batches whose gradients DDP all-reduces on the last one only (``no_sync`` before), so the
batches do not depend on the number of ranks. Rank 0 alone writes checkpoints, logs and the
model; it picks the resume point and every rank loads it. One process is the plain loop.

Speed on CUDA (each a :class:`TrainConfig` switch, off on the CPU): the model and its loss
(:class:`TokenLoss`) compiled, the vocabulary padded to a multiple of 64, the LM head and loss
chunked; the losses stay on the device and are read back every ``log_every`` steps; the next
batch is copied from pinned memory while the device still runs the current step.

Reweighting (DoReMi, DoGE): ``train(..., reweighter=r)`` lets ``r`` form each step's gradient
from the same batch, through :class:`Reweighter`; everything else (batches, schedule,
clipping, checkpoints, resume) stays this one loop. ``r``'s state is saved in every checkpoint
and restored on resume, so a resumed reweighted run equals an uninterrupted one.

Checkpoints (``out_dir/checkpoints/step-N``) hold the model, the trainer state (optimizer,
step, tokens seen, the loss log so far, the reweighter's state) as plain data that
``torch.load(weights_only=True)`` reads, and the run's fingerprint (:func:`run_fingerprint`).
A run resumes from its newest checkpoint only when the fingerprints are equal; checkpoints of
another run are moved aside to ``checkpoints.stale-N`` and the run starts afresh. A checkpoint
that does not read back is moved aside to ``step-N.broken-M`` and the one before is tried. A
new resume point replaces the previous one only once it has been read back.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.checkpoint import checkpoint

from . import distributed
from .checkpoints import (
    checkpoint_step,
    differences,
    latest_checkpoint,
    read_checkpoint,
    resume_point,
    run_fingerprint,
    save_checkpoint,
    stream_digest,
)
from .io import atomic_path, write_json
from .model import has_plain_head, pad_vocabulary, unpad_vocabulary, unpadded


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 128
    micro_batch_size: int | None = None  # gradient accumulation when smaller than batch_size
    seq_len: int = 512
    lr: float = 5e-4
    min_lr: float = 1e-4
    warmup_steps: int = 100
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    seed: int = 0
    checkpoints: list[int] = field(default_factory=list)  # steps kept for good
    checkpoint_every: int = 500  # resume points; only the latest is kept
    log_every: int = 10  # steps between reading the losses back from the device
    # Speed-ups, None = on for CUDA only (each changes float rounding, not what is computed):
    compile: bool | None = None  # torch.compile the model and its loss
    pad_vocab: bool | None = None  # the embedding matrix padded to a multiple of 64 rows
    loss_chunk: int | None = None  # LM head + loss on this many tokens at a time; 0 = at once


class Reweighter(Protocol):
    """Forms a step's gradient from its batch in place of the plain mean token loss.

    ``backward`` gets the model (the trainer's :class:`TokenLoss`, maybe compiled and in DDP:
    :func:`token_losses` scores with it), this rank's rows of the batch ``tokens``
    (n, seq_len + 1) int64, each row's domain index ``domains`` (n,) int64 (into the domain
    order of ``train``), the step's learning rate, the micro-batch size and the autocast
    context; it leaves the whole batch's gradient in the parameters' ``.grad`` (reducing over
    the ranks through :mod:`~chameleon_mix.distributed` what it computes from its rows) and
    returns its rows' mean token loss for the log (the trainer averages it over the ranks). The trainer then clips and
    steps as usual. ``settings`` (method and hyperparameters) go into the run's fingerprint;
    ``state_dict``/``load_state_dict`` carry its state through checkpoints as plain data
    (numbers, strings, lists, dicts); ``summary(domains)`` goes into the training log under
    ``reweighting``.
    """

    def backward(self, model, tokens, domains, lr: float, micro_batch_size: int, autocast): ...

    def settings(self) -> dict: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def summary(self, domains: list[str]) -> dict: ...


LOSS_CHUNK_TOKENS = 8192  # tokens per piece of the chunked loss on CUDA (loss_chunk=None)


class TokenLoss(torch.nn.Module):
    """Next-token cross-entropy of a causal LM at every position: ``tokens`` (n, T + 1) ->
    losses (n, T) in float32, or their mean with ``reduction="mean"``. The one module the
    trainer compiles and wraps in DDP, so the loss is compiled with the model.

    ``vocab_size``: the real vocabulary when the model's embedding matrix was padded
    (:func:`~chameleon_mix.model.pad_vocabulary`): the padded logits get -inf, so they are never
    predicted. ``chunk_tokens``: the LM head and the cross-entropy run on that many positions at
    a time, each piece recomputed in the backward pass (activation checkpointing), so the float32
    logits of the whole batch never exist at once; the per-token losses are still returned
    (DoReMi needs them). Neither: the model's own logits, as before.
    """

    def __init__(self, model, vocab_size: int | None = None, chunk_tokens: int | None = None):
        super().__init__()
        self.model = model
        self.chunk_tokens = chunk_tokens
        padded = model.config.vocab_size
        self.direct = not chunk_tokens and vocab_size in (None, padded)
        if not self.direct:
            mask = torch.zeros(padded)
            mask[vocab_size or padded :] = float("-inf")
            self.register_buffer("logit_mask", mask, persistent=False)

    def forward(self, tokens: torch.Tensor, reduction: str = "none") -> torch.Tensor:
        inputs, targets = tokens[:, :-1], tokens[:, 1:].reshape(-1)
        if self.direct:
            logits = self.model(inputs).logits
            losses = torch.nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.size(-1)), targets, reduction=reduction
            )
            return losses if reduction == "mean" else losses.view(tokens.size(0), -1)
        hidden = self.model.base_model(inputs).last_hidden_state.flatten(0, 1)
        chunk = self.chunk_tokens or len(hidden)
        recompute = len(hidden) > chunk and torch.is_grad_enabled()
        losses = torch.cat(
            [
                checkpoint(self.piece_losses, h, t, use_reentrant=False)
                if recompute
                else self.piece_losses(h, t)
                for h, t in zip(hidden.split(chunk), targets.split(chunk))
            ]
        )
        return losses.mean() if reduction == "mean" else losses.view(tokens.size(0), -1)

    def piece_losses(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        head = self.model.get_output_embeddings()
        logits = torch.nn.functional.linear(hidden, head.weight, self.logit_mask)
        return torch.nn.functional.cross_entropy(logits.float(), targets, reduction="none")


def token_losses(model, tokens: torch.Tensor, autocast) -> torch.Tensor:
    """Next-token cross-entropy of every position: ``tokens`` (n, T + 1) -> losses (n, T).
    ``model``: a causal LM, or the trainer's :class:`TokenLoss` (compiled, in DDP or not)."""
    if hasattr(model, "config"):  # a Hugging Face model, not yet its loss
        model = TokenLoss(model)
    with autocast:
        return model(tokens)


def sample_batch(
    streams: list[np.ndarray], probs: np.ndarray, n: int, seq_len: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` windows of ``seq_len + 1`` tokens; returns (tokens (n, seq_len+1), domain index (n,))."""
    domains = rng.choice(len(streams), size=n, p=probs)
    starts = [rng.integers(0, len(streams[d]) - seq_len) for d in domains]
    tokens = np.stack([streams[d][s : s + seq_len + 1] for d, s in zip(domains, starts)])
    return tokens, domains


def on_cuda(setting: bool | None, device: torch.device) -> bool:
    """A speed-up's setting, ``None`` meaning on for CUDA only."""
    return device.type == "cuda" if setting is None else setting


def training_loss(model, cfg: TrainConfig, device: torch.device):
    """The loss module the trainer steps on ``device``: ``(net, vocab_size)``.

    ``model`` (on ``device``) gets its vocabulary padded in place (``vocab_size``: the real one,
    None when not padded); ``net`` is its :class:`TokenLoss`, chunked, in DDP across ranks and
    compiled as ``cfg`` and the device say.
    """
    plain_head = has_plain_head(model)  # else the model's own logits, unpadded and unchunked
    pad = plain_head and on_cuda(cfg.pad_vocab, device)
    vocab_size = pad_vocabulary(model) if pad else None
    chunk = cfg.loss_chunk
    if chunk is None:
        chunk = LOSS_CHUNK_TOKENS if device.type == "cuda" else 0
    chunk = chunk if plain_head else 0
    net = distributed.data_parallel(TokenLoss(model, vocab_size, chunk).to(device), device)
    return (torch.compile(net) if on_cuda(cfg.compile, device) else net), vocab_size


def learning_rate(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * min(progress, 1.0)))


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device):
    decay = [p for p in model.parameters() if p.requires_grad and p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() < 2]
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.95), fused=device.type == "cuda")


@dataclass
class Mixture:
    """The domains a run samples from, in order: their token streams, sampling probabilities
    (the weights, normalised) and the digests of their data (for the fingerprint)."""

    names: list[str]
    streams: list[np.ndarray]
    probs: np.ndarray
    digests: dict[str, str]

    @classmethod
    def of(cls, streams, weights, data_digests, seq_len: int) -> Mixture:
        """``streams`` mixed by ``weights``, after checking both (and ``data_digests``, hashed
        from the streams when None) name the same domains, each with one window of tokens."""
        names = list(streams)
        missing = sorted(set(names) ^ set(weights))
        if missing:
            raise ValueError(f"weights and token streams disagree on domains: {missing}")
        if data_digests is None:
            data_digests = {name: stream_digest(streams[name]) for name in names}
        missing = sorted(set(names) ^ set(data_digests))
        if missing:
            raise ValueError(f"data_digests and token streams disagree on domains: {missing}")
        for name in names:
            if len(streams[name]) <= seq_len + 1:
                raise ValueError(
                    f"domain {name!r} has only {len(streams[name])} training tokens, fewer than "
                    f"one window of seq_len={seq_len}; add documents or lower seq_len"
                )
        probs = np.array([weights[n] for n in names], dtype=np.float64)
        return cls(
            names,
            [streams[n] for n in names],
            probs / probs.sum(),
            {name: data_digests[name] for name in names},
        )

    @property
    def weights(self) -> dict[str, float]:
        return dict(zip(self.names, self.probs.tolist()))

    def planned_epochs(self, cfg: TrainConfig) -> dict[str, float]:
        """How many times a run of ``cfg`` is expected to read each domain's train split."""
        tokens = cfg.steps * cfg.batch_size * cfg.seq_len
        return {
            name: float(p * tokens / len(stream))
            for name, p, stream in zip(self.names, self.probs, self.streams)
        }


@dataclass(frozen=True)
class Ranks:
    """This process's share of every batch: the ``rows`` of the global batch it trains on, in
    ``accumulation`` micro-batches of ``micro`` rows; ``main`` on rank 0, the one that writes."""

    world: int
    main: bool
    rows: slice
    micro: int
    accumulation: int

    @classmethod
    def of(cls, cfg: TrainConfig) -> Ranks:
        world = distributed.world_size()
        share = cfg.batch_size // world
        micro = min(cfg.micro_batch_size or share, share)
        if share % micro:
            raise ValueError(
                f"micro_batch_size {micro} does not divide the {share} rows of a batch that each "
                f"rank trains on ({world} ranks); pick one that divides batch_size / ranks"
            )
        rows = distributed.rows(cfg.batch_size)
        return cls(world, distributed.is_main(), rows, micro, share // micro)


@dataclass
class Run:
    """A training run's whole state: what it trains, on what, where it stands, what it logged.

    ``step`` counts the steps done; ``resumed_from`` is the step the run (re)started at.
    ``pending`` holds the (step, lr, loss, grad norm) of the steps done since the log was last
    read back from the device, loss and grad norm still device tensors.
    """

    cfg: TrainConfig
    out_dir: Path
    fingerprint: dict
    metadata: dict | None
    mixture: Mixture
    ranks: Ranks
    device: torch.device
    autocast: torch.autocast
    model: torch.nn.Module
    tokenizer: object
    reweighter: Reweighter | None
    net: torch.nn.Module  # the loss module that is stepped: see training_loss
    vocab_size: int | None  # the real vocabulary when the model's was padded
    optimizer: torch.optim.Optimizer
    bar: object  # the progress bar over the steps left; iterating it runs them
    resumed_from: int
    step: int
    tokens_seen: np.ndarray  # per domain
    log: list[dict]
    pending: list[tuple] = field(default_factory=list)
    started_at: float = field(default_factory=time.perf_counter)
    tokens_per_second: float | None = None


def train(
    model: torch.nn.Module,
    streams: dict[str, np.ndarray],
    weights: dict[str, float],
    cfg: TrainConfig,
    out_dir: str | Path,
    tokenizer=None,
    device: str | None = None,
    stop_after: int | None = None,
    metadata: dict | None = None,
    reweighter: Reweighter | None = None,
    data_digests: dict[str, str] | None = None,
) -> dict:
    """Train ``model`` on ``streams`` mixed by ``weights``; write ``out_dir/model`` and logs.

    Checkpoints go to ``out_dir/checkpoints/step-N``; the newest one of the same run (equal
    :func:`run_fingerprint`) is resumed from. ``data_digests`` (domain -> digest of its training
    data, e.g. its token file's sha256) go into the fingerprint; without them the streams are
    hashed. ``metadata`` (e.g. the model's spec or origin) goes into the fingerprint and the log.
    ``stop_after`` ends the run early after that step (as a killed job would), for tests.
    ``reweighter`` (DoReMi, DoGE) forms each step's gradient instead of the mean token loss.
    Returns the training summary also written to ``out_dir/train_log.json``.
    """
    mixture = Mixture.of(streams, weights, data_digests, cfg.seq_len)
    if distributed.is_main():
        planned = mixture.planned_epochs(cfg)
        print(
            "epochs of each train split: " + ", ".join(f"{d} {e:.2f}" for d, e in planned.items())
        )
    run = start(model, mixture, cfg, Path(out_dir), tokenizer, device, metadata, reweighter)
    upcoming = next_batch(run) if run.step < cfg.steps else None
    for _ in run.bar:  # one iteration per step left; train_step advances run.step
        train_step(run, *upcoming)
        if run.step < cfg.steps:  # copied to the device while it still runs this step
            upcoming = next_batch(run)
        kept = run.step in cfg.checkpoints or run.step % cfg.checkpoint_every == 0
        stopping = stop_after is not None and run.step >= stop_after
        if kept or stopping or run.step == cfg.steps or run.step % cfg.log_every == 0:
            read_back_log(run)
        if run.ranks.main and (kept or run.step == cfg.steps):
            write_checkpoint(run)
        if stopping:
            distributed.barrier()
            return {"stopped_at": run.step}
    return finish(run)


def start(
    model: torch.nn.Module,
    mixture: Mixture,
    cfg: TrainConfig,
    out_dir: Path,
    tokenizer,
    device: str | None,
    metadata: dict | None,
    reweighter: Reweighter | None,
) -> Run:
    """The run on this rank's device, at the newest checkpoint of the same run or at step 0."""
    fingerprint = run_fingerprint(
        model, mixture.weights, cfg, tokenizer, mixture.digests, reweighter, metadata
    )
    device = distributed.setup(device)
    ranks = Ranks.of(cfg)
    torch.manual_seed(cfg.seed)
    model.to(device).train()
    state = resume(out_dir, fingerprint, model, reweighter)
    # Padded (training_loss) only after resuming: checkpoints hold the model unpadded.
    net, vocab_size = training_loss(model, cfg, device)
    optimizer = make_optimizer(model, cfg, device)
    if state is None:
        state = {"step": 0, "tokens": [0] * len(mixture.names), "log": []}
    else:
        optimizer.load_state_dict(state["optimizer"])
    return Run(
        cfg=cfg,
        out_dir=out_dir,
        fingerprint=fingerprint,
        metadata=metadata,
        mixture=mixture,
        ranks=ranks,
        device=device,
        autocast=torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"),
        model=model,
        tokenizer=tokenizer,
        reweighter=reweighter,
        net=net,
        vocab_size=vocab_size,
        optimizer=optimizer,
        bar=progress_bar(state["step"], cfg.steps, device, ranks),
        resumed_from=state["step"],
        step=state["step"],
        tokens_seen=np.array(state["tokens"], dtype=np.int64),
        log=state["log"],  # the loss curve so far: the log covers every step once
    )


def resume(out_dir: Path, fingerprint: dict, model, reweighter: Reweighter | None) -> dict | None:
    """Load the newest checkpoint of the run with ``fingerprint`` into ``model`` and
    ``reweighter``; returns its trainer state, or None to start afresh.

    Rank 0 alone picks the resume point (it may move checkpoints aside); every rank loads it.
    """
    found = resume_point(out_dir, fingerprint) if distributed.is_main() else None
    path = distributed.broadcast(None if found is None else str(found[0]))
    if path is None:
        return None
    if found is None:
        found = (Path(path), *read_checkpoint(Path(path)))
        changed = differences(found[2].get("fingerprint"), fingerprint)
        if changed:
            raise RuntimeError(
                f"rank {distributed.rank()} computes another run than the checkpoint "
                f"{path} of rank 0 (it differs in {', '.join(changed)})"
            )
    path, model_state, state = found
    model.load_state_dict(model_state)
    if reweighter is not None:
        reweighter.load_state_dict(state["reweighter"])
    if distributed.is_main():
        print(f"resuming from {path} (step {state['step']})", flush=True)
    return state


def progress_bar(start: int, steps: int, device: torch.device, ranks: Ranks):
    """The steps from ``start`` to ``steps``, shown on rank 0."""
    from tqdm.auto import tqdm

    if ranks.main:
        threads = torch.get_num_threads()
        print(f"device {device} x {ranks.world} ranks, {threads} CPU threads", flush=True)
    return tqdm(
        range(start, steps), initial=start, total=steps, desc="train", disable=not ranks.main
    )


def next_batch(run: Run) -> tuple[torch.Tensor, np.ndarray]:
    """The batch of step ``run.step``: this rank's rows on the device (copied from pinned memory
    without waiting, while the device still runs the step before), and the global batch's
    domains."""
    cfg = run.cfg
    rng = np.random.default_rng([cfg.seed, run.step])
    batch, domains = sample_batch(
        run.mixture.streams, run.mixture.probs, cfg.batch_size, cfg.seq_len, rng
    )
    rows = torch.from_numpy(batch[run.ranks.rows].astype(np.int64))
    rows = rows.pin_memory() if run.device.type == "cuda" else rows
    return rows.to(run.device, non_blocking=True), domains


def train_step(run: Run, batch: torch.Tensor, domains: np.ndarray) -> None:
    """One optimizer step on this rank's rows ``batch`` of the global batch of ``domains``;
    its loss and grad norm join ``run.pending``, still on the device."""
    lr = learning_rate(run.step, run.cfg)
    for group in run.optimizer.param_groups:
        group["lr"] = lr
    np.add.at(run.tokens_seen, domains, run.cfg.seq_len)
    loss = backward(run, batch, domains, lr)
    grad_norm = torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.cfg.grad_clip)
    run.optimizer.step()
    run.optimizer.zero_grad(set_to_none=True)
    run.step += 1
    run.pending.append((run.step, lr, loss, grad_norm.detach()))


def backward(run: Run, batch: torch.Tensor, domains: np.ndarray, lr: float) -> torch.Tensor:
    """Leave the global batch's gradient in the parameters' ``.grad``; returns this rank's mean
    token loss (float64, on the device). The reweighter forms the gradient when there is one;
    else the mean token loss does, over micro-batches that DDP all-reduces on the last only."""
    ranks = run.ranks
    if run.reweighter is not None:
        rows = torch.from_numpy(domains[ranks.rows]).to(run.device)
        loss = run.reweighter.backward(run.net, batch, rows, lr, ranks.micro, run.autocast)
        return torch.as_tensor(loss, dtype=torch.float64, device=run.device)
    loss_sum = torch.zeros((), dtype=torch.float64, device=run.device)
    for i, chunk in enumerate(batch.split(ranks.micro)):
        with distributed.sync_gradients(run.net, last=i == ranks.accumulation - 1):
            with run.autocast:
                loss = run.net(chunk, reduction="mean")
            (loss / ranks.accumulation).backward()
        loss_sum = loss_sum + loss.detach().double() / ranks.accumulation
    return loss_sum


def read_back_log(run: Run) -> None:
    """Log the pending steps: their losses (averaged over the ranks) and grad norms read back
    from the device, one synchronisation per ``log_every`` steps, not one per micro-batch."""
    if not run.pending:
        return
    losses = distributed.all_reduce_sum_(torch.stack([loss for _, _, loss, _ in run.pending]))
    norms = torch.stack([norm for _, _, _, norm in run.pending]).double()
    losses = (losses / run.ranks.world).tolist()
    for (step, lr, _, _), loss, norm in zip(run.pending, losses, norms.tolist()):
        run.log.append({"step": step, "loss": loss, "lr": lr, "grad_norm": norm})
    run.pending.clear()
    tokens = (run.step - run.resumed_from) * run.cfg.batch_size * run.cfg.seq_len
    run.tokens_per_second = tokens / (time.perf_counter() - run.started_at)
    run.bar.set_postfix(loss=f"{run.log[-1]['loss']:.3f}", tok_s=f"{run.tokens_per_second:,.0f}")


def write_checkpoint(run: Run) -> None:
    """Save the run at its current step as ``checkpoints/step-N``, then delete the resume point
    before it unless it is a requested checkpoint: a resume point only costs disk once the next
    one has been written and read back."""
    checkpoint_dir = run.out_dir / "checkpoints"
    previous = latest_checkpoint(checkpoint_dir)
    state = {
        "fingerprint": run.fingerprint,
        "step": run.step,
        "tokens": run.tokens_seen.tolist(),
        "log": run.log,
        "optimizer": run.optimizer.state_dict(),
    }
    if run.reweighter is not None:
        state["reweighter"] = run.reweighter.state_dict()
    with unpadded(run.model, run.vocab_size):
        save_checkpoint(checkpoint_dir / f"step-{run.step}", run.model, run.tokenizer, state)
    if previous is not None and checkpoint_step(previous) not in run.cfg.checkpoints:
        shutil.rmtree(previous)


def finish(run: Run) -> dict:
    """Write the trained model and the training log (rank 0); returns the log."""
    if run.vocab_size is not None:  # the caller gets the model as its tokenizer sees it
        unpad_vocabulary(run.model, run.vocab_size)
    summary = training_summary(run)
    if run.ranks.main:
        with atomic_path(run.out_dir / "model", directory=True) as tmp:
            run.model.save_pretrained(tmp)
            if run.tokenizer is not None:
                run.tokenizer.save_pretrained(tmp)
            (tmp / "training.json").write_text(
                json.dumps({k: v for k, v in summary.items() if k != "log"}, indent=2)
            )
        write_json(run.out_dir / "train_log.json", summary)
    distributed.barrier()  # no rank goes on (e.g. to evaluate) before the model is written
    return summary


def training_summary(run: Run) -> dict:
    """What ``train_log.json`` holds: the settings, the tokens seen, the whole loss log."""
    names, tokens_seen = run.mixture.names, run.tokens_seen
    train_tokens = [len(stream) for stream in run.mixture.streams]
    return {
        "config": asdict(run.cfg),
        "domains": names,
        "weights": run.mixture.weights,
        "tokens_per_domain": dict(zip(names, tokens_seen.tolist())),
        "tokens_total": int(tokens_seen.sum()),
        # how many times the run read each domain's train split, on average
        "train_tokens": dict(zip(names, train_tokens)),
        "epochs": {n: int(seen) / size for n, seen, size in zip(names, tokens_seen, train_tokens)},
        "final_loss": run.log[-1]["loss"] if run.log else None,
        "tokens_per_second": run.tokens_per_second,
        "device": str(run.device),
        "ranks": run.ranks.world,
        "resumed_from_step": run.resumed_from,
        "fingerprint": run.fingerprint,
        "log": run.log,
        **({"reweighting": run.reweighter.summary(names)} if run.reweighter is not None else {}),
        **(run.metadata or {}),
    }


def token_streams(
    tokens: dict[str, str | Path], tokenizer, expected: str
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """Each domain's train stream (domain -> token directory), memory-mapped, and its digest
    (the sha256 of its ``train.bin``), after checking the files were written by ``tokenizer``
    (``expected`` names it in the error)."""
    from .tokens import check_tokenizer, read_tokens, verify_token_file

    streams, digests = {}, {}
    for name, directory in tokens.items():
        check_tokenizer(directory, tokenizer, expected)
        streams[name] = read_tokens(directory, "train")
        digests[name] = verify_token_file(directory, "train")
        print(f"{name}: {len(streams[name]):,} training tokens", flush=True)
    return streams, digests


def train_from_scratch(
    tokens: dict[str, str | Path],
    tokenizer_dir: str | Path,
    model: str | dict,
    train_config: dict,
    out_dir: str | Path,
    weights: dict[str, float] | None = None,
    device: str | None = None,
    reweighter: Reweighter | None = None,
) -> dict:
    """Train a new model on the train splits of ``tokens`` (domain -> token directory, written
    with the tokenizer in ``tokenizer_dir``) mixed by ``weights``. Nothing is tokenized here:
    the tokenizer only sizes the model and is saved beside it.

    ``weights=None`` is the proxy's case: uniform over its own domains, never depending on the
    list of domains later weighted with it. Base models pass a mixture's weights; DoReMi and
    DoGE sample uniformly too and pass their ``reweighter``.
    """
    from .model import build_model, model_spec
    from .tokenizer import load_tokenizer

    cfg = TrainConfig(**train_config)
    tokenizer = load_tokenizer(tokenizer_dir)
    streams, digests = token_streams(tokens, tokenizer, f"the tokenizer {tokenizer_dir}")
    torch.manual_seed(cfg.seed)  # the initialisation is part of what the seed reproduces
    net = build_model(model, len(tokenizer), cfg.seq_len, tokenizer.eos_token_id)
    weights = weights or {name: 1.0 / len(streams) for name in streams}
    return train(
        net,
        streams,
        weights,
        cfg,
        out_dir,
        tokenizer=tokenizer,
        device=device,
        metadata={"model": {**model_spec(model), "vocab_size": len(tokenizer)}},
        reweighter=reweighter,
        data_digests=digests,
    )


def finetune(
    tokens: dict[str, str | Path],
    pretrained_dir: str | Path,
    train_config: dict,
    out_dir: str | Path,
    weights: dict[str, float],
    device: str | None = None,
    stop_after: int | None = None,
) -> dict:
    """Finetune the causal LM in ``pretrained_dir`` on the train splits of ``tokens`` (domain
    -> token directory, written with the model's own tokenizer) mixed by ``weights``: the same
    loop, schedule, checkpoints and resume as pretraining."""
    from .io import sha256_file
    from .model import architecture, load_pretrained

    cfg = TrainConfig(**train_config)
    model, tokenizer = load_pretrained(pretrained_dir)
    context = model.config.max_position_embeddings
    if cfg.seq_len > context:
        raise ValueError(
            f"finetuning seq_len {cfg.seq_len} exceeds the context of {pretrained_dir} "
            f"({context} tokens); lower the dataset's finetune.train.seq_len"
        )
    streams, digests = token_streams(tokens, tokenizer, f"the tokenizer of {pretrained_dir}")
    pretrained = Path(pretrained_dir)
    return train(
        model,
        streams,
        weights,
        cfg,
        out_dir,
        tokenizer=tokenizer,
        device=device,
        stop_after=stop_after,
        data_digests=digests,
        metadata={
            "model": architecture(model.config),
            "pretrained": {
                "path": str(pretrained),
                "config_sha256": sha256_file(pretrained / "config.json"),
            },
        },
    )
