"""The sensitivity table on real embeddings of a tiny model, and the rule's plan."""

import csv
import re
import shutil

import matplotlib.image
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import domain_texts
from test_workflow import DOMAINS, small_config, small_finetune_dataset, snakemake, write_config

from chameleon_mix.embed import embed_domain_to_files
from chameleon_mix.krls import center_kernel, softmax
from chameleon_mix.model import build_model
from chameleon_mix.sensitivity import (
    LAMBDA_GRID,
    TAU_FACTORS,
    sensitivity_stage,
    subsample_embeddings,
    subsample_rows,
    sweep,
)
from chameleon_mix.tokenizer import load_tokenizer
from chameleon_mix.tokens import write_token_files
from chameleon_mix.weights import compute_weights, load_embeddings

EMBEDDING = {"samples": 24, "seq_len": 16, "sampling": "stream", "batch_size": 24}
SETTINGS = {"stage": "pretrain", "lam": 10.0, "tau": None, "center": True, "normalize": True}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, tokenizer_dir):
    """Four domains embedded by two tiny models, standing in for a kept checkpoint (step 6)
    and the final proxy (step 12): step -> domain -> ``.npy`` (``.samples.npy`` beside)."""
    root = tmp_path_factory.mktemp("sensitivity")
    texts = {
        **domain_texts(),
        "ini": [f"[section{i}]\nname = value {i}\nsize = {i * 7}\n" for i in range(60)],
        "csv": [f"{i},{i * i},{'yes' if i % 2 else 'no'}\n" * 3 for i in range(60)],
    }
    tokenizer = load_tokenizer(tokenizer_dir)
    for name, domain_texts_ in texts.items():
        shard = root / "shards" / name / "train.parquet"
        shard.parent.mkdir(parents=True)
        pq.write_table(pa.table({"text": domain_texts_}), shard)
        write_token_files({"train": shard}, tokenizer_dir, root / "tokens" / name)
    files = {}
    for step, seed in ((6, 1), (12, 0)):
        torch.manual_seed(seed)
        model = build_model({"n_layer": 2, "n_head": 2, "n_embd": 32}, len(tokenizer), 16, 0)
        model.save_pretrained(root / f"model-{step}")
        tokenizer.save_pretrained(root / f"model-{step}")
        out = root / f"embeddings-{step}"
        files[step] = {name: out / f"{name}.npy" for name in texts}
        for name in texts:
            embed_domain_to_files(
                root / f"model-{step}",
                "final",
                root / "tokens" / name,
                EMBEDDING,
                files[step][name],
                out / f"{name}.samples.npy",
                out / f"{name}.json",
                model_name="tiny",
                device="cpu",
            )
    return files


def samples_of(files):
    return {name: path.with_suffix(".samples.npy") for name, path in files.items()}


@pytest.fixture(scope="module")
def stage(embedded, tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    outputs = {"table": out / "s.csv", "markdown": out / "s.md", "plot": out / "s.png"}
    rows = sensitivity_stage(embedded[12], SETTINGS, outputs, "tiny", checkpoint_files=embedded)
    return rows, outputs


def test_every_configured_row_is_the_weights_stage_mixture(embedded, stage):
    rows, outputs = stage
    names = list(embedded[12])
    configured = compute_weights(embedded[12], **SETTINGS)["weights"]
    configured = np.array([configured[n] for n in names])
    marked = [r for r in rows if r["configured"]]
    assert [(r["axis"], r["setting"]) for r in marked] == [
        ("tau", 5.0),
        ("lambda", 10.0),
        ("samples", 1.0),
        ("checkpoint", 12),
    ]
    for r in marked:
        assert np.array_equal(r["weights"], configured), r["axis"]
        assert r["tv_from_configured"] == 0
    # "all" is the stored domain embedding: the samples are kept as float16, so their mean
    # only approximates it.
    X = load_embeddings(embedded[12])
    means = np.stack(
        [np.load(p).astype(np.float64).mean(axis=0) for p in samples_of(embedded[12]).values()]
    )
    assert np.allclose(means, X, rtol=0, atol=2e-3 * np.abs(X).max()) and not np.array_equal(
        means, X
    )
    # The other rows moved. (Not along lambda's grid here: a random model's domain embeddings
    # are so close that k * lam dwarfs the kernel for every lam of the grid, the lam -> inf
    # regime of test_lambda_limits_as_derived.)
    for axis in ("tau", "samples", "checkpoint"):
        assert max(r["tv_from_configured"] for r in rows if r["axis"] == axis) > 1e-3, axis

    with open(outputs["table"], newline="") as f:
        table = list(csv.DictReader(f))
    assert len(table) == len(TAU_FACTORS) + len(LAMBDA_GRID) + 3 + 2  # no seed axis: one proxy
    assert [r["configured"] for r in table].count("True") == 4
    for line, r in zip(table, rows):
        weights = [float(line[f"weight_{n}"]) for n in names]
        assert np.allclose(weights, r["weights"], atol=1e-6) and abs(sum(weights) - 1) < 1e-5
        assert int(line["domains_for_90pct"]) == r["domains_for_mass"]
    text = outputs["markdown"].read_text()
    assert "| **5**, configured |" in text and "| **all (24 per domain)**, configured |" in text
    assert "## Proxy checkpoint (step)" in text
    height, width, _ = matplotlib.image.imread(outputs["plot"]).shape
    assert width > 2 * height  # four panels side by side


def test_tau_flattens_the_mixture_towards_uniform(embedded):
    X = load_embeddings(embedded[12])
    names = list(embedded[12])
    rows = sweep([X], SETTINGS, names, tau_factors=(1e-4, *TAU_FACTORS, 1e5))
    taus = [r for r in rows if r["axis"] == "tau"]
    # The entropy of softmax(z / tau) grows with tau.
    entropies = [r["normalized_entropy"] for r in taus]
    assert entropies == sorted(entropies) and len(set(entropies)) == len(entropies)
    coldest, hottest = taus[0], taus[-1]
    assert coldest["setting"] == 5e-4 and coldest["max_weight"] > 0.999
    assert coldest["domains_for_mass"] == 1
    assert np.abs(hottest["weights"] - 0.25).max() < 1e-4 and hottest["domains_for_mass"] == 4
    # The grid is relative to the configured tau, whatever its scale, and holds it once.
    rows = sweep([X], {**SETTINGS, "tau": 5 / 7}, names)
    taus = [r["setting"] for r in rows if r["axis"] == "tau"]
    assert np.allclose(taus, np.array(TAU_FACTORS) * 5 / 7, rtol=1e-12, atol=0)
    assert [r["setting"] for r in rows if r["configured"]] == [5 / 7, 10.0]


def test_lambda_limits_as_derived(embedded):
    """lam -> 0: every centred score -> 1 - 1/k, a uniform mixture; lam -> inf: scores in
    proportion to each domain's squared distance from the mean, the most uneven mixture."""
    X = load_embeddings(embedded[12])
    names = list(embedded[12])
    lams = (1e-8, *LAMBDA_GRID, 1e8)
    rows = [r for r in sweep([X], SETTINGS, names, lams=lams) if r["axis"] == "lambda"]
    assert [r["setting"] for r in rows] == list(lams)
    assert np.abs(rows[0]["weights"] - 0.25).max() < 1e-4
    K = np.diag(center_kernel(X @ X.T))
    assert np.allclose(rows[-1]["weights"], softmax(K.sum() / K, 5.0), atol=1e-6)
    assert rows[-1]["normalized_entropy"] < rows[len(lams) // 2]["normalized_entropy"] < 1 - 1e-6


def test_subsamples_are_seeded_nested_and_per_domain(embedded):
    quarter, half = subsample_rows(24, 0.25, 0, "code"), subsample_rows(24, 0.5, 0, "code")
    assert len(quarter) == 6 and len(half) == 12 and set(quarter) < set(half)
    assert np.array_equal(quarter, subsample_rows(24, 0.25, 0, "code"))
    assert not np.array_equal(quarter, subsample_rows(24, 0.25, 1, "code"))
    assert not np.array_equal(quarter, subsample_rows(24, 0.25, 0, "prose"))
    assert len(subsample_rows(3, 0.25, 0, "code")) == 1
    names = list(embedded[12])
    samples = [np.load(p) for p in samples_of(embedded[12]).values()]
    X = subsample_embeddings(samples, names, 0.25, seed=0)
    assert np.array_equal(X, subsample_embeddings(samples, names, 0.25, seed=0))
    assert np.array_equal(X[0], samples[0][quarter].astype(np.float64).mean(axis=0))
    # A domain's subset does not depend on the other domains.
    assert np.array_equal(X[1:], subsample_embeddings(samples[1:], names[1:], 0.25, seed=0))


def test_samples_of_another_run_are_refused(embedded, tmp_path):
    outputs = {
        "table": tmp_path / "s.csv",
        "markdown": tmp_path / "s.md",
        "plot": tmp_path / "s.png",
    }
    copied = tmp_path / "embeddings"
    copied.mkdir()
    files = {}
    for name, path in embedded[12].items():
        files[name] = copied / path.name
        shutil.copy(path, files[name])
        shutil.copy(samples_of(embedded[12])[name], copied / f"{name}.samples.npy")
    stale = copied / "code.samples.npy"
    shutil.copy(samples_of(embedded[6])["code"], stale)
    with pytest.raises(ValueError, match="the two files come from different embedding runs") as err:
        sensitivity_stage(files, SETTINGS, outputs, "tiny")
    assert f"domain 'code': the mean of the sample embeddings {stale}" in str(err.value)
    np.save(stale, np.load(samples_of(embedded[12])["code"])[0])
    with pytest.raises(ValueError, match=r"have shape \(32,\), expected \(samples, 32\)"):
        sensitivity_stage(files, SETTINGS, outputs, "tiny")
    assert not any(path.exists() for path in outputs.values())


def test_the_seed_axis_gives_each_replicate_alone(embedded, tmp_path):
    """Two embedders (here the two tiny models) as proxy replicates: the configured rows are
    their ensemble, the weights stage's mixture; each seed row is one replicate's mixture."""
    replicates = {"seed-0": embedded[12], "seed-1": embedded[6]}
    outputs = {key: tmp_path / f"s.{key}" for key in ("table", "markdown", "plot")}
    rows = sensitivity_stage(replicates, SETTINGS, outputs, "tiny")
    names = list(embedded[12])

    def mixture(files):
        weights = compute_weights(files, bootstrap=0, **SETTINGS)["weights"]
        return np.array([weights[n] for n in names])

    ensemble = mixture(replicates)
    for r in rows:
        if r["configured"]:
            assert np.array_equal(r["weights"], ensemble), r["axis"]
    seeds = [r for r in rows if r["axis"] == "seed"]
    assert [r["label"] for r in seeds] == ["seed-0", "seed-1"]
    for r, files in zip(seeds, replicates.values()):
        np.testing.assert_allclose(r["weights"], mixture(files), rtol=1e-12)
        assert r["tv_from_configured"] > 1e-3 and not r["configured"]
    assert "## Proxy replicate (seed)" in outputs["markdown"].read_text()


def test_the_rule_plans_only_the_embeddings(tmp_path, tokenizer_dir):
    """Beyond the proxy, no training: the sweep reuses the weights' and stability's embeddings.
    A finetune dataset's pretrained model embeds, and it has no checkpoints to sweep."""
    pretrained = tmp_path / "pretrained"
    build_model({"n_layer": 2, "n_head": 2, "n_embd": 32}, 400, 16, 0).save_pretrained(pretrained)
    load_tokenizer(tokenizer_dir).save_pretrained(pretrained)
    write_config(tmp_path, small_config(DOMAINS, {"ft": small_finetune_dataset(str(pretrained))}))
    out = snakemake(tmp_path, "-n", "results/small/sensitivity.csv", "results/ft/sensitivity.csv")
    jobs = []  # (rule, wildcards) of every planned job
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        head = re.match(r"(?:local)?rule (\w+):", block.strip())
        if head:
            wildcards = re.search(r"wildcards: (.*)", block)
            jobs.append(
                (head[1], dict(re.findall(r"(\w+)=([^,]+)", wildcards[1] if wildcards else "")))
            )
    data = {"collect_corpus", "sample_shards", "tokenize_domain", "train_tokenizer"}
    assert {rule for rule, _ in jobs} == data | {"train_proxy", "embed_domain", "sensitivity"}
    assert sorted(w["dataset"] for r, w in jobs if r == "sensitivity") == ["ft", "small"]
    checkpoints = {(w["dataset"], w["ckpt"]) for r, w in jobs if r == "embed_domain"}
    assert checkpoints == {("small", "final"), ("small", "step-6"), ("ft", "final")}
