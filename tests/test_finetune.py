"""The finetuning stage: no proxy, the pretrained model embeds, alpha = softmax(S/tau), and each
mixture finetunes that model with the one trainer (resume included)."""

import copy
import json

import numpy as np
import pytest
import torch
from conftest import load_test_config
from test_workflow import (
    DOMAINS,
    planned_jobs,
    small_config,
    small_finetune_dataset,
    snakemake,
    write_config,
)

from chameleon_mix.config import ConfigError, validate_config
from chameleon_mix.krls import softmax
from chameleon_mix.mixtures import chameleon_mixture
from chameleon_mix.model import build_model, load_model, load_pretrained
from chameleon_mix.tokenizer import load_tokenizer
from chameleon_mix.train import finetune

TINY = {"n_layer": 2, "n_head": 2, "n_embd": 32}
SCHEDULE = {
    "steps": 8,
    "batch_size": 4,
    "seq_len": 16,
    "lr": 3e-3,
    "min_lr": 3e-4,
    "warmup_steps": 2,
    "checkpoint_every": 2,
}


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory, tokenizer_dir):
    """A randomly initialised GPT-2 saved with its tokenizer: a local Hugging Face model."""
    path = tmp_path_factory.mktemp("pretrained") / "model"
    tokenizer = load_tokenizer(tokenizer_dir)
    tokenizer.save_pretrained(path)
    torch.manual_seed(0)
    build_model(TINY, len(tokenizer), 64, tokenizer.eos_token_id).save_pretrained(path)
    return path


# --- the library ------------------------------------------------------------------------------
def test_finetuning_starts_from_the_pretrained_model(pretrained, tokens, tmp_path):
    frozen = {**SCHEDULE, "steps": 2, "lr": 1e-12, "min_lr": 0.0}
    log = finetune(tokens, pretrained, frozen, tmp_path, {"code": 0.5, "prose": 0.5})
    assert log["pretrained"]["path"] == str(pretrained) and log["model"]["n_layer"] == 2
    before = load_model(pretrained).state_dict()
    after = load_model(tmp_path / "model").state_dict()
    for name, tensor in before.items():
        torch.testing.assert_close(after[name], tensor, atol=1e-6, rtol=0)


def test_finetune_resumes_to_the_same_model(pretrained, tokens, tmp_path):
    weights = {"code": 0.8, "prose": 0.2}
    full = finetune(tokens, pretrained, SCHEDULE, tmp_path / "full", weights)
    stopped = finetune(tokens, pretrained, SCHEDULE, tmp_path / "killed", weights, stop_after=3)
    assert stopped == {"stopped_at": 3}
    resumed = finetune(tokens, pretrained, SCHEDULE, tmp_path / "killed", weights)
    assert resumed["resumed_from_step"] == 2  # the last resume point before the kill
    a = load_model(tmp_path / "full" / "model").state_dict()
    b = load_model(tmp_path / "killed" / "model").state_dict()
    # Bit-equal on the CPU; CUDA kernels (bf16, compiled, atomics) do not repeat bit for bit.
    tolerance = (
        {"atol": 1e-3, "rtol": 1e-2} if torch.cuda.is_available() else {"atol": 0, "rtol": 0}
    )
    for name in a:
        torch.testing.assert_close(a[name], b[name], **tolerance)
    assert full["tokens_per_domain"] == resumed["tokens_per_domain"]
    assert full["tokens_per_domain"]["code"] > full["tokens_per_domain"]["prose"]
    untouched = load_model(pretrained).state_dict()["transformer.h.0.mlp.c_fc.weight"]
    assert not torch.equal(a["transformer.h.0.mlp.c_fc.weight"], untouched)


def test_unusable_pretrained_models_are_refused(pretrained, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; train it first"):
        load_pretrained(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no model"):
        load_pretrained(tmp_path / "empty")
    from transformers import ViTConfig

    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2).save_pretrained(
        tmp_path / "vit"
    )
    with pytest.raises(ValueError, match="is a 'vit' model, not a causal LM"):
        load_pretrained(tmp_path / "vit")
    load_model(pretrained).save_pretrained(tmp_path / "no_tokenizer")
    with pytest.raises(FileNotFoundError, match="has no usable tokenizer"):
        load_pretrained(tmp_path / "no_tokenizer")


def test_the_control_mixture_inverts_the_finetuning_order(tmp_path):
    """chameleon_pt (paper App. B.8) on a finetune dataset's S: the most distinct domain gets
    the most finetuning weight and the least control weight."""
    names = ["a", "b", "c"]
    scores = np.array([0.2, 0.3, 0.5])
    info = {"architecture": TINY, "layer": 1, "tokens": 1000, "seq_len": 16}
    report = {
        "stage": "finetune",
        "domains": names,
        "scores": dict(zip(names, scores)),
        "weights": dict(zip(names, softmax(scores, 0.2))),
        "params": {"lam": 10.0, "tau": 0.2, "temperature": "paper"},
        "embeddings": {"pretrained": {n: info for n in names}},
    }
    (tmp_path / "weights.json").write_text(json.dumps(report))
    ft = chameleon_mixture(tmp_path / "ft.json", names, tmp_path / "weights.json", None)
    control = chameleon_mixture(
        tmp_path / "pt.json",
        names,
        tmp_path / "weights.json",
        None,
        method="chameleon_pt",
        stage="pretrain",
    )
    assert max(ft["weights"], key=ft["weights"].get) == "c"
    assert min(control["weights"], key=control["weights"].get) == "c"
    np.testing.assert_allclose(list(control["weights"].values()), softmax(1 / scores, 5.0))
    assert control["method"] == "chameleon_pt" and control["proxy_flops"] == 0.0
    assert ft["compute_flops"] == control["compute_flops"] == ft["embedding_flops"] > 0


# --- the config -------------------------------------------------------------------------------
def finetune_config(model_dir, **changes):
    methods = ["uniform", "chameleon", "chameleon_pt"]
    dataset = {**small_finetune_dataset(str(model_dir), methods), **changes}
    return {"corpus": load_test_config("config-small")["corpus"], "datasets": {"ft": dataset}}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"proxy": "tiny"}, r"datasets\.ft\.proxy: a finetune dataset trains no proxy"),
        (
            {"pretrained": "/no/such/model"},
            r"datasets\.ft\.pretrained: /no/such/model is not a dir",
        ),
        (
            {"pretrained": "results/elsewhere/base/uniform/seed-0/model"},
            r"base model of 'elsewhere', which is not a pretraining dataset",
        ),
        ({"base": {"model": "tiny"}}, r"datasets\.ft\.base: a finetune dataset trains no base"),
    ],
)
def test_bad_finetune_entries_are_refused(pretrained, changes, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(finetune_config(pretrained, **changes))


def test_finetune_entry_needs_its_pretrained_model(pretrained):
    config = finetune_config(pretrained)
    del config["datasets"]["ft"]["pretrained"]
    with pytest.raises(ConfigError, match=r"datasets\.ft\.pretrained: a finetune dataset needs"):
        validate_config(config)
    pretraining = copy.deepcopy(small_config(DOMAINS))
    pretraining["datasets"]["small"]["methods"].append("chameleon_pt")
    with pytest.raises(ConfigError, match=r"chameleon_pt is the finetuning control"):
        validate_config(pretraining)


# --- the workflow -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory, pretrained):
    workdir = tmp_path_factory.mktemp("finetune")
    write_config(workdir, finetune_config(pretrained))
    return workdir


def test_a_finetune_dataset_schedules_no_proxy_or_tokenizer(workdir):
    jobs = planned_jobs(workdir, "results/ft/report/comparison.md")
    rules = {rule for rule, _ in jobs}
    assert not rules & {"train_proxy", "train_tokenizer", "train_base", "stability"}
    finetuned = sorted(w for rule, w in jobs if rule == "finetune")
    assert finetuned == [  # one job per method and seed (the dataset's `seeds: [0, 1]`)
        f"dataset=ft, method={m}, seed={s}"
        for m in ("chameleon", "chameleon_pt", "uniform")
        for s in (0, 1)
    ]
    assert sum(rule == "embed_domain" for rule, _ in jobs) == len(DOMAINS)


def test_a_finetune_dataset_has_no_stability_target(workdir):
    out = snakemake(workdir, "-n", "results/ft/stability.csv", succeed=False)
    assert "is a finetune dataset: there are no proxy checkpoints" in out
