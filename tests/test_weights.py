"""The weights stage on real embeddings (two domains holding the same data are named) and on
many domains; the files it writes."""

import csv
import json

import matplotlib.image
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import domain_texts

from chameleon_mix import plots
from chameleon_mix import weights as weights_module
from chameleon_mix.embed import embed_domain_to_files
from chameleon_mix.krls import AFFINITY_MAX_DOMAINS
from chameleon_mix.model import build_model
from chameleon_mix.tokenizer import load_tokenizer
from chameleon_mix.tokens import write_token_files
from chameleon_mix.weights import (
    DISTANCE_BLOCK,
    NEAR_DUPLICATE,
    compute_weights,
    duplicate_warnings,
    weights_stage,
)

SETTINGS = {"samples": 24, "seq_len": 16, "sampling": "stream", "batch_size": 24}


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory, tokenizer_dir):
    """Domain -> embedding .npy of a tiny model; `prose_copy` holds exactly `prose`'s texts,
    from a file of its own."""
    root = tmp_path_factory.mktemp("weights")
    texts = {
        **domain_texts(),
        "ini": [f"[section{i}]\nname = value {i}\nsize = {i * 7}\n" for i in range(60)],
    }
    texts["prose_copy"] = list(texts["prose"])
    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    model = build_model({"n_layer": 2, "n_head": 2, "n_embd": 32}, len(tokenizer), 16, 0)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    files = {}
    for name, domain_texts_ in texts.items():
        shard = root / "shards" / name / "train.parquet"
        shard.parent.mkdir(parents=True)
        pq.write_table(pa.table({"text": domain_texts_}), shard)
        write_token_files({"train": shard}, tokenizer_dir, root / "tokens" / name)
        out = root / "embeddings"
        files[name] = out / f"{name}.npy"
        embed_domain_to_files(
            root / "model",
            "final",
            root / "tokens" / name,
            SETTINGS,
            files[name],
            out / f"{name}.samples.npy",
            out / f"{name}.json",
            model_name="tiny",
            device="cpu",
        )
    return files


def test_two_domains_with_the_same_data_are_named_in_a_warning(embeddings, tmp_path, capsys):
    report = compute_weights(embeddings, tmp_path / "weights.json")
    [warning] = report["warnings"]
    assert warning.startswith(
        "domains 'prose' and 'prose_copy' have identical train tokens (embeddings 0 of the "
        "domains' spread apart): Chameleon counts one domain twice, and together they get "
    )
    together = report["weights"]["prose"] + report["weights"]["prose_copy"]
    assert f"together they get {together:.3f} of the weight" in warning
    assert json.loads((tmp_path / "weights.json").read_text())["warnings"] == [warning]
    assert f"warning: {warning}\n" in capsys.readouterr().err
    # Without the copy the same domains raise nothing.
    distinct = {d: embeddings[d] for d in ("code", "prose", "ini")}
    assert compute_weights(distinct)["warnings"] == []
    # The copy takes weight from the others: prose alone gets less than the pair.
    assert compute_weights(distinct)["weights"]["prose"] < together


def test_near_identical_embeddings_are_named_without_equal_tokens(embeddings):
    """A copy embedded elsewhere (another device, a few documents more) is not bit-equal."""
    names = ["code", "prose", "ini", "near"]
    X = np.stack([np.load(embeddings[d]) for d in names[:3]])
    spread = np.sqrt(((X - X.mean(axis=0)) ** 2).sum(axis=1).mean())
    direction = np.random.default_rng(0).standard_normal(X.shape[1])
    direction /= np.linalg.norm(direction)
    weights, no_digests = dict.fromkeys(names, 0.25), {d: {} for d in names}
    # Half and twice the threshold; a fourth point changes the spread by well under 2x.
    near = X[1] + 0.5 * NEAR_DUPLICATE * spread * direction
    [warning] = duplicate_warnings(np.vstack([X, near]), names, no_digests, weights)
    assert warning.startswith("domains 'prose' and 'near' have near-identical embeddings, 0.0"), (
        warning
    )
    assert f"of the domains' spread apart (below {NEAR_DUPLICATE})" in warning
    assert "together they get 0.500 of the weight" in warning
    near = X[1] + 2 * NEAR_DUPLICATE * spread * direction
    assert duplicate_warnings(np.vstack([X, near]), names, no_digests, weights) == []


def write_embeddings(directory, X, names, samples=False):
    """Domain -> ``.npy`` path of each row of X (and a ``.samples.npy`` of two rows beside)."""
    files = {}
    for name, row in zip(names, X):
        files[name] = directory / f"{name}.npy"
        np.save(files[name], row)
        if samples:
            np.save(directory / f"{name}.samples.npy", np.stack([row, row + 0.1]))
    return files


def refuse_constant(name):
    raise ValueError(f"weights.json holds {name}, which is not JSON")


def test_a_zero_score_writes_no_infinity_and_pretraining_names_the_domain(tmp_path):
    """A domain at the others' mean scores 0 up to rounding after centring."""
    others = np.random.default_rng(0).normal(size=(4, 6))
    names = ["arxiv", "book", "cc", "github", "centre"]
    files = write_embeddings(tmp_path, np.vstack([others, others.mean(axis=0)]), names)
    out = tmp_path / "finetune" / "weights.json"
    report = compute_weights(files, out, stage="finetune")
    written = json.loads(out.read_text(), parse_constant=refuse_constant)
    assert written["scores"]["centre"] < 1e-8 * max(written["scores"].values())
    assert "inverse_scores" not in written  # finetuning's formula has no 1/S
    assert min(report["weights"], key=report["weights"].get) == "centre"
    out = tmp_path / "pretrain" / "weights.json"
    with pytest.raises(ValueError, match="leverage score is 0 .* for centre: its embedding"):
        compute_weights(files, out, stage="pretrain", affinity_csv=tmp_path / "a.csv")
    assert not out.exists() and not (tmp_path / "a.csv").exists()
    # Without the centroid domain the pretraining weights write 1/S, all finite.
    del files["centre"]
    compute_weights(files, out, stage="pretrain")
    written = json.loads(out.read_text(), parse_constant=refuse_constant)
    assert written["inverse_scores"]["cc"] == pytest.approx(1 / written["scores"]["cc"])


def test_many_domains_leave_out_the_affinity_and_still_find_near_copies(tmp_path):
    """Past AFFINITY_MAX_DOMAINS no (k, k) matrix is written; duplicate_warnings compares the
    domains block by block, and a near-copy in another block than its original is found."""
    k = AFFINITY_MAX_DOMAINS + 1
    X = np.random.default_rng(1).normal(size=(k, 8))
    X[1500] = X[3] + 1e-4  # in another block (DISTANCE_BLOCK rows) than domain 3
    assert 3 // DISTANCE_BLOCK != 1500 // DISTANCE_BLOCK
    names = [f"c{i:04d}" for i in range(k)]
    files = write_embeddings(tmp_path, X, names)
    report = compute_weights(
        files, tmp_path / "weights.json", affinity_csv=tmp_path / "affinity.csv",
        temperature="scaled",
    )  # fmt: skip
    written = json.loads((tmp_path / "weights.json").read_text(), parse_constant=refuse_constant)
    assert written["affinity"] is None
    assert written["affinity_note"].startswith(f"affinity not stored: {k} domains, above 2000")
    assert written["params"]["temperature"] == "scaled"
    with open(tmp_path / "affinity.csv") as f:
        assert list(csv.reader(f)) == [["note"], [written["affinity_note"]]]
    [warning] = report["warnings"]
    assert warning.startswith("domains 'c0003' and 'c1500' have near-identical embeddings")


def test_the_affinity_plot_is_a_note_for_many_domains(tmp_path, monkeypatch):
    """The heatmap labels each domain; past AFFINITY_PLOT_MAX_DOMAINS (here lowered to 4, to
    keep the test fast) a note stands in for it."""
    monkeypatch.setattr(weights_module, "AFFINITY_PLOT_MAX_DOMAINS", 4)
    monkeypatch.setattr(plots, "MAX_LABELLED", 4)  # the weights as a ranked line instead
    monkeypatch.setattr(weights_module, "MAP_POINTS", 5)  # one sample per domain on the map
    names = ["arxiv", "book", "cc", "c4", "github"]
    X = np.random.default_rng(2).normal(size=(len(names), 4))
    files = write_embeddings(tmp_path, X, names, samples=True)
    outputs = {
        key: tmp_path / "out" / f"{key}.{suffix}"
        for key, suffix in [("weights", "json"), ("affinity", "csv"), ("affinity_plot", "png"),
                            ("map_plot", "png"), ("weights_plot", "png")]
    }  # fmt: skip
    settings = {"stage": "pretrain", "lam": 10.0, "tau": None, "temperature": "scaled"}
    report = weights_stage(files, settings, outputs, {"dataset": "t"})
    assert len(report["affinity"]) == len(names)  # written, but not drawn
    note = matplotlib.image.imread(outputs["affinity_plot"])
    assert note.shape[0] < 250 < note.shape[1]  # a wide strip of text, not a square heatmap
    ranked = matplotlib.image.imread(outputs["weights_plot"])
    assert ranked.shape[1] > 1.5 * ranked.shape[0]  # 7 x 4 inches, not 4 x 4 of five bars
