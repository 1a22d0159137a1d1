"""Tokenizer, proxy training (resume) and embeddings on a tiny real model, on CPU."""

import json

import numpy as np
import pytest
import torch
from conftest import domain_texts

from chameleon_mix.embed import (
    checkpoint_dir,
    embed_domain,
    embed_domain_to_files,
    embed_windows,
    middle_layer,
    stream_windows,
    truncate_to_layer,
)
from chameleon_mix.model import build_model, load_model, model_spec
from chameleon_mix.tokenizer import load_tokenizer
from chameleon_mix.tokens import read_offsets, read_tokens
from chameleon_mix.train import TrainConfig, sample_batch, train, train_from_scratch

TINY = {"n_layer": 3, "n_head": 2, "n_embd": 32}
CFG = {
    "steps": 8,
    "batch_size": 4,
    "micro_batch_size": 2,
    "seq_len": 16,
    "lr": 3e-3,
    "min_lr": 3e-4,
    "warmup_steps": 2,
    "checkpoints": [4],
    "checkpoint_every": 2,
}


def params_of(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_tokenizer_round_trips_text(tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    text = "def f7(x):\n    return x * 7 + 1\n"
    assert tok.decode(tok(text)["input_ids"]) == text
    assert tok.pad_token == tok.eos_token == "<|endoftext|>"


def test_resumed_run_reaches_the_same_state_as_an_uninterrupted_one(
    tokens, tokenizer_dir, tmp_path
):
    full = train_from_scratch(tokens, tokenizer_dir, TINY, CFG, tmp_path / "full", device="cpu")
    # Kill after step 5: the last checkpoint is step 4; rerunning resumes from it.
    tok = load_tokenizer(tokenizer_dir)
    streams = {n: read_tokens(d, "train") for n, d in tokens.items()}
    uniform = {n: 0.5 for n in streams}
    torch.manual_seed(0)  # as train_from_scratch does with the config's seed
    first = build_model(TINY, len(tok), CFG["seq_len"], tok.eos_token_id)
    train(
        first,
        streams,
        uniform,
        TrainConfig(**CFG),
        tmp_path / "killed",
        tok,
        "cpu",
        stop_after=5,
        # as train_from_scratch: the same run's fingerprint
        metadata={"model": {**model_spec(TINY), "vocab_size": len(tok)}},
    )
    assert sorted(p.name for p in (tmp_path / "killed" / "checkpoints").iterdir()) == ["step-4"]
    resumed = train_from_scratch(
        tokens, tokenizer_dir, TINY, CFG, tmp_path / "killed", device="cpu"
    )
    assert resumed["resumed_from_step"] == 4
    a = load_model(tmp_path / "full" / "model").state_dict()
    b = load_model(tmp_path / "killed" / "model").state_dict()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    assert resumed["tokens_per_domain"] == full["tokens_per_domain"]
    # Requested checkpoints stay, superseded resume points are removed.
    kept = sorted(p.name for p in (tmp_path / "full" / "checkpoints").iterdir())
    assert kept == ["step-4", "step-8"]
    log = json.loads((tmp_path / "full" / "train_log.json").read_text())
    assert log["log"][-1]["loss"] < log["log"][0]["loss"]


def test_uniform_sampling_draws_domains_evenly():
    streams = [np.arange(100, dtype=np.int32), np.arange(1000, 1100, dtype=np.int32)]
    rng = np.random.default_rng(0)
    tokens, domains = sample_batch(streams, np.array([0.5, 0.5]), 4000, 10, rng)
    assert tokens.shape == (4000, 11)
    assert abs(domains.mean() - 0.5) < 0.03
    assert np.all(tokens[domains == 1] >= 1000)  # windows come from the drawn domain


def test_truncated_trunk_equals_full_forward_hidden_state():
    model = build_model(TINY, 100, 32, 0).eval()
    ids = torch.randint(0, 100, (3, 12))
    with torch.no_grad():
        hidden = model.transformer(ids, output_hidden_states=True).hidden_states
        for layer in (1, 2):
            copy = build_model(TINY, 100, 32, 0).eval()
            copy.load_state_dict(model.state_dict())
            trunk = truncate_to_layer(copy, layer)
            torch.testing.assert_close(trunk(input_ids=ids), hidden[layer])
            assert len(trunk.blocks) == layer


def test_default_layer_is_the_authors_middle_hidden_state():
    # The authors embed with hidden_states[(L + 1) // 2]: block 2 of a 3-block proxy, not 1.
    assert [middle_layer(n) for n in (1, 2, 3, 4, 6, 7, 12)] == [1, 1, 2, 2, 3, 4, 6]
    model = build_model(TINY, 100, 32, 0).eval()
    stream = torch.randint(1, 100, (40,)).numpy()
    windows = stream_windows(stream, 4, 8, seed=0)
    with torch.no_grad():
        hidden = model.transformer(torch.from_numpy(np.stack(windows)), output_hidden_states=True)
        expected = hidden.hidden_states[(3 + 1) // 2].double().mean(dim=1).mean(dim=0).numpy()
    result = embed_domain(model, 0, stream, np.array([0, 40]), 4, 8, "stream", device="cpu")
    assert result.layer == 2
    np.testing.assert_allclose(result.mean, expected, rtol=1e-5, atol=1e-6)


def test_trunk_works_for_other_decoders():
    """A Llama-style model (blocks in model.layers, RMSNorm after them) embeds the same way."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=100,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    ids = torch.randint(0, 100, (2, 10))
    with torch.no_grad():
        hidden = model.model(ids, output_hidden_states=True).hidden_states
        expected = hidden[2]
        trunk = truncate_to_layer(model, 2)
        torch.testing.assert_close(trunk(input_ids=ids), expected)
    assert len(model.model.layers) == 2  # block 3 never runs


def test_mean_over_real_tokens_ignores_padding():
    torch.manual_seed(0)
    trunk = truncate_to_layer(build_model(TINY, 100, 32, 0), 2)
    short, long = np.array([5, 6, 7]), np.arange(10, 22)
    alone = embed_windows(trunk, [short], pad_id=0)
    batched = embed_windows(trunk, [long, short], pad_id=0, batch_size=2)
    np.testing.assert_allclose(batched[1], alone[0], atol=1e-5)
    with_padding = embed_windows(trunk, [long, short], pad_id=0, batch_size=2, include_padding=True)
    assert not np.allclose(with_padding[1], alone[0], atol=1e-3)
    np.testing.assert_allclose(with_padding[0], batched[0], atol=1e-5)  # nothing padded there


@pytest.mark.parametrize("sampling", ["stream", "document"])
def test_domain_embeddings_separate_domains(tokens, tokenizer_dir, tmp_path, sampling):
    train_from_scratch(tokens, tokenizer_dir, TINY, CFG, tmp_path, device="cpu")
    pad = load_tokenizer(tmp_path / "model").pad_token_id

    def embed(name):
        stream, offsets = read_tokens(tokens[name], "train"), read_offsets(tokens[name], "train")
        model = load_model(tmp_path / "model")
        return embed_domain(model, pad, stream, offsets, 16, 16, sampling, seed=1)

    means = {}
    for name in domain_texts():
        result = embed(name)
        assert result.layer == 2 and result.samples.shape == (16, 32)  # block 2 of 3
        means[name] = result.mean
    np.testing.assert_allclose(embed("code").mean, means["code"])  # deterministic under the seed
    assert not np.allclose(means["code"], means["prose"], atol=1e-3)


def test_embedding_errors_name_the_culprit(tokens, tokenizer_dir, tmp_path):
    train_from_scratch(tokens, tokenizer_dir, TINY, CFG, tmp_path, device="cpu")
    with pytest.raises(ValueError, match=r"layer 4 is out of range: the model has blocks 1..3"):
        truncate_to_layer(load_model(tmp_path / "model"), 4)
    with pytest.raises(
        FileNotFoundError, match=r"checkpoint step-3 .* does not exist \(kept: step-4, step-8\)"
    ):
        checkpoint_dir(tmp_path / "model", "step-3")
    with pytest.raises(FileNotFoundError, match="holds no model"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="holds no tokenizer"):
        load_tokenizer(tmp_path / "checkpoints")
    out = tmp_path / "emb"
    with pytest.raises(ValueError, match="out of range"):
        embed_domain_to_files(
            tmp_path / "model",
            "final",
            tokens["code"],
            {"samples": 4, "seq_len": 8, "sampling": "stream", "layer": 9},
            out / "code.npy",
            out / "code.samples.npy",
            out / "code.json",
            model_name="p",
        )
    assert not out.exists() or not any(out.iterdir())
