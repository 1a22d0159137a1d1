"""FLOPs of training, evaluation and embedding, from the architecture and token counts.

A forward pass costs, per token, ``2 N + 2 n_layer seq_len d`` through the blocks (``N`` their
parameters, the second term attention over the context; Kaplan et al. 2020) plus ``2 d V``
through the LM head (``V`` the vocabulary); training costs three forward passes. The head is
much of a small model's cost at V = 50257: 46% of the 82M proxy's, 84% of RegMix's 2x256
model's. The embedding lookup is a gather, not a matrix product, and costs nothing here.

A model is its spec ``{n_layer, n_head, n_embd, n_inner, vocab_size}``: a train log's
``model`` entry, or a resolved dataset's ``models`` entry with the dataset's ``vocab_size``.
:func:`planned_compute` gives each method's compute from the resolved settings alone, before
anything runs; the mixture files record what was actually spent.
"""

from __future__ import annotations


def block_parameters(spec: dict, layers: int | None = None) -> int:
    """Non-embedding parameters of ``layers`` GPT-2 blocks (attention, MLP, layer norms)."""
    d, inner = spec["n_embd"], spec.get("n_inner") or 4 * spec["n_embd"]
    per_block = 4 * d * d + 4 * d + 2 * d * inner + inner + d + 4 * d
    return per_block * (spec["n_layer"] if layers is None else layers)


def head_parameters(spec: dict) -> int:
    """The LM head's ``n_embd x vocab_size`` matrix (tied to the token embedding in GPT-2)."""
    if "vocab_size" not in spec:
        raise ValueError(
            f"model spec {spec} has no vocab_size: the LM head's FLOPs (2 x n_embd x "
            "vocab_size per token) need it; a train log records it in its `model` entry, so "
            "retrain a model whose log lacks it"
        )
    return spec["n_embd"] * spec["vocab_size"]


def model_parameters(spec: dict, positions: int) -> int:
    """Every trainable parameter of a GPT-2 with ``positions`` position embeddings: blocks,
    final layer norm, token embedding (the head shares it) and position embedding."""
    return (
        block_parameters(spec)
        + 2 * spec["n_embd"]
        + head_parameters(spec)
        + (positions * spec["n_embd"])
    )


def forward_flops_per_token(
    spec: dict, seq_len: int, layers: int | None = None, head: bool = True
) -> float:
    """One token's forward pass through blocks ``1..layers`` (all by default) and, with
    ``head``, the LM head."""
    layers = spec["n_layer"] if layers is None else layers
    blocks = 2.0 * block_parameters(spec, layers) + 2.0 * layers * seq_len * spec["n_embd"]
    return blocks + (2.0 * head_parameters(spec) if head else 0.0)


def training_flops(spec: dict, tokens: int, seq_len: int) -> float:
    return 3.0 * forward_flops_per_token(spec, seq_len) * tokens


def forward_flops(spec: dict, tokens: int, seq_len: int) -> float:
    """Forward passes alone (a reference model's losses, an evaluation)."""
    return forward_flops_per_token(spec, seq_len) * tokens


def embedding_flops(spec: dict, layer: int, tokens: int, seq_len: int) -> float:
    """Only blocks ``1..layer`` run when embedding, never the head."""
    return forward_flops_per_token(spec, seq_len, layer, head=False) * tokens


def schedule_tokens(train: dict) -> int:
    """Tokens a complete schedule trains on: every step's batch of ``seq_len`` targets."""
    return train["steps"] * train["batch_size"] * train["seq_len"]


def _specs(dataset: dict) -> dict[str, dict]:
    """A resolved pretraining dataset's models with its vocabulary, by role."""
    vocab = dataset["vocab_size"]
    return {name: {**model, "vocab_size": vocab} for name, model in dataset["models"].items()}


def _trained(dataset: dict, model: str, train: dict) -> float:
    return training_flops(_specs(dataset)[model], schedule_tokens(train), train["seq_len"])


def _domain_embedding(dataset: dict, proxy: dict) -> float:
    """One replicate's embedding of one domain: ``samples`` windows of up to ``seq_len``
    tokens through blocks ``1..layer`` (an upper bound: windows at the end of a short
    document are shorter)."""
    from .embed import middle_layer

    spec = _specs(dataset)["proxy"]
    embedding = dataset["embedding"]
    window = min(embedding["seq_len"], proxy["train"]["seq_len"])  # the proxy's context
    layer = embedding["layer"] or middle_layer(spec["n_layer"])
    return embedding_flops(spec, layer, embedding["samples"] * window, window)


def chameleon_flops(dataset: dict, proxy: dict, validation_tokens: int = 0) -> float:
    """Each proxy replicate's training (not when the proxy is reused from another dataset)
    and its embedding of every domain."""
    replicate = len(dataset["domains"]) * _domain_embedding(dataset, proxy)
    if not dataset["proxy_reused"]:
        replicate += _trained(dataset, "proxy", proxy["train"])
    return replicate * len(proxy["seeds"])


def target_flops(dataset: dict, proxy: dict, validation_tokens: int = 0) -> float:
    """What a mixture toward the target adds to Chameleon's: each proxy replicate's
    embedding of the target, as of one more domain."""
    return _domain_embedding(dataset, proxy) * len(proxy["seeds"])


def doremi_flops(dataset: dict, proxy: dict, validation_tokens: int = 0) -> float:
    """The reference's training (counted even when it is the uniform proxy, which DoReMi
    needs), the proxy's training, the reference's forward pass over every proxy token, and
    the proxy's forward repeated under gradient accumulation (one rank)."""
    schedules = dataset["schedules"]
    train = schedules["doremi"]
    tokens = schedule_tokens(train)
    micro = train["micro_batch_size"]
    recomputed = tokens if micro and micro < train["batch_size"] else 0
    return (
        _trained(dataset, "doremi", schedules["doremi_reference"])
        + _trained(dataset, "doremi", train)
        + forward_flops(_specs(dataset)["doremi"], tokens + recomputed, train["seq_len"])
    )


def doge_flops(dataset: dict, proxy: dict, validation_tokens: int = 0) -> float:
    """The proxy's training (the held-out ``mix`` rows too: they are forwarded and
    backpropagated) plus, each step, the inner products of the per-domain gradients and
    their weighted sum, as :class:`~chameleon_mix.doge.DoGE` counts them."""
    train, k = dataset["schedules"]["doge"], len(dataset["domains"])
    # Per step: <g_i, g_mix> and |g_i| (target mix) or the k x k Gram matrix (others), then
    # the weighted sum of the k gradients, each over every parameter.
    products = 2 * k if dataset["baselines"]["doge"]["target"] == "mix" else k * k
    parameters = model_parameters(_specs(dataset)["doge"], train["seq_len"])
    return _trained(dataset, "doge", train) + train["steps"] * 2.0 * parameters * (products + k)


def regmix_flops(dataset: dict, proxy: dict, validation_tokens: int = 0) -> float:
    """Every run's training plus its validation forwards over ``validation_tokens`` (all
    domains' val splits, known once tokenized; 0 leaves them out: about 1% of a run at the
    paper's scale)."""
    train = dataset["schedules"]["regmix"]
    validation = forward_flops(_specs(dataset)["regmix"], validation_tokens, train["seq_len"])
    return dataset["baselines"]["regmix"]["runs"] * (
        _trained(dataset, "regmix", train) + validation
    )


def planned_compute(dataset: dict, proxy: dict, validation_tokens: int = 0) -> dict[str, float]:
    """The FLOPs each of a resolved pretraining dataset's ``methods`` spends to obtain its
    mixture, from the settings alone (``proxy``: the resolved proxy the dataset names), by
    each method's ``planned_flops`` (:mod:`chameleon_mix.methods`): :func:`chameleon_flops`,
    :func:`doremi_flops`, :func:`doge_flops`, :func:`regmix_flops`; nothing for uniform and
    human."""
    from .methods import METHODS

    if dataset["stage"] != "pretrain":
        raise ValueError(
            "planned compute is for pretraining datasets; a finetuning dataset's mixture "
            "costs the pretrained model's embedding forwards, recorded in its mixture file"
        )
    return {
        method: METHODS[method].planned_flops(dataset, proxy, validation_tokens)
        for method in dataset["methods"]
    }
