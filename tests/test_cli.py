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
    """`chameleon-weights export` on a workflow-like layout: tokens/DOMAIN/, shards/DOMAIN/."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from chameleon_mix.tokens import write_token_files

    texts = {
        "short": [f"River {i} is slow." for i in range(40)],
        "long": [" ".join(f"The mill {i} turns {j} times." for j in range(12)) for i in range(40)],
    }
    for domain, docs in texts.items():
        (tmp_path / "shards" / domain).mkdir(parents=True)
        shard = tmp_path / "shards" / domain / "train.parquet"
        pq.write_table(pa.table({"text": docs}), shard)
        write_token_files({"train": shard}, tokenizer_dir, tmp_path / "tokens" / domain)
    mixture = tmp_path / "mixture.json"
    mixture.write_text(json.dumps({"weights": {"short": 0.5, "long": 0.5}}))
    out = tmp_path / "export" / "mine"
    args = ["--tokens", str(tmp_path / "tokens"), "--shards", str(tmp_path / "shards")]
    args += ["--global-batch-tokens", "1024", "--out", str(out)]
    assert main(["export", str(mixture), *args]) == 0
    hf = json.loads((out / "hf_interleave.json").read_text())
    mean = json.loads((out / "shares.json").read_text())["mean_tokens_per_document"]
    # Equal token shares: documents drawn in inverse proportion to their mean length.
    p = dict(zip(hf["domains"], hf["probabilities"]))
    assert p["short"] / p["long"] == pytest.approx(mean["long"] / mean["short"])
    assert mean["long"] > 5 * mean["short"]
    assert (tmp_path / "export" / "megatron_data" / "long.idx").is_file()
    assert "wrote" in capsys.readouterr().out

    (tmp_path / "missing.json").write_text(json.dumps({"weights": {"short": 0.5, "gone": 0.5}}))
    assert main(["export", str(tmp_path / "missing.json"), *args[:-1], str(tmp_path / "x")]) == 2
    assert not (tmp_path / "x").exists() and not (tmp_path / "megatron_data").exists()
    error = capsys.readouterr().err
    assert "holds no token files (no stats.json)" in error
