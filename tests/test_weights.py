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


def write_embeddings(directory, X, names):
    """Domain -> ``.npy`` path of each row of X, and a ``.samples.npy`` beside of two rows
    whose mean it is."""
    files = {}
    for name, row in zip(names, X):
        files[name] = directory / f"{name}.npy"
        np.save(files[name], row)
        np.save(directory / f"{name}.samples.npy", np.stack([row - 0.01, row + 0.01]))
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


@pytest.mark.slow
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
    files = write_embeddings(tmp_path, X, names)
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


def test_weights_json_states_intervals_and_the_replicates_spread(embeddings, tmp_path, capsys):
    """Two embedders standing in for proxy replicates (the same tiny model's embeddings, the
    second's shifted per domain): the mixture comes from their mean scores, each has its own,
    their spread is reported, and every weight has a 90% bootstrap interval."""
    names = ["code", "prose", "ini"]
    shifted = {}
    for i, name in enumerate(names):
        X = np.load(embeddings[name])
        samples = np.load(embeddings[name].with_suffix(".samples.npy")).astype(np.float64)
        step = np.random.default_rng(i).normal(size=X.shape) * np.abs(X).mean()
        shifted[name] = tmp_path / f"{name}.npy"
        np.save(shifted[name], samples.mean(axis=0) + step)
        np.save(tmp_path / f"{name}.samples.npy", (samples + step).astype(np.float16))
    replicates = {"seed-0": {n: embeddings[n] for n in names}, "seed-1": shifted}
    report = compute_weights(replicates, tmp_path / "weights.json", bootstrap=100)
    written = json.loads((tmp_path / "weights.json").read_text(), parse_constant=refuse_constant)
    assert written["params"]["embedders"] == ["seed-0", "seed-1"]
    alone = [compute_weights(files, bootstrap=0)["weights"] for files in replicates.values()]
    assert written["replicates"] == dict(zip(replicates, alone))
    for name in names:
        pair = [a[name] for a in alone]
        assert written["replicate_sd"][name] == pytest.approx(np.std(pair, ddof=1))
        low, high = written["intervals"][name]
        assert 0 <= low <= high <= 1
    assert written["uncertainty"] == {
        "level": 0.9,
        "draws": 100,
        "resampled": "the 2 proxy replicates, then each domain's embedding samples, with "
        "replacement",
    }
    # The nested bootstrap redraws the replicates: a quarter of its draws take one twice, a
    # quarter the other, so the intervals stretch across their disagreement.
    for name in names:
        low, high = written["intervals"][name]
        assert high - low >= 0.5 * abs(alone[0][name] - alone[1][name])
    spread = max(written["replicate_sd"].values())
    if spread > weights_module.UNCERTAIN_SD:
        assert any("the proxy replicates disagree" in w for w in report["warnings"])
        assert "the proxy replicates disagree" in capsys.readouterr().err
    # One embedder, no draws: no intervals and no spread, as the JSON says.
    single = compute_weights(replicates["seed-0"], bootstrap=0)
    assert single["intervals"] is None and single["replicate_sd"] is None
    one = compute_weights(replicates["seed-0"], bootstrap=20)["uncertainty"]["resampled"]
    assert one == (
        "each domain's embedding samples (one embedder: not the proxy's seed), with replacement"
    )


def test_wide_intervals_are_a_warning_naming_the_domains(tmp_path):
    """Domains whose samples scatter far more than their means differ: the mixture is noise."""
    rng = np.random.default_rng(0)
    names = ["a", "b", "c", "d"]
    files = {}
    for name in names:
        samples = rng.normal(size=(6, 5)) * 3
        files[name] = tmp_path / f"{name}.npy"
        np.save(files[name], samples.astype(np.float16).astype(np.float64).mean(axis=0))
        np.save(tmp_path / f"{name}.samples.npy", samples.astype(np.float16))
    report = compute_weights(files, bootstrap=100)
    widths = {n: hi - lo for n, (lo, hi) in report["intervals"].items()}
    assert max(widths.values()) > weights_module.UNCERTAIN_WIDTH
    [warning] = [w for w in report["warnings"] if "interval wider than" in w]
    widest = max(widths, key=widths.get)
    assert f"{widest} {report['weights'][widest]:.3f} [" in warning
    assert "embed more samples (embedding.samples)" in warning


def test_missing_samples_name_the_file_and_the_way_out(tmp_path):
    names = ["a", "b", "c"]
    files = write_embeddings(tmp_path, np.random.default_rng(0).normal(size=(3, 4)), names)
    (tmp_path / "b.samples.npy").unlink()
    with pytest.raises(ValueError, match=r"domain 'b': cannot read sample embeddings .*b\.samples"):
        compute_weights(files, tmp_path / "weights.json")
    assert not (tmp_path / "weights.json").exists()
    assert compute_weights(files, bootstrap=0)["intervals"] is None


def test_the_weights_plot_draws_the_intervals(tmp_path):
    weights = {"arxiv": 0.5, "book": 0.3, "cc": 0.2}
    plain, with_bars = tmp_path / "plain.png", tmp_path / "bars.png"
    plots.plot_weights(weights, plain)
    plots.plot_weights(
        weights, with_bars, intervals={n: [w - 0.1, w + 0.1] for n, w in weights.items()}
    )
    a, b = matplotlib.image.imread(plain), matplotlib.image.imread(with_bars)
    assert a.shape == b.shape
    changed = np.abs(a - b).max(axis=2) > 0.5  # the black error bars (and a taller y axis)
    assert changed.sum() > 50 and (b[changed][:, :3].max(axis=1) < 0.1).sum() > 20
