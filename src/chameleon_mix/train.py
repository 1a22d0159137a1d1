"""Train a causal LM on a weighted mixture of domains: one loop for the proxy and base models.

Data: each domain's train shard is tokenized once into one stream of token ids (documents
separated by EOS). A training example is a random window of ``seq_len + 1`` tokens from a
domain drawn from the mixture weights, so nothing is padded. The batch of step ``t`` depends
only on ``(seed, t)``; with no dropout, a run resumed from a checkpoint therefore reaches the
same state as one that was never interrupted.

Optimisation: AdamW (weight decay on matrices only), linear warmup then cosine decay to
``min_lr``, gradient clipping, bf16 autocast on CUDA and float32 on CPU.

Reweighting (DoReMi, DoGE): ``train(..., reweighter=r)`` lets ``r`` form each step's gradient
from the same batch, through :class:`Reweighter`; everything else (batches, schedule,
clipping, checkpoints, resume) stays this one loop. ``r``'s state is saved in every checkpoint
and restored on resume, so a resumed reweighted run equals an uninterrupted one.
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

from .io import atomic_path, write_json


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


class Reweighter(Protocol):
    """Forms a step's gradient from its batch in place of the plain mean token loss.

    ``backward`` gets the model, the batch ``tokens`` (n, seq_len + 1) int64, each row's domain
    index ``domains`` (n,) int64 (into the domain order of ``train``), the step's learning rate,
    the micro-batch size and the autocast context; it leaves the gradient in the parameters'
    ``.grad`` and returns the batch's mean token loss for the log. The trainer then clips and
    steps as usual. ``state_dict``/``load_state_dict`` carry its state through checkpoints;
    ``summary(domains)`` goes into the training log under ``reweighting``.
    """

    def backward(self, model, tokens, domains, lr: float, micro_batch_size: int, autocast): ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...

    def summary(self, domains: list[str]) -> dict: ...


def token_losses(model, tokens: torch.Tensor, autocast) -> torch.Tensor:
    """Next-token cross-entropy of every position: ``tokens`` (n, T + 1) -> losses (n, T)."""
    with autocast:
        logits = model(tokens[:, :-1]).logits
    losses = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.size(-1)), tokens[:, 1:].reshape(-1), reduction="none"
    )
    return losses.view(tokens.size(0), -1)


def tokenize_stream(texts: list[str], tokenizer) -> np.ndarray:
    """All ``texts`` as one int32 array of token ids, each document followed by EOS."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    eos = tokenizer.eos_token_id
    return np.fromiter(
        (t for doc in ids for t in (*doc, eos)), dtype=np.int32, count=sum(len(d) + 1 for d in ids)
    )


def sample_batch(
    streams: list[np.ndarray], probs: np.ndarray, n: int, seq_len: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` windows of ``seq_len + 1`` tokens; returns (tokens (n, seq_len+1), domain index (n,))."""
    domains = rng.choice(len(streams), size=n, p=probs)
    starts = [rng.integers(0, len(streams[d]) - seq_len) for d in domains]
    tokens = np.stack([streams[d][s : s + seq_len + 1] for d, s in zip(domains, starts)])
    return tokens, domains


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


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    done = [p for p in checkpoint_dir.glob("step-*") if (p / "trainer_state.pt").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def save_checkpoint(
    path: Path, model, optimizer, step: int, tokens: np.ndarray, tokenizer, reweighter=None
) -> None:
    with atomic_path(path, directory=True) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        state = {"step": step, "optimizer": optimizer.state_dict(), "tokens": tokens.tolist()}
        if reweighter is not None:
            state["reweighter"] = reweighter.state_dict()
        torch.save(state, tmp / "trainer_state.pt")


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
) -> dict:
    """Train ``model`` on ``streams`` mixed by ``weights``; write ``out_dir/model`` and logs.

    Checkpoints go to ``out_dir/checkpoints/step-N``; an existing one is resumed from.
    ``stop_after`` ends the run early after that step (as a killed job would), for tests.
    ``reweighter`` (DoReMi, DoGE) forms each step's gradient instead of the mean token loss.
    Returns the training summary also written to ``out_dir/train_log.json``.
    """
    out_dir = Path(out_dir)
    checkpoint_dir = out_dir / "checkpoints"
    names = list(streams)
    missing = sorted(set(names) ^ set(weights))
    if missing:
        raise ValueError(f"weights and token streams disagree on domains: {missing}")
    for name in names:
        if len(streams[name]) <= cfg.seq_len + 1:
            raise ValueError(
                f"domain {name!r} has only {len(streams[name])} training tokens, fewer than one "
                f"window of seq_len={cfg.seq_len}; add documents or lower seq_len"
            )
    probs = np.array([weights[n] for n in names], dtype=np.float64)
    probs = probs / probs.sum()
    stream_list = [streams[n] for n in names]

    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(cfg.seed)
    model.to(device).train()
    optimizer = make_optimizer(model, cfg, device)
    micro = cfg.micro_batch_size or cfg.batch_size
    accumulation = cfg.batch_size // micro
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

    start, tokens_seen = 0, np.zeros(len(names), dtype=np.int64)
    resume = latest_checkpoint(checkpoint_dir)
    if resume is not None:
        from transformers import AutoModelForCausalLM

        state = torch.load(resume / "trainer_state.pt", map_location=device, weights_only=False)
        model.load_state_dict(AutoModelForCausalLM.from_pretrained(resume).state_dict())
        optimizer.load_state_dict(state["optimizer"])
        start, tokens_seen = state["step"], np.array(state["tokens"], dtype=np.int64)
        if reweighter is not None:
            if "reweighter" not in state:
                raise ValueError(
                    f"checkpoint {resume} was written without reweighting; it belongs to another "
                    f"run: delete {checkpoint_dir} to start this one afresh"
                )
            reweighter.load_state_dict(state["reweighter"])
        print(f"resuming from {resume} (step {start})", flush=True)

    from tqdm.auto import tqdm

    log, t0 = [], time.perf_counter()
    print(f"device {device}, {torch.get_num_threads()} CPU threads", flush=True)
    progress = tqdm(range(start, cfg.steps), initial=start, total=cfg.steps, desc="train")
    for step in progress:
        lr = learning_rate(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        rng = np.random.default_rng([cfg.seed, step])
        batch, domains = sample_batch(stream_list, probs, cfg.batch_size, cfg.seq_len, rng)
        np.add.at(tokens_seen, domains, cfg.seq_len)
        batch = torch.from_numpy(batch.astype(np.int64)).to(device, non_blocking=True)
        if reweighter is not None:
            loss_sum = reweighter.backward(
                model, batch, torch.from_numpy(domains).to(device), lr, micro, autocast
            )
        else:
            loss_sum = 0.0
            for chunk in batch.split(micro):
                with autocast:
                    logits = model(chunk[:, :-1]).logits
                loss = torch.nn.functional.cross_entropy(
                    logits.float().reshape(-1, logits.size(-1)), chunk[:, 1:].reshape(-1)
                )
                (loss / accumulation).backward()
                loss_sum += loss.item() / accumulation
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

        done = step + 1
        elapsed = time.perf_counter() - t0
        tokens_per_s = (done - start) * cfg.batch_size * cfg.seq_len / elapsed
        progress.set_postfix(loss=f"{loss_sum:.3f}", tok_s=f"{tokens_per_s:,.0f}")
        log.append({"step": done, "loss": loss_sum, "lr": lr, "grad_norm": float(grad_norm)})
        if done in cfg.checkpoints or done % cfg.checkpoint_every == 0 or done == cfg.steps:
            previous = latest_checkpoint(checkpoint_dir)
            save_checkpoint(
                checkpoint_dir / f"step-{done}",
                model,
                optimizer,
                done,
                tokens_seen,
                tokenizer,
                reweighter,
            )
            # Resume points that are not requested checkpoints only cost disk once superseded.
            if previous is not None and int(previous.name.split("-")[1]) not in cfg.checkpoints:
                shutil.rmtree(previous)
        if stop_after is not None and done >= stop_after:
            return {"stopped_at": done}

    summary = {
        "config": asdict(cfg),
        "domains": names,
        "weights": dict(zip(names, probs.tolist())),
        "tokens_per_domain": dict(zip(names, tokens_seen.tolist())),
        "tokens_total": int(tokens_seen.sum()),
        "final_loss": log[-1]["loss"] if log else None,
        "tokens_per_second": tokens_per_s if log else None,
        "device": str(device),
        "resumed_from_step": start,
        "log": log,
        **({"reweighting": reweighter.summary(names)} if reweighter is not None else {}),
        **(metadata or {}),
    }
    with atomic_path(out_dir / "model", directory=True) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / "training.json").write_text(
            json.dumps({k: v for k, v in summary.items() if k != "log"}, indent=2)
        )
    write_json(out_dir / "train_log.json", summary)
    return summary


def token_streams(shards: dict[str, str | Path], tokenizer) -> dict[str, np.ndarray]:
    """Each domain's train shard (domain -> parquet) as one stream of token ids."""
    from .tokenizer import read_texts

    streams = {
        name: tokenize_stream(read_texts([path]), tokenizer) for name, path in shards.items()
    }
    for name, stream in streams.items():
        print(f"{name}: {len(stream):,} training tokens", flush=True)
    return streams


def train_from_scratch(
    shards: dict[str, str | Path],
    tokenizer_dir: str | Path,
    model: str | dict,
    train_config: dict,
    out_dir: str | Path,
    weights: dict[str, float] | None = None,
    device: str | None = None,
    reweighter: Reweighter | None = None,
) -> dict:
    """Train a new model on ``shards`` (domain -> train parquet) mixed by ``weights``.

    ``weights=None`` is the proxy's case: uniform over its own domains, never depending on the
    list of domains later weighted with it. Base models pass a mixture's weights; DoReMi and
    DoGE sample uniformly too and pass their ``reweighter``.
    """
    from .model import build_model, model_spec
    from .tokenizer import load_tokenizer

    cfg = TrainConfig(**train_config)
    tokenizer = load_tokenizer(tokenizer_dir)
    streams = token_streams(shards, tokenizer)
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
        metadata={"model": model_spec(model)},
        reweighter=reweighter,
    )


def finetune(
    shards: dict[str, str | Path],
    pretrained_dir: str | Path,
    train_config: dict,
    out_dir: str | Path,
    weights: dict[str, float],
    device: str | None = None,
    stop_after: int | None = None,
) -> dict:
    """Finetune the causal LM in ``pretrained_dir`` (with its own tokenizer) on ``shards``
    mixed by ``weights``: the same loop, schedule, checkpoints and resume as pretraining."""
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
    streams = token_streams(shards, tokenizer)
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
        metadata={
            "model": architecture(model.config),
            "pretrained": {
                "path": str(pretrained),
                "config_sha256": sha256_file(pretrained / "config.json"),
            },
        },
    )
