"""FLOPs of training and embedding, from the architecture and token counts (Kaplan et al. 2020):
a forward pass costs ``2 N + 2 n_layer seq_len d`` per token, ``N`` the non-embedding
parameters; training costs three forward passes."""

from __future__ import annotations


def block_parameters(spec: dict, layers: int | None = None) -> int:
    """Non-embedding parameters of ``layers`` GPT-2 blocks (attention, MLP, layer norms)."""
    d, inner = spec["n_embd"], spec.get("n_inner") or 4 * spec["n_embd"]
    per_block = 4 * d * d + 4 * d + 2 * d * inner + inner + d + 4 * d
    return per_block * (spec["n_layer"] if layers is None else layers)


def forward_flops_per_token(spec: dict, seq_len: int, layers: int | None = None) -> float:
    layers = spec["n_layer"] if layers is None else layers
    return 2.0 * block_parameters(spec, layers) + 2.0 * layers * seq_len * spec["n_embd"]


def training_flops(spec: dict, tokens: int, seq_len: int) -> float:
    return 3.0 * forward_flops_per_token(spec, seq_len) * tokens


def embedding_flops(spec: dict, layer: int, tokens: int, seq_len: int) -> float:
    """Only blocks ``1..layer`` run when embedding."""
    return forward_flops_per_token(spec, seq_len, layer) * tokens


def forward_flops(spec: dict, tokens: int, seq_len: int) -> float:
    """Forward passes alone (a reference model's losses, an evaluation)."""
    return forward_flops_per_token(spec, seq_len) * tokens
