"""Domain embeddings: the mean, over sampled windows, of the proxy's hidden state after block L.

Each sample is a random window of at most ``seq_len`` tokens from a random document of the
domain's train shard. Its embedding is the hidden state after block ``layer`` (1-based,
before the final layer norm), averaged over its real tokens (or over all padded positions,
as the authors' code does, when ``include_padding``). Only blocks ``1..layer`` run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


def middle_layer(n_layer: int) -> int:
    """The default embedding layer: the middle block (1 of 2, 3 of 6, 6 of 12)."""
    return max(1, n_layer // 2)


def sample_windows(
    texts: list[str], tokenizer, samples: int, seq_len: int, seed: int
) -> list[np.ndarray]:
    """``samples`` token windows: documents drawn uniformly (without replacement while they
    last), then a uniformly placed window of up to ``seq_len`` tokens in each."""
    rng = np.random.default_rng(seed)
    if not texts:
        raise ValueError("no documents to embed")
    order = np.concatenate([rng.permutation(len(texts)) for _ in range(-(-samples // len(texts)))])[
        :samples
    ]
    ids = tokenizer([texts[i] for i in order], add_special_tokens=False)["input_ids"]
    windows = []
    for doc in ids:
        if not doc:
            doc = [tokenizer.eos_token_id]
        start = rng.integers(0, max(1, len(doc) - seq_len + 1))
        windows.append(np.asarray(doc[start : start + seq_len], dtype=np.int64))
    return windows


def truncate_to_layer(model, layer: int):
    """The model's transformer trunk keeping blocks ``1..layer`` and no final layer norm, so
    its last hidden state is the output of block ``layer`` and later blocks never run."""
    trunk = model.transformer if hasattr(model, "transformer") else model
    n_layer = len(trunk.h)
    if not 1 <= layer <= n_layer:
        raise ValueError(
            f"embedding layer {layer} is out of range: the model has blocks 1..{n_layer}"
        )
    trunk.h = trunk.h[:layer]
    trunk.ln_f = torch.nn.Identity()
    trunk.config.n_layer = layer
    return trunk


@torch.no_grad()
def embed_windows(
    trunk,
    windows: list[np.ndarray],
    pad_id: int,
    batch_size: int = 64,
    include_padding: bool = False,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Per-window embeddings, shape (n, hidden), float32, in the order of ``windows``.

    Windows are sorted by length before batching so that a batch pads as little as possible.
    """
    device = torch.device(device)
    trunk.to(device).eval()
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    order = np.argsort([len(w) for w in windows], kind="stable")
    out = np.empty((len(windows), trunk.config.n_embd), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]
        width = max(len(windows[i]) for i in index)
        ids = torch.full((len(index), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(index), width), dtype=torch.long)
        for row, i in enumerate(index):
            ids[row, : len(windows[i])] = torch.from_numpy(windows[i])
            mask[row, : len(windows[i])] = 1
        ids, mask = ids.to(device), mask.to(device)
        with autocast:
            hidden = trunk(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        weight = torch.ones_like(mask) if include_padding else mask
        weight = weight.unsqueeze(-1).float()
        out[index] = ((hidden * weight).sum(1) / weight.sum(1)).cpu().numpy()
    return out


@dataclass
class DomainEmbedding:
    mean: np.ndarray  # (hidden,) float64: the domain embedding x_i
    samples: np.ndarray  # (n, hidden) float32: one row per window
    layer: int
    tokens: int  # real tokens embedded


def embed_domain(
    model,
    tokenizer,
    texts: list[str],
    samples: int,
    seq_len: int,
    layer: int | None = None,
    batch_size: int = 64,
    include_padding: bool = False,
    seed: int = 0,
    device: str | None = None,
) -> DomainEmbedding:
    """Embed one domain with a causal LM (modified in place: later blocks are dropped)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    n_layer = model.config.n_layer
    layer = middle_layer(n_layer) if layer is None else layer
    seq_len = min(seq_len, model.config.n_positions)
    windows = sample_windows(texts, tokenizer, samples, seq_len, seed)
    trunk = truncate_to_layer(model, layer)
    sample_embeddings = embed_windows(
        trunk, windows, tokenizer.pad_token_id, batch_size, include_padding, device
    )
    return DomainEmbedding(
        mean=sample_embeddings.astype(np.float64).mean(axis=0),
        samples=sample_embeddings,
        layer=layer,
        tokens=int(sum(len(w) for w in windows)),
    )


def checkpoint_dir(model_dir: str | Path, checkpoint: str) -> Path:
    """``final`` is the trained model; ``step-N`` a checkpoint kept beside it."""
    model_dir = Path(model_dir)
    if checkpoint == "final":
        return model_dir
    path = model_dir.parent / "checkpoints" / checkpoint
    if not (path / "config.json").is_file():
        kept = sorted(p.name for p in path.parent.glob("step-*"))
        raise FileNotFoundError(
            f"checkpoint {checkpoint} of {model_dir.parent.name} does not exist (kept: "
            f"{', '.join(kept) or 'none'}); add its step to the proxy's train.checkpoints and retrain"
        )
    return path


def embed_domain_to_files(
    model_dir: str | Path,
    checkpoint: str,
    shard: str | Path,
    settings: dict,
    out_embedding: str | Path,
    out_samples: str | Path,
    out_info: str | Path,
    proxy: str,
    device: str | None = None,
) -> DomainEmbedding:
    """The embedding rule: a domain's train shard -> ``.npy`` mean, per-sample ``.npy``, JSON."""
    from .io import atomic_path, sha256_file, write_json
    from .model import load_model
    from .tokenizer import load_tokenizer, read_texts

    path = checkpoint_dir(model_dir, checkpoint)
    tokenizer = load_tokenizer(path)
    model = load_model(path)
    result = embed_domain(
        model,
        tokenizer,
        read_texts([shard]),
        samples=settings["samples"],
        seq_len=settings["seq_len"],
        layer=settings.get("layer"),
        batch_size=settings.get("batch_size", 64),
        include_padding=settings.get("include_padding", False),
        seed=settings.get("seed", 0),
        device=device,
    )
    with atomic_path(out_embedding) as tmp, open(tmp, "wb") as f:
        np.save(f, result.mean)
    with atomic_path(out_samples) as tmp, open(tmp, "wb") as f:
        np.save(f, result.samples.astype(np.float16))
    write_json(
        out_info,
        {
            "proxy": proxy,
            "checkpoint": checkpoint,
            "model_dir": str(path),
            "layer": result.layer,
            "samples": len(result.samples),
            "tokens": result.tokens,
            "seq_len": settings["seq_len"],
            "include_padding": settings.get("include_padding", False),
            "seed": settings.get("seed", 0),
            "dtype": "bfloat16" if torch.cuda.is_available() and device != "cpu" else "float32",
            "shard_sha256": sha256_file(shard),
        },
    )
    return result
