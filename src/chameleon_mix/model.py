"""The decoder-only transformer: GPT-2 from ``transformers``, built from a config, never downloaded.

Sizes follow the paper's Table 8 (hidden dim 4x the embedding width); ``tiny`` is for CPU demos.
"""

from __future__ import annotations

from pathlib import Path

MODEL_SIZES = {
    "tiny": {"n_layer": 2, "n_head": 4, "n_embd": 128, "n_inner": 512},
    "60M": {"n_layer": 3, "n_head": 6, "n_embd": 768, "n_inner": 3072},
    "82M": {"n_layer": 6, "n_head": 12, "n_embd": 768, "n_inner": 3072},
    "124M": {"n_layer": 12, "n_head": 12, "n_embd": 768, "n_inner": 3072},
    "210M": {"n_layer": 24, "n_head": 16, "n_embd": 768, "n_inner": 3072},
    "684M": {"n_layer": 36, "n_head": 24, "n_embd": 1200, "n_inner": 4800},
}


def model_spec(model: str | dict) -> dict:
    """Architecture dict for a preset name or an explicit ``{n_layer, n_head, n_embd[, n_inner]}``."""
    if isinstance(model, str):
        if model not in MODEL_SIZES:
            raise ValueError(f"unknown model size {model!r}; known: {', '.join(MODEL_SIZES)}")
        return dict(MODEL_SIZES[model])
    spec = dict(model)
    spec.setdefault("n_inner", 4 * spec["n_embd"])
    return spec


def build_model(model: str | dict, vocab_size: int, seq_len: int, bos_eos_id: int):
    """A randomly initialised ``GPT2LMHeadModel`` with SDPA attention and no dropout.

    No dropout: the proxy is trained for a few thousand steps on fresh data, and it keeps a
    resumed run bit-identical to an uninterrupted one on CPU.
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=seq_len,
        bos_token_id=bos_eos_id,
        eos_token_id=bos_eos_id,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        **model_spec(model),
    )
    return GPT2LMHeadModel._from_config(config, attn_implementation="sdpa")


def load_model(path: str | Path, device: str = "cpu"):
    """Load a causal LM saved with ``save_pretrained``; the error names what is missing."""
    from transformers import AutoModelForCausalLM

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"{path} holds no model (no config.json); train it first or fix the path"
        )
    return AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa").to(device)


def count_parameters(model, non_embedding: bool = True) -> int:
    """Parameters, without the token/position embeddings when ``non_embedding`` (for FLOPs)."""
    total = sum(p.numel() for p in model.parameters())
    if non_embedding:
        total -= model.transformer.wte.weight.numel() + model.transformer.wpe.weight.numel()
    return total
