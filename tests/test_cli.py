"""`chameleon-weights` on directories of per-domain embeddings."""

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from chameleon_mix.cli import main
from chameleon_mix.krls import chameleon_weights


@pytest.fixture
def embeddings(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(4, 16))
    for name, row in zip(["arxiv", "book", "cc", "github"], X):
        np.save(tmp_path / f"{name}.npy", row)
        # Not a domain: the samples the intervals redraw, whose mean the embedding is.
        noise = rng.normal(size=(8, 16))
        np.save(tmp_path / f"{name}.samples.npy", row + noise - noise.mean(axis=0))
    return tmp_path, X


@pytest.mark.parametrize("stage", ["pretrain", "finetune"])
def test_weights_from_a_directory(embeddings, tmp_path, stage, capsys):
    directory, X = embeddings
    out = tmp_path / "out" / "weights.json"
    assert (
        main([str(directory), "--stage", stage, "--lam", "2", "--tau", "0.5", "--out", str(out)])
        == 0
    )
    report = json.loads(out.read_text())
    expected = chameleon_weights(X, stage=stage, lam=2, tau=0.5)
    assert report["domains"] == ["arxiv", "book", "cc", "github"]
    np.testing.assert_allclose(list(report["weights"].values()), expected.weights)
    assert report["params"] == {
        "lam": 2.0,
        "lam_scaled": 8.0,
        "tau": 0.5,
        "temperature": "paper",
        "center": True,
        "normalize": True,
        "embedders": ["embeddings"],
        "combined": None,
    }
    assert report["uncertainty"]["draws"] == 200
    printed = capsys.readouterr().out
    low, high = report["intervals"]["github"]
    assert f"github  {report['scores']['github']:8.4f}" in printed
    assert f"[{low:.4f}, {high:.4f}]" in printed


def test_console_script_is_installed(embeddings):
    directory, _ = embeddings
    run = subprocess.run(
        [sys.executable, "-m", "chameleon_mix.cli", str(directory)], capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.splitlines()[0].split() == [
        "domain",
        "score",
        "weight",
        "90%",
        "interval",
    ]


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.full(16, np.nan), "NaN or Inf for: zz_bad"),
        (
            np.ones((2, 16)),
            "domain 'zz_bad': embedding .* has shape \\(2, 16\\), expected a vector",
        ),
        (np.ones(8), "differ in width .*zz_bad=8"),
    ],
)
def test_bad_embeddings_write_nothing(embeddings, tmp_path, bad, message, capsys):
    directory, _ = embeddings
    np.save(directory / "zz_bad.npy", bad)
    out = tmp_path / "weights.json"
    assert main([str(directory), "--out", str(out)]) == 2
    assert not out.exists()
    assert re.search(message, capsys.readouterr().err)


def test_a_single_domain_is_refused(tmp_path, capsys):
    np.save(tmp_path / "only.npy", np.ones(4))
    assert main([str(tmp_path)]) == 2
    assert "at least 2 domains" in capsys.readouterr().err


def test_export_a_mixture(tmp_path, tokenizer_dir, capsys):
    """`chameleon-weights export` on a by-domain manifest, with the workflow's val/test
    shards for Megatron's per-split blends and a budget."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from by_domain_data import write_by_domain

    texts = {
        "short": [f"River {i} is slow." for i in range(40)],
        "long": [" ".join(f"The mill {i} turns {j} times." for j in range(12)) for i in range(40)],
    }
    manifest, lengths = write_by_domain(tmp_path / "by_domain", texts, tokenizer_dir)
    for domain, docs in texts.items():
        (tmp_path / "shards" / domain).mkdir(parents=True)
        for split in ("val", "test"):
            pq.write_table(
                pa.table({"text": docs[:5]}), tmp_path / "shards" / domain / f"{split}.parquet"
            )
    mixture = tmp_path / "mixture.json"
    mixture.write_text(json.dumps({"weights": {"short": 0.5, "long": 0.5}}))
    out = tmp_path / "export" / "mine"
    tokens = int(2 * min(map(sum, lengths.values())) / 0.5)  # the smaller domain read twice
    args = ["--manifest", str(manifest), "--eval-shards", str(tmp_path / "shards")]
    args += ["--seq-length", "16", "--global-batch-tokens", "64", "--tokens", str(tokens)]
    assert main(["export", str(mixture), *args, "--out", str(out)]) == 0
    hf = json.loads((out / "hf_interleave.json").read_text())
    shares = json.loads((out / "shares.json").read_text())
    mean = shares["mean_tokens_per_document"]
    # Equal token shares: documents drawn in inverse proportion to their mean length.
    p = dict(zip(hf["domains"], hf["probabilities"]))
    assert p["short"] / p["long"] == pytest.approx(mean["long"] / mean["short"])
    assert mean["long"] > 5 * mean["short"]
    assert shares["run"]["tokens"] == tokens and shares["run"]["budget"]
    per_split = json.loads((out / "megatron_per_split.json").read_text())
    assert per_split["valid"][1::2] == [
        str(tmp_path / "export" / "megatron_data" / "val" / d) for d in ("short", "long")
    ]
    assert (tmp_path / "export" / "megatron_data" / "test" / "long.idx").is_file()
    printed = capsys.readouterr().out
    assert f"run: {tokens:,} tokens (the budget)" in printed and "wrote" in printed

    # Every check before anything is written: a domain the manifest lacks ...
    (tmp_path / "missing.json").write_text(json.dumps({"weights": {"short": 0.5, "gone": 0.5}}))
    data_root = ["--data-root", str(tmp_path / "root")]
    assert (
        main(
            [
                "export",
                str(tmp_path / "missing.json"),
                *args,
                *data_root,
                "--out",
                str(tmp_path / "x"),
            ]
        )
        == 2
    )
    assert not (tmp_path / "x").exists() and not (tmp_path / "root").exists()
    assert "['gone'] are neither in the by-domain manifest" in capsys.readouterr().err
    # ... and a budget the corpus cannot cover within max_epochs.
    over = [*args[:-1], str(100 * tokens)]
    assert main(["export", str(mixture), *over, *data_root, "--out", str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "root").exists()
    assert "need more data than the corpus's" in capsys.readouterr().err
