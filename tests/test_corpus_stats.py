"""Corpus statistics on a SlimPajama-shaped source: the whole source counted while it is
sampled, tokens estimated from the tokenized shards, checked against tokenizing every
document."""

import json

import numpy as np
import pytest
from conftest import train_tokenizer, write_slimpajama_chunks

from chameleon_mix.corpus import collect
from chameleon_mix.corpus_stats import (
    CorpusStatsError,
    corpus_statistics,
    read_corpus_tokens,
    tokens_per_byte,
)
from chameleon_mix.mixtures import natural_mixture
from chameleon_mix.shards import partition_part, sample_domain, sample_partition
from chameleon_mix.tokenizer import load_tokenizer
from chameleon_mix.tokens import RatioSums, write_token_files

# SlimPajama-627B's sets at their shares (Soboleva et al. 2023), each a kind of text found on
# this machine; documents in proportion to the shares, the smallest set 200 documents.
SETS = {
    "RedPajamaCommonCrawl": ("man_pages", 0.522),
    "RedPajamaC4": ("c_headers", 0.267),
    "RedPajamaGithub": ("python_code", 0.052),
    "RedPajamaBook": ("changelogs", 0.042),
    "RedPajamaArXiv": ("docstrings", 0.046),
    "RedPajamaWikipedia": ("licenses", 0.038),
    "RedPajamaStackExchange": ("perl_modules", 0.033),
}
SMALLEST = 200
COPIED = 17  # further copies of StackExchange documents, an exact count to find
SPLITS = {"train": 160, "val": 20, "test": 20}  # the smallest set's 200 distinct documents
SEED = 17


def set_documents(tmp_path) -> dict[str, list[str]]:
    """Each set's documents: collected text, in proportion to SlimPajama's shares."""
    smallest = min(share for _, share in SETS.values())
    documents = {}
    for name, (collector, share) in SETS.items():
        count = round(SMALLEST * share / smallest)
        jsonl = tmp_path / f"{collector}.jsonl"
        written = collect(collector, jsonl, tmp_path / f"{collector}.json", count, max_chars=1500)
        if written < count:
            pytest.skip(f"this machine has {written} {collector} documents, not {count}")
        documents[name] = [json.loads(line)["text"] for line in jsonl.read_text().splitlines()]
    stack = documents["RedPajamaStackExchange"]
    stack.extend(stack[:COPIED])
    return documents


@pytest.fixture(scope="module")
def slimpajama(tmp_path_factory):
    """A mixed source of four jsonl.zst chunks, its partition, shards and token files."""
    root = tmp_path_factory.mktemp("slimpajama")
    documents = set_documents(root)
    chunks = root / "train"
    write_slimpajama_chunks(chunks, documents, 4)
    parts = []
    for i in range(4):
        part = root / f"part-{i}"
        source = {"files": [str(chunks / f"chunk_{i}.jsonl.zst")]}
        partition_part(
            source, "meta.redpajama_set_name", SMALLEST, SEED, f"{part}.parquet", f"{part}.json"
        )
        parts.append((f"{part}.parquet", f"{part}.json"))
    texts = [t for ts in documents.values() for t in ts[:40]]
    tokenizer_dir = root / "tokenizer"
    train_tokenizer(texts, 1000, tokenizer_dir)
    shard_stats, token_stats = [], []
    for name in SETS:
        shards = root / "shards" / name
        sample_partition(name, name, parts, SPLITS, shards)
        splits = {s: shards / f"{s}.parquet" for s in SPLITS}
        write_token_files(splits, tokenizer_dir, root / "tokens" / name)
        shard_stats.append(shards / "stats.json")
        token_stats.append(root / "tokens" / name / "stats.json")
    stats = corpus_statistics("slimpajama", list(SETS), shard_stats, token_stats)
    return documents, stats, tokenizer_dir


def exact_tokens(texts: list[str], tokenizer_dir) -> int:
    """Every document tokenized, one EOS each, as a trainer reading the files counts them."""
    tokenizer = load_tokenizer(tokenizer_dir)
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return sum(len(i) + 1 for i in ids)


def test_token_estimates_are_within_2_percent_of_every_document_tokenized(slimpajama):
    documents, stats, tokenizer_dir = slimpajama
    for name, texts in documents.items():
        entry = stats["domains"][name]
        exact = exact_tokens(texts, tokenizer_dir)
        assert entry["documents"] == len(texts)
        assert entry["bytes"] == sum(len(t.encode()) for t in texts)
        assert abs(entry["tokens"] - exact) <= 0.02 * exact, (name, entry["tokens"], exact)
        # the standard error is honest: the estimate is within 4 of them of the truth
        assert abs(entry["tokens"] - exact) <= 4 * entry["tokens_stderr"] + 1e-6 * exact, name
    total = sum(exact_tokens(t, tokenizer_dir) for t in documents.values())
    assert stats["total_tokens"] == pytest.approx(total, rel=0.02)


def test_natural_mixture_is_each_domains_token_share(slimpajama, tmp_path):
    documents, stats, tokenizer_dir = slimpajama
    path = tmp_path / "corpus_stats.json"
    path.write_text(json.dumps(stats))
    mixture = natural_mixture(tmp_path / "natural.json", list(SETS), path)
    exact = {n: exact_tokens(t, tokenizer_dir) for n, t in documents.items()}
    total = sum(exact.values())
    for name in SETS:
        assert mixture["weights"][name] == pytest.approx(stats["natural"][name], abs=1e-12)
        assert mixture["weights"][name] == pytest.approx(exact[name] / total, rel=0.03)
    assert sum(mixture["weights"].values()) == pytest.approx(1.0)
    # CommonCrawl is most of SlimPajama's documents here, as of its tokens there
    assert max(mixture["weights"], key=mixture["weights"].get) == "RedPajamaCommonCrawl"


def test_copies_of_identical_texts_are_counted(slimpajama):
    _, stats, _ = slimpajama
    for name in SETS:
        expected = COPIED if name == "RedPajamaStackExchange" else 0
        assert stats["domains"][name]["duplicates"] == expected, name


def test_a_domain_with_its_own_source_is_counted_whole(tmp_path):
    texts = [f"document {i} " + "word " * (i % 50 + 5) for i in range(300)]
    texts += texts[:30]  # 30 copies
    texts += ["short"] * 5  # below min_chars: not part of the corpus
    source = tmp_path / "domain.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    stats = sample_domain("d", {"files": str(source)}, SPLITS, SEED, tmp_path / "out", min_chars=10)
    corpus = stats.corpus
    kept = [t for t in texts if len(t) >= 10]
    assert corpus["documents"] == len(kept) == 330
    assert corpus["bytes"] == sum(len(t.encode()) for t in kept)
    # 200 of 300 distinct texts sampled: an estimate, near the 30 copies there are
    assert not corpus["exact"]
    assert 15 <= corpus["duplicates"] <= 45


def test_standard_error_is_zero_when_the_whole_domain_is_tokenized():
    sums = RatioSums()
    sums.add(np.array([100, 250, 400]), np.array([30, 70, 130]))
    r, stderr = tokens_per_byte(sums.to_dict(), population=3)
    assert r == pytest.approx(230 / 750)
    assert stderr == 0.0
    r, stderr = tokens_per_byte(sums.to_dict(), population=3000)
    residuals = np.array([30, 70, 130]) - r * np.array([100, 250, 400])
    direct = np.sqrt((1 - 3 / 3000) * residuals.var(ddof=1) / 3) / 250
    assert stderr == pytest.approx(direct)


def test_unusable_corpus_statistics_are_refused(tmp_path):
    path = tmp_path / "corpus_stats.json"
    with pytest.raises(CorpusStatsError, match="no corpus statistics at .*corpus_stats.json"):
        read_corpus_tokens(path, ["a"])
    path.write_text(json.dumps({"domains": {"a": {"tokens": 10.0}, "b": {"tokens": 0}}}))
    with pytest.raises(CorpusStatsError, match="'b' have no tokens"):
        read_corpus_tokens(path, ["a", "b"])
    with pytest.raises(CorpusStatsError, match="no statistics for 'c'"):
        read_corpus_tokens(path, ["a", "c"])
    path.write_text(json.dumps({"domains": {"a": {"tokens": float("nan")}}}))
    with pytest.raises(CorpusStatsError, match="'a' have no tokens"):
        read_corpus_tokens(path, ["a"])
