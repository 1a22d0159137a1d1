"""Mixtures, perplexity and lm-eval tasks on a tiny model trained on real text of this machine."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from chameleon_mix.corpus import collect, missing_reason
from chameleon_mix.evaluate import (
    build_local_tasks,
    document_windows,
    domain_perplexities,
    downstream,
    fitting_batch_size,
    perplexity,
)
from chameleon_mix.mixtures import check_weights, read_mixture, write_mixture
from chameleon_mix.model import load_model
from chameleon_mix.tokenizer import load_tokenizer, train_tokenizer
from chameleon_mix.tokens import write_token_files
from chameleon_mix.train import sample_batch, train_from_scratch

TRAINED, OTHER = "licenses", "translations"
pytestmark = pytest.mark.skipif(
    any(missing_reason(c) for c in (TRAINED, OTHER)), reason="needs licence texts and .mo files"
)


# Every test of `trained` (about 5 s: collecting, tokenizing, training) is marked slow.
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained on licence texts; held-out licences and translations to score."""
    root = tmp_path_factory.mktemp("eval")
    shards = {}
    for name in (TRAINED, OTHER):
        collect(
            name,
            root / f"{name}.jsonl",
            root / f"{name}.json",
            max_documents=330,
            max_chars=1500,
            min_chars=600,
        )
        texts = [
            json.loads(line)["text"] for line in (root / f"{name}.jsonl").read_text().splitlines()
        ]
        shards[name] = {"train": texts[:200], "test": texts[200:]}
        for split, rows in shards[name].items():
            pq.write_table(pa.table({"text": rows}), root / f"{name}.{split}.parquet")
    train_tokenizer(shards[TRAINED]["train"] + shards[OTHER]["train"], 1000, root / "tok")
    for name in (TRAINED, OTHER):
        splits = {split: root / f"{name}.{split}.parquet" for split in ("train", "test")}
        write_token_files(splits, root / "tok", root / "tokens" / name)
    config = {
        "steps": 150,
        "batch_size": 16,
        "seq_len": 64,
        "lr": 3e-3,
        "min_lr": 3e-4,
        "warmup_steps": 10,
        "checkpoint_every": 150,
    }
    train_from_scratch(
        {TRAINED: root / "tokens" / TRAINED},
        root / "tok",
        {"n_layer": 2, "n_head": 2, "n_embd": 64},
        config,
        root / "run",
        device="cpu",
    )
    return root


def test_windows_predict_every_token_once():
    ids = list(range(1, 24))
    windows = document_windows(ids, eos=0, seq_len=5)
    predicted = [t for w in windows for t in w[1:]]
    assert predicted == ids and windows[0][0] == 0
    assert all(len(w) <= 6 for w in windows)
    assert document_windows([7], eos=0, seq_len=5) == [[0, 7]]


@pytest.mark.slow
def test_perplexity_equals_a_direct_computation(trained):
    model, tok = load_model(trained / "run/model"), load_tokenizer(trained / "run/model")
    text = "Permission is hereby granted, free of charge, to any person obtaining a copy"
    documents = [tok(doc)["input_ids"] for doc in (text, text[:20])]
    # On the CPU, as the direct computation below (CUDA would score in bf16).
    result = perplexity(model, documents, tok.eos_token_id, seq_len=8, batch_size=3, device="cpu")
    nll, count = 0.0, 0
    for doc in (text, text[:20]):
        sequence = [tok.eos_token_id, *tok(doc)["input_ids"]]
        for start in range(0, len(sequence) - 1, 8):
            window = torch.tensor([sequence[start : start + 9]])
            with torch.no_grad():
                logp = torch.log_softmax(model(window[:, :-1]).logits, -1)
            nll -= logp[0, torch.arange(window.size(1) - 1), window[0, 1:]].sum().item()
            count += window.size(1) - 1
    assert result["tokens"] == count
    assert result["perplexity"] == pytest.approx(math.exp(nll / count), rel=1e-4)


@pytest.mark.slow
def test_batch_size_auto_scores_as_a_given_batch_size(trained):
    """`auto` only picks how many windows go through at once: on the CPU 16, the same scores."""
    model, tok = load_model(trained / "run/model"), load_tokenizer(trained / "run/model")
    documents = [
        tok(f"line {i} of a licence text, granted free of charge")["input_ids"] for i in range(40)
    ]
    assert fitting_batch_size(model, 8, torch.device("cpu")) == 16
    auto = perplexity(model, documents, tok.eos_token_id, seq_len=8, device="cpu")
    given = perplexity(model, documents, tok.eos_token_id, seq_len=8, batch_size=16, device="cpu")
    assert auto == given


@pytest.mark.slow
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_batch_size_auto_fills_the_gpu(trained):
    model = load_model(trained / "run/model").to("cuda")
    size = fitting_batch_size(model, model.config.max_position_embeddings, torch.device("cuda"))
    assert size >= 16 and size & (size - 1) == 0


@pytest.mark.slow
def test_trained_text_has_lower_perplexity_than_unseen_text(trained, tmp_path):
    tokens = {n: trained / "tokens" / n for n in (TRAINED, OTHER)}
    result = domain_perplexities(trained / "run/model", tokens, tmp_path / "ppl.json")
    assert result[TRAINED]["perplexity"] < 0.5 * result[OTHER]["perplexity"]
    assert json.loads((tmp_path / "ppl.json").read_text()) == result


@pytest.mark.slow
def test_empty_test_split_is_refused(trained, tmp_path):
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), tmp_path / "empty.parquet")
    write_token_files({"test": tmp_path / "empty.parquet"}, trained / "tok", tmp_path / "void")
    with pytest.raises(ValueError, match="domain 'void': the test split of .* is empty"):
        domain_perplexities(trained / "run/model", {"void": tmp_path / "void"}, tmp_path / "o.json")
    assert not (tmp_path / "o.json").exists()


@pytest.mark.slow
def test_local_continuation_task_scores_the_trained_domain_above_chance(trained, tmp_path):
    names = build_local_tasks(
        "unit-test",
        {TRAINED: trained / f"{TRAINED}.test.parquet"},
        trained / "tok",
        tmp_path / "tasks",
        seed=0,
        examples_per_domain=100,
        context_tokens=32,
        continuation_tokens=16,
    )
    assert names == ["cmix_unit_test_continuation", "cmix_unit_test_rolling"]
    rows = [
        json.loads(line)
        for line in (tmp_path / "tasks/continuation.jsonl").read_text().splitlines()
    ]
    assert len(rows) == 100 and all(len(r["choices"]) == 4 for r in rows)
    result = downstream(
        trained / "run/model", ["local"], [0], tmp_path / "tasks", tmp_path / "d.json"
    )
    accuracy = result["cmix_unit_test_continuation"]["score"]
    # Chance is 0.25; with 100 examples, 0.45 is 4.6 standard deviations above it.
    assert result["cmix_unit_test_continuation"]["metric"] == "acc_mutual_info"
    assert accuracy > 0.45, accuracy
    assert result["cmix_unit_test_rolling"]["metric"] == "bits_per_byte"


@pytest.mark.slow
def test_unknown_and_offline_hub_tasks_are_named(trained, tmp_path):
    build_local_tasks(
        "t",
        {TRAINED: trained / f"{TRAINED}.test.parquet"},
        trained / "tok",
        tmp_path / "tasks",
        seed=0,
        examples_per_domain=4,
    )
    with pytest.raises(ValueError, match="lm-eval has no task 'arc_eazy'; did you mean arc_easy"):
        downstream(
            trained / "run/model", ["arc_eazy"], [0], tmp_path / "tasks", tmp_path / "d.json"
        )
    code = (
        "from chameleon_mix.evaluate import downstream\n"
        f"downstream({str(trained / 'run/model')!r}, ['sciq'], [0], {str(tmp_path / 'tasks')!r}, "
        f"{str(tmp_path / 'd.json')!r})\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode != 0
    assert "lm-eval task 'sciq' (0-shot) failed" in run.stderr and "use `local` tasks" in run.stderr
    assert not (tmp_path / "d.json").exists()


def test_realised_domain_counts_match_the_weights():
    streams = [np.zeros(200, np.int32), np.ones(200, np.int32), np.full(200, 2, np.int32)]
    weights = np.array([0.6, 0.3, 0.1])
    n = 20000
    _, domains = sample_batch(streams, weights, n, 16, np.random.default_rng(4))
    share = np.bincount(domains, minlength=3) / n
    sigma = np.sqrt(weights * (1 - weights) / n)
    assert np.all(np.abs(share - weights) < 4 * sigma)


@pytest.mark.parametrize(
    "weights, message",
    [
        ({"a": 0.5, "b": 0.4}, "sum to 0.9000, not 1"),
        ({"a": 1.2, "b": -0.2}, "must be >= 0"),
        ({"a": 1.0}, r"missing \['b'\]"),
        ({"a": 0.5, "b": 0.3, "c": 0.2}, r"unknown \['c'\]"),
    ],
)
def test_bad_mixtures_are_refused(weights, message):
    with pytest.raises(ValueError, match=message):
        check_weights(weights, ["a", "b"], "test")


def test_mixture_round_trip_and_missing_file(tmp_path):
    write_mixture(tmp_path / "m.json", "human", {"a": 0.251, "b": 0.75})  # rounded: renormalised
    assert read_mixture(tmp_path / "m.json", ["a", "b"]) == pytest.approx(
        {"a": 0.251 / 1.001, "b": 0.75 / 1.001}
    )
    with pytest.raises(FileNotFoundError, match="mixture .*nope.json does not exist"):
        read_mixture(tmp_path / "nope.json", ["a", "b"])
