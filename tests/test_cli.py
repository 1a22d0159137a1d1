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
    np.save(tmp_path / "cc.samples.npy", rng.normal(size=(8, 16)))  # ignored: per-sample file
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
        "center": True,
        "normalize": True,
    }
    assert "github" in capsys.readouterr().out


def test_console_script_is_installed(embeddings):
    directory, _ = embeddings
    run = subprocess.run(
        [sys.executable, "-m", "chameleon_mix.cli", str(directory)], capture_output=True, text=True
    )
    assert run.returncode == 0 and run.stdout.splitlines()[0].split() == [
        "domain",
        "score",
        "weight",
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
