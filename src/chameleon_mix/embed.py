"""Domain embeddings: the mean, over sampled windows, of the proxy's hidden state after block L.

The windows come from the domain's train token files (:mod:`chameleon_mix.tokens`), seeded, in
one of two protocols (``embedding.sampling``):

* ``stream`` (the authors' code): ``seq_len`` tokens at a uniformly random offset of the
  domain's token stream, crossing document boundaries (EOS) like the trainer's windows;
* ``document``: a random document (without replacement while they last), then a uniformly
  placed window of up to ``seq_len`` tokens inside it, so short documents give short windows.

A window's embedding is the hidden state after block ``layer`` (1-based, before the final
layer norm), averaged over its real tokens (or over all padded positions, as the authors' code
does, when ``include_padding``). Only blocks ``1..layer`` run.

The model is the proxy (pretraining) or the pretrained model itself (finetuning), so any
Hugging Face decoder works: GPT-2's ``transformer.h``, Llama's ``model.layers``, ...
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch


def middle_layer(n_layer: int) -> int:
    """The default embedding layer: the middle block, as the authors' code picks it,
    ``hidden_states[(L + 1) // 2]`` (1 of 2, 2 of 3, 3 of 6, 6 of 12)."""
    return (n_layer + 1) // 2


SAMPLING = ("stream", "document")


def stream_windows(tokens: np.ndarray, samples: int, seq_len: int, seed: int) -> list[np.ndarray]:
    """``samples`` windows of exactly ``seq_len`` tokens at uniformly random offsets of the
    token stream ``tokens``; a window may span several documents and their EOS tokens."""
    if len(tokens) < seq_len:
        raise ValueError(
            f"the domain has {len(tokens)} tokens, fewer than one window of seq_len={seq_len}; "
            "lower embedding.seq_len or sample more documents"
        )
    starts = np.random.default_rng(seed).integers(0, len(tokens) - seq_len + 1, size=samples)
    return [np.asarray(tokens[s : s + seq_len], dtype=np.int64) for s in starts]


def document_windows(
    tokens: np.ndarray, offsets: np.ndarray, samples: int, seq_len: int, seed: int
) -> list[np.ndarray]:
    """``samples`` windows: documents (``tokens[offsets[i]:offsets[i + 1]]``, EOS last) drawn
    uniformly without replacement while they last, then a uniformly placed window of up to
    ``seq_len`` of the document's own tokens (its EOS alone when it has none)."""
    rng = np.random.default_rng(seed)
    n = len(offsets) - 1
    if n < 1:
        raise ValueError("no documents to embed")
    order = np.concatenate([rng.permutation(n) for _ in range(-(-samples // n))])[:samples]
    windows = []
    for i in order:
        doc = tokens[offsets[i] : offsets[i + 1] - 1]
        if len(doc) == 0:
            doc = tokens[offsets[i] : offsets[i + 1]]
        start = rng.integers(0, max(1, len(doc) - seq_len + 1))
        windows.append(np.asarray(doc[start : start + seq_len], dtype=np.int64))
    return windows


def sample_windows(
    tokens: np.ndarray, offsets: np.ndarray, samples: int, seq_len: int, seed: int, sampling: str
) -> list[np.ndarray]:
    """The ``sampling`` protocol's windows of a domain's token stream and document offsets."""
    if sampling == "stream":
        return stream_windows(tokens, samples, seq_len, seed)
    if sampling == "document":
        return document_windows(tokens, offsets, samples, seq_len, seed)
    raise ValueError(f"unknown embedding sampling {sampling!r}; use one of {', '.join(SAMPLING)}")


def decoder_blocks(model) -> tuple[torch.nn.Module, str]:
    """``(parent, attribute)`` of the list of transformer blocks of a Hugging Face decoder."""
    n_layer = model.config.num_hidden_layers
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == n_layer:
            parent, _, attribute = name.rpartition(".")
            return model.get_submodule(parent), attribute
    raise ValueError(f"cannot find the {n_layer} transformer blocks of {type(model).__name__}")


class Trunk(torch.nn.Module):
    """Blocks ``1..layer`` of a decoder (modified in place: later blocks are dropped, so they
    never run); its output, shape (batch, seq, hidden), is the hidden state block ``layer``
    returns, before any final layer norm."""

    def __init__(self, model, layer: int):
        super().__init__()
        self.base = model.base_model
        parent, attribute = decoder_blocks(self.base)
        n_layer = len(getattr(parent, attribute))
        if not 1 <= layer <= n_layer:
            raise ValueError(
                f"embedding layer {layer} is out of range: the model has blocks 1..{n_layer}"
            )
        setattr(parent, attribute, getattr(parent, attribute)[:layer])
        self.blocks = getattr(parent, attribute)
        self.base.config.num_hidden_layers = layer
        self.hidden_size = self.base.config.hidden_size
        # A hook reads block `layer`'s output whatever the model does after its last block.
        self.blocks[-1].register_forward_hook(self._keep_output)
        self._output = None

    def _keep_output(self, module, args, output):
        self._output = output[0] if isinstance(output, tuple) else output

    def forward(self, input_ids, attention_mask=None) -> torch.Tensor:
        self.base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        output, self._output = self._output, None
        return output


def truncate_to_layer(model, layer: int) -> Trunk:
    """The model's blocks ``1..layer`` as a :class:`Trunk`."""
    return Trunk(model, layer)


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
    out = np.empty((len(windows), trunk.hidden_size), dtype=np.float32)
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
            hidden = trunk(input_ids=ids, attention_mask=mask).float()
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
    pad_id: int,
    tokens: np.ndarray,
    offsets: np.ndarray,
    samples: int,
    seq_len: int,
    sampling: str,
    layer: int | None = None,
    batch_size: int = 64,
    include_padding: bool = False,
    seed: int = 0,
    device: str | None = None,
) -> DomainEmbedding:
    """Embed one domain, its token stream ``tokens`` with document ``offsets``, with a causal
    LM (modified in place: later blocks are dropped)."""
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    layer = middle_layer(model.config.num_hidden_layers) if layer is None else layer
    seq_len = min(seq_len, model.config.max_position_embeddings)
    windows = sample_windows(tokens, offsets, samples, seq_len, seed, sampling)
    trunk = truncate_to_layer(model, layer)
    sample_embeddings = embed_windows(trunk, windows, pad_id, batch_size, include_padding, device)
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
    token_dir: str | Path,
    settings: dict,
    out_embedding: str | Path,
    out_samples: str | Path,
    out_info: str | Path,
    model_name: str,
    device: str | None = None,
) -> DomainEmbedding:
    """The embedding rule: a domain's train token files (``token_dir``, written with the
    model's tokenizer) -> ``.npy`` mean, per-sample ``.npy``, JSON.

    ``model_name`` (the proxy's name, or the pretrained model's path) goes into the JSON.
    """
    from .io import atomic_path, write_json
    from .model import architecture, load_pretrained
    from .tokens import check_tokenizer, read_offsets, read_tokens, verify_token_file

    path = checkpoint_dir(model_dir, checkpoint)
    model, tokenizer = load_pretrained(path)
    check_tokenizer(token_dir, tokenizer, f"the tokenizer of {path}")
    digest = verify_token_file(token_dir, "train")  # the hash of what is embedded
    spec = architecture(model.config)
    result = embed_domain(
        model,
        tokenizer.pad_token_id,
        read_tokens(token_dir, "train"),
        read_offsets(token_dir, "train"),
        samples=settings["samples"],
        seq_len=settings["seq_len"],
        sampling=settings["sampling"],
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
            "model": model_name,
            "architecture": spec,
            "checkpoint": checkpoint,
            "model_dir": str(path),
            "layer": result.layer,
            "samples": len(result.samples),
            "tokens": result.tokens,
            "seq_len": settings["seq_len"],
            "sampling": settings["sampling"],
            "include_padding": settings.get("include_padding", False),
            "seed": settings.get("seed", 0),
            "dtype": "bfloat16" if torch.cuda.is_available() and device != "cpu" else "float32",
            "tokens_sha256": digest,
        },
    )
    return result
