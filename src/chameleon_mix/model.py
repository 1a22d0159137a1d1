"""The decoder-only transformer: GPT-2 from ``transformers``, built from a config, never downloaded.

Sizes follow the paper's Table 8 (hidden dim 4x the embedding width); ``tiny`` is for CPU demos.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

VOCAB_MULTIPLE = 64  # GPU matrix multiplies run fastest on dimensions that are multiples of 64

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


def gpus_for_width(n_embd: int) -> int:
    """GPUs a job with a model this wide asks for: CPU-sized demo models (narrower than 512)
    need none, real sizes one."""
    return 0 if n_embd < 512 else 1


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


# Causal LMs whose logits are exactly ``lm_head(base_model(ids).last_hidden_state)`` (no logit
# scaling or soft-capping): the trainer may pad their vocabulary and chunk their LM head.
PLAIN_HEADS = {"gpt2", "llama", "mistral", "qwen2", "gpt_neox"}


def has_plain_head(model) -> bool:
    return model.config.model_type in PLAIN_HEADS


def vocabulary_matrices(model) -> list:
    """The parameters with a row per vocabulary entry: the token embedding and, when not
    tied to it, the LM head."""
    matrices = [model.get_input_embeddings().weight]
    head = model.get_output_embeddings()
    if head is not None and head.weight is not matrices[0]:
        matrices.append(head.weight)
    return matrices


def pad_vocabulary(model, multiple: int = VOCAB_MULTIPLE) -> int:
    """Grow the embedding matrix (and an untied LM head) in place to a multiple of ``multiple``
    rows with zero rows, for faster matrix multiplies; returns the real vocabulary size.

    The tokenizer is unchanged: no input is a padded id, and :class:`~chameleon_mix.train.
    TokenLoss` gives the padded logits -inf, so they are never predicted and their rows get no
    gradient (they stay zero). :func:`unpadded` hides them again for saving.
    """
    vocab = model.config.vocab_size
    padded = -(-vocab // multiple) * multiple
    head = model.get_output_embeddings()
    if padded == vocab or (head is not None and getattr(head, "bias", None) is not None):
        return vocab  # a head with a bias would need it padded too: leave such a model as it is
    for matrix in vocabulary_matrices(model):
        grown = matrix.new_zeros(padded, matrix.size(1))
        grown[:vocab] = matrix.data
        matrix.data = grown  # the same Parameter: ties and optimizer references hold
    model.config.vocab_size = padded
    return vocab


def unpad_vocabulary(model, vocab_size: int) -> None:
    """Cut the embedding matrix (and an untied LM head) back to ``vocab_size`` rows in place."""
    for matrix in vocabulary_matrices(model):
        matrix.data = matrix.data[:vocab_size]
    model.config.vocab_size = vocab_size


@contextlib.contextmanager
def unpadded(model, vocab_size: int | None):
    """``model`` as its tokenizer sees it (``vocab_size`` rows; None: as it is) for the block,
    to be saved; the padded rows return afterwards."""
    padded, full = model.config.vocab_size, [m.data for m in vocabulary_matrices(model)]
    if vocab_size is not None:
        unpad_vocabulary(model, vocab_size)
    try:
        yield model
    finally:
        for matrix, data in zip(vocabulary_matrices(model), full):
            matrix.data = data
        model.config.vocab_size = padded


def architecture(config) -> dict:
    """``{n_layer, n_head, n_embd, n_inner, vocab_size}`` of any Hugging Face decoder config
    (for FLOPs)."""
    hidden = config.hidden_size
    inner = getattr(config, "n_inner", None) or getattr(config, "intermediate_size", None)
    return {
        "n_layer": config.num_hidden_layers,
        "n_head": config.num_attention_heads,
        "n_embd": hidden,
        "n_inner": inner or 4 * hidden,
        "vocab_size": config.vocab_size,
    }


def load_pretrained(path: str | Path):
    """A local Hugging Face causal LM and its tokenizer: ``(model, tokenizer)``.

    The embedding model of a finetuning dataset: a base model of this workflow or any
    ``save_pretrained`` directory. Each way it can be unusable gets its own error.
    """
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    from .tokenizer import load_tokenizer

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(
            f"pretrained model {path} does not exist; train it first (e.g. "
            "results/demo/base/uniform/seed-0/model) or point `pretrained:` at a local model directory"
        )
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"pretrained model {path} holds no model (no config.json)")
    config = AutoConfig.from_pretrained(path)
    if type(config) not in MODEL_FOR_CAUSAL_LM_MAPPING:
        raise ValueError(
            f"pretrained model {path} is a {config.model_type!r} model, not a causal LM; "
            "use a decoder-only language model (GPT-2, Llama, ...)"
        )
    try:
        tokenizer = load_tokenizer(path)
    except (FileNotFoundError, OSError, ValueError) as err:
        raise FileNotFoundError(
            f"pretrained model {path} has no usable tokenizer ({err}); save the tokenizer it "
            "was trained with beside it: tokenizer.save_pretrained(path)"
        ) from None
    if tokenizer.eos_token_id is None:
        raise ValueError(f"the tokenizer of {path} has no EOS token to separate documents")
    return load_model(path), tokenizer


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
