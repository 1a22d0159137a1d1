"""Clustered datasets on real text: three kinds of documents collected from this machine,
sampled into shards, tokenized and embedded by a tiny model, then clustered."""

import json
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import domain_texts, load_test_config
from sklearn.metrics import adjusted_rand_score

from chameleon_mix.clusters import cluster_names
from chameleon_mix.clusters.assignments import ASSIGNMENTS_SCHEMA, cluster_shards
from chameleon_mix.clusters.documents import embed_documents_to_files
from chameleon_mix.clusters.kmeans import refit
from chameleon_mix.clusters.report import cluster_documents, labelled_comparison
from chameleon_mix.corpus import collect
from chameleon_mix.evaluate import domain_perplexities
from chameleon_mix.model import build_model
from chameleon_mix.shards import SPLITS, sample_domain
from chameleon_mix.tokenizer import load_tokenizer, read_texts, train_tokenizer
from chameleon_mix.tokens import read_offsets, read_tokens, write_token_files

SOURCES = ["python_code", "licenses", "man_pages"]
SPLIT_SIZES = {"train": 50, "val": 8, "test": 8}
EMBEDDING = {"layer": None, "seq_len": 48, "batch_size": 32, "include_padding": False}


def settings(**changes):
    """A dataset's `domains.cluster` as the schema completes it."""
    base = {
        "k": 3,
        "dataset": "labelled",
        "fit_documents": 100000,
        "niter": 25,
        "spherical": True,
        "center": True,
        "min_documents": {"train": 1, "val": 1, "test": 1},
    }
    return {**base, **changes}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """The labelled dataset: shards and token files of three sources, a tiny random model with
    the project's tokenizer, and every document's vector."""
    root = tmp_path_factory.mktemp("clusters")
    shards, token_dirs = {}, {}
    for name in SOURCES:
        jsonl = root / "corpus" / f"{name}.jsonl"
        collect(name, jsonl, root / "corpus" / f"{name}.manifest.json", 90, max_chars=1500)
        sample_domain(
            name,
            {"files": str(jsonl), "format": "jsonl"},
            SPLIT_SIZES,
            7,
            root / "shards" / name,
            200,
        )
        for split in SPLITS:
            shards[(name, split)] = root / "shards" / name / f"{split}.parquet"
    texts = read_texts([shards[(n, "train")] for n in SOURCES])
    train_tokenizer(texts, 500, root / "tokenizer")
    tokenizer = load_tokenizer(root / "tokenizer")
    for name in SOURCES:
        token_dirs[name] = root / "tokens" / name
        write_token_files(
            {s: shards[(name, s)] for s in SPLITS}, root / "tokenizer", token_dirs[name]
        )
    torch.manual_seed(0)
    model = build_model(
        {"n_layer": 2, "n_head": 2, "n_embd": 32}, len(tokenizer), 64, tokenizer.eos_token_id
    )
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    parts = [(name, split, token_dirs[name]) for name in SOURCES for split in SPLITS]
    out = root / "run"
    info = embed_documents_to_files(
        root / "model",
        parts,
        EMBEDDING,
        out / "documents.npy",
        out / "documents.json",
        "tiny",
        device="cpu",
    )
    return {"root": root, "shards": shards, "tokens": token_dirs, "info": info, "out": out}


def run(source, out, **changes):
    """cluster_documents into ``out`` (beside a copy of the document vectors)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("documents.npy", "documents.json"):
        if not (out / name).exists():
            (out / name).write_bytes((source["out"] / name).read_bytes())
    return cluster_documents(
        out / "documents.npy",
        out / "documents.json",
        source["shards"],
        settings(**changes),
        5,
        out / "assignments.parquet",
        out / "centroids.npz",
        out / "clusters.json",
        out / "clusters.md",
        dataset="clustered",
    )


@pytest.fixture(scope="module")
def clustered(source):
    return run(source, source["out"])


def test_cluster_names_are_zero_padded():
    assert cluster_names(3) == ["c00", "c01", "c02"]
    assert cluster_names(64)[-1] == "c63"
    assert cluster_names(101)[0] == "c000" and cluster_names(101)[-1] == "c100"


def test_every_document_is_embedded_once(source):
    vectors = np.load(source["out"] / "documents.npy")
    assert vectors.shape == (3 * sum(SPLIT_SIZES.values()), 32)
    assert np.isfinite(vectors).all()
    # A document's vector is that of its first 48 tokens: equal windows, equal vectors.
    windows = []
    for name in SOURCES:
        for split in SPLITS:
            tokens = read_tokens(source["tokens"][name], split)
            offsets = read_offsets(source["tokens"][name], split)
            windows += [tuple(tokens[s : min(s + 48, e - 1)]) for s, e in zip(offsets, offsets[1:])]
    assert len(set(windows)) < len(windows)  # licences and code share first lines
    assert len(np.unique(vectors.round(5), axis=0)) == len(set(windows))
    assert source["info"]["layer"] == 1 and source["info"]["seq_len"] == 48


def test_kmeans_is_seeded(source, clustered, tmp_path):
    again = run(source, tmp_path)
    first = pq.read_table(source["out"] / "assignments.parquet")
    second = pq.read_table(tmp_path / "assignments.parquet")
    assert first.equals(second)
    assert again["adjusted_rand_index"] == clustered["adjusted_rand_index"]


def test_every_document_is_assigned_once_one_row_group_per_cluster(source, clustered):
    shard = pq.ParquetFile(source["out"] / "assignments.parquet")
    assert shard.schema_arrow.equals(ASSIGNMENTS_SCHEMA)
    table = shard.read()
    keys = list(zip(*(table.column(c).to_pylist() for c in ("domain", "split", "row"))))
    expected = [(d, s, r) for d in SOURCES for s in SPLITS for r in range(SPLIT_SIZES[s])]
    assert sorted(keys) == sorted(expected)
    assert shard.num_row_groups == 3
    for c in range(3):
        assert set(shard.read_row_group(c).column("cluster").to_pylist()) == {c}
    # Each row is its source document: text and key agree with the source shard's row.
    for domain, split, row, text, key in zip(
        *(table.column(c).to_pylist() for c in ("domain", "split", "row", "text", "key"))
    ):
        original = pq.read_table(source["shards"][(domain, split)]).slice(row, 1)
        assert (original.column("text")[0].as_py(), original.column("key")[0].as_py()) == (
            text,
            key,
        )


def test_cluster_shards_hold_exactly_the_clusters_documents(source, clustered, tmp_path):
    assignments = pq.read_table(source["out"] / "assignments.parquet").to_pylist()
    test_texts = []
    for c, name in enumerate(cluster_names(3)):
        stats = cluster_shards(name, c, source["out"] / "assignments.parquet", 5, tmp_path / name)
        for split in SPLITS:
            shard = pq.read_table(tmp_path / name / f"{split}.parquet")
            assert shard.column_names == ["text", "source", "record", "key", "copies"]
            assert set(shard.column("copies").to_pylist()) == {1}  # the cluster is its documents
            expected = Counter(
                r["text"] for r in assignments if r["cluster"] == c and r["split"] == split
            )
            assert Counter(shard.column("text").to_pylist()) == expected
            assert stats.documents[split] == sum(expected.values()) > 0
            keys = shard.column("key").to_pylist()
            assert keys == sorted(keys)
            if split == "test":
                test_texts += shard.column("text").to_pylist()
        assert json.loads((tmp_path / name / "stats.json").read_text())["domain"] == name
    # The clusters' test documents are exactly the labelled dataset's test documents.
    source_test = read_texts([source["shards"][(d, "test")] for d in SOURCES])
    assert Counter(test_texts) == Counter(source_test)


def test_clusters_json_describes_each_cluster(source, clustered):
    report = json.loads((source["out"] / "clusters.json").read_text())
    table = pq.read_table(source["out"] / "assignments.parquet")
    ari = adjusted_rand_score(
        table.column("domain").to_pylist(), table.column("cluster").to_pylist()
    )
    assert report["adjusted_rand_index"] == pytest.approx(ari, abs=1e-12)
    assert report["labels"] == SOURCES and report["source"] == "labelled"
    assert report["documents"] == {s: 3 * n for s, n in SPLIT_SIZES.items()}
    assert [c["name"] for c in report["clusters"]] == ["c00", "c01", "c02"]
    for c in report["clusters"]:
        assert sum(c["labels"].values()) == pytest.approx(1, abs=1e-3)
        assert len(c["snippets"]) == 3 and all(0 < len(s["text"]) <= 200 for s in c["snippets"])
        assert len(c["terms"]) == 10
        assert sum(c["documents"].values()) == sum(
            r == report["clusters"].index(c) for r in table.column("cluster").to_pylist()
        )
    centroids = np.load(source["out"] / "centroids.npz")
    assert centroids["centroids"].shape == (3, 32)
    np.testing.assert_allclose(np.linalg.norm(centroids["centroids"], axis=1), 1, rtol=1e-4)
    md = (source["out"] / "clusters.md").read_text()
    assert f"{report['adjusted_rand_index']:.3f}" in md and "| c02 |" in md


def test_separable_groups_are_recovered(tmp_path, tokenizer_dir):
    """Three templated kinds of text (code, prose, ini files) are far apart even for a random
    model: with k = 3 the clusters are the three groups."""
    groups = {
        **domain_texts(),
        "ini": [f"[section{i}]\nname = value {i}\nsize = {i * 7}\n" for i in range(60)],
    }
    shards, parts = {}, []
    for name, texts in groups.items():
        jsonl = tmp_path / f"{name}.jsonl"
        jsonl.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
        sample_domain(
            name,
            {"files": str(jsonl), "format": "jsonl"},
            {"train": 40, "val": 10, "test": 10},
            7,
            tmp_path / "shards" / name,
        )
        shards.update({(name, s): tmp_path / "shards" / name / f"{s}.parquet" for s in SPLITS})
        write_token_files(
            {s: shards[(name, s)] for s in SPLITS}, tokenizer_dir, tmp_path / "tokens" / name
        )
        parts += [(name, s, tmp_path / "tokens" / name) for s in SPLITS]
    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    model = build_model({"n_layer": 2, "n_head": 2, "n_embd": 32}, len(tokenizer), 64, 0)
    model.save_pretrained(tmp_path / "model")
    tokenizer.save_pretrained(tmp_path / "model")
    out = tmp_path / "run"
    embed_documents_to_files(
        tmp_path / "model",
        parts,
        EMBEDDING,
        out / "documents.npy",
        out / "documents.json",
        "tiny",
        device="cpu",
    )
    report = cluster_documents(
        out / "documents.npy",
        out / "documents.json",
        shards,
        settings(),
        5,
        out / "assignments.parquet",
        out / "centroids.npz",
        out / "clusters.json",
        out / "clusters.md",
        dataset="clustered",
    )
    assert report["adjusted_rand_index"] > 0.9
    tops = {max(c["labels"], key=c["labels"].get) for c in report["clusters"]}
    assert tops == set(groups)


def test_refit_reproduces_the_workflows_ari(source, clustered):
    refitted = refit(source["out"], 3)
    assert refitted["adjusted_rand_index"] == clustered["adjusted_rand_index"]
    assert sum(sum(c.values()) for c in refitted["clusters"].values()) == 3 * 66


def test_short_clusters_take_their_nearest_documents(source, tmp_path):
    report = run(source, tmp_path, k=12, min_documents={"train": 10, "val": 2, "test": 2})
    for c in report["clusters"]:
        assert c["documents"]["train"] >= 10
        assert c["documents"]["val"] >= 2 and c["documents"]["test"] >= 2
    assert sum(report["reassigned"].values()) > 0
    assert sum(sum(c["reassigned"].values()) for c in report["clusters"]) == sum(
        report["reassigned"].values()
    )


def test_too_many_clusters_for_a_split_is_a_clear_error(source, tmp_path):
    with pytest.raises(ValueError) as err:
        run(source, tmp_path, k=30, min_documents={"train": 1, "val": 1, "test": 1})
    assert str(err.value) == (
        "dataset 'clustered': 30 clusters of at least 1 val documents need 30, but the source "
        "dataset 'labelled' has 24 val documents; lower cluster.k or cluster.min_documents.val"
    )
    assert not (tmp_path / "assignments.parquet").exists()


def test_labelled_comparison_scores_each_model_on_the_labelled_domains(source, tmp_path):
    files = {}
    for seed in (0, 1):
        torch.manual_seed(seed)
        tokenizer = load_tokenizer(source["root"] / "model")
        model = build_model({"n_layer": 1, "n_head": 2, "n_embd": 32}, len(tokenizer), 64, 0)
        model.save_pretrained(tmp_path / f"m{seed}")
        tokenizer.save_pretrained(tmp_path / f"m{seed}")
        files[seed] = tmp_path / f"m{seed}.json"
        domain_perplexities(tmp_path / f"m{seed}", source["tokens"], files[seed], batch_size=8)
    table = labelled_comparison(
        {"labelled/uniform": [files[0]], "clustered/uniform": [files[0], files[1]]},
        SOURCES,
        tmp_path / "labelled.md",
        tmp_path / "labelled.csv",
    )
    runs = [json.loads(files[s].read_text()) for s in (0, 1)]
    for d in SOURCES:
        assert table["labelled/uniform"][d] == runs[0][d]["perplexity"]
        mean = (runs[0][d]["perplexity"] + runs[1][d]["perplexity"]) / 2
        assert table["clustered/uniform"][d] == pytest.approx(mean)
    md = (tmp_path / "labelled.md").read_text()
    assert "| clustered/uniform |" in md and " ± " in md
    assert len((tmp_path / "labelled.csv").read_text().splitlines()) == 1 + 3 * 3


def test_workflow_plans_one_clustering_and_per_cluster_jobs(tmp_path):
    from test_workflow import DOMAINS, planned_jobs, small_config, write_config

    clustered = load_test_config("config-clusters")["datasets"]["small-clusters"]
    write_config(tmp_path, small_config(DOMAINS, {"small-clusters": clustered}))
    jobs = Counter(
        rule for rule, _ in planned_jobs(tmp_path, "results/small-clusters/weights.json")
    )
    assert jobs["embed_documents"] == jobs["cluster_documents"] == 1
    assert jobs["sample_shards"] == jobs["tokenize_domain"] == 3 + 4  # sources and clusters
    # The clusters are the first proxy replicate's; each of the 2 replicates embeds them all.
    assert jobs["embed_domain"] == 2 * 4 and jobs["weights"] == 1 and jobs["train_proxy"] == 2
    jobs = planned_jobs(tmp_path, "results/small-clusters/report/labelled.md")
    trained = sorted(w for rule, w in jobs if rule == "train_base")
    assert len(trained) == 2 * 2 + 2  # the clusters' two methods x two seeds, the source's two
    assert sorted(w for rule, w in jobs if rule == "labelled_perplexity") == [
        f"dataset=small-clusters, method={m}, seed={s}"
        for m in ("chameleon", "uniform")
        for s in (0, 1)
    ]
