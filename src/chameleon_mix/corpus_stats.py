"""How much data stands behind each domain: documents, bytes and tokens of its whole source.

The sampling jobs count every document they read (``stats.json`` of a domain's shards,
``corpus``: documents kept, their UTF-8 bytes, copies of identical texts); the tokenized
shards give each domain's tokens per byte. A domain's tokens are then estimated as

    tokens = documents + bytes × r,    r = Σ t_j / Σ b_j

one EOS per document plus the text's tokens, ``r`` the ratio estimate of text tokens per
byte over the tokenized documents ``j`` (every split: each is a uniform sample of the
domain's distinct texts), with the ratio estimator's standard error (finite-population
corrected, so a domain tokenized whole has none). ``corpus_stats.json`` holds them, with
each domain's share of the tokens (the ``natural`` mixture).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .io import write_json


class CorpusStatsError(ValueError):
    """Corpus statistics that cannot be used: the message names the file and what to do."""


def tokens_per_byte(ratio: dict, population: int) -> tuple[float, float]:
    """The ratio estimate of text tokens per byte and its standard error, from the sums of
    :class:`chameleon_mix.tokens.RatioSums` over ``ratio["documents"]`` sampled documents of
    a domain of ``population`` distinct documents."""
    n, size, tokens = ratio["documents"], ratio["bytes"], ratio["tokens"]
    r = tokens / size
    if n < 2:
        return r, math.inf if n < population else 0.0
    residual = ratio["tokens_sq"] - 2 * r * ratio["cross"] + r * r * ratio["bytes_sq"]
    variance = max(residual, 0.0) / (n - 1)  # of t_j - r b_j
    correction = max(1.0 - n / population, 0.0) if population else 0.0
    mean_bytes = size / n
    return r, math.sqrt(correction * variance / n) / mean_bytes


def pooled_ratio(token_stats: dict, where: str) -> dict:
    """The ratio sums of every split of a domain's ``tokens/<domain>/stats.json``."""
    total = {
        "documents": 0,
        "bytes": 0,
        "tokens": 0,
        "bytes_sq": 0.0,
        "tokens_sq": 0.0,
        "cross": 0.0,
    }
    for split, stats in token_stats["splits"].items():
        if "ratio" not in stats:
            raise CorpusStatsError(
                f"{where}: split {split!r} has no tokens-per-byte sums (written by an older "
                f"version); rerun it: snakemake --forcerun tokenize_domain {where}"
            )
        for key in total:
            total[key] += stats["ratio"][key]
    return total


def domain_statistics(shard_stats: dict, token_stats: dict, where: str) -> dict:
    """One domain's entry of ``corpus_stats.json`` from its shards' and tokens' ``stats.json``
    (``where``: the token stats' path, for errors)."""
    corpus = shard_stats.get("corpus")
    if corpus is None:
        raise CorpusStatsError(
            f"the shards of domain {shard_stats['domain']!r} were sampled by an older version "
            "that did not count the source; resample them: snakemake --forcerun sample_shards"
        )
    ratio = pooled_ratio(token_stats, where)
    r, stderr = tokens_per_byte(ratio, corpus["distinct_documents"])
    return {
        "documents": corpus["documents"],
        "bytes": corpus["bytes"],
        "distinct_documents": corpus["distinct_documents"],
        "duplicates": corpus["duplicates"],
        "exact": corpus["exact"],
        "tokens": corpus["documents"] + corpus["bytes"] * r,
        "tokens_stderr": corpus["bytes"] * stderr,
        "tokens_per_byte": r,
        "sampled_documents": ratio["documents"],
        "source": shard_stats["source"],
    }


def corpus_statistics(
    dataset: str, domains: list[str], shard_stats: list[str | Path], token_stats: list[str | Path]
) -> dict:
    """``corpus_stats.json``'s content for ``domains``, from each one's shard and token
    ``stats.json`` (in ``domains`` order)."""
    entries, tokenizer = {}, None
    for domain, shard_path, token_path in zip(domains, shard_stats, token_stats, strict=True):
        tokens = json.loads(Path(token_path).read_text())
        tokenizer = tokens["tokenizer"]
        shard = json.loads(Path(shard_path).read_text())
        entries[domain] = domain_statistics(shard, tokens, str(token_path))
    total = sum(e["tokens"] for e in entries.values())
    return {
        "dataset": dataset,
        "tokenizer": tokenizer,
        "domains": entries,
        "total_tokens": total,
        "total_documents": sum(e["documents"] for e in entries.values()),
        "total_bytes": sum(e["bytes"] for e in entries.values()),
        "natural": {d: e["tokens"] / total for d, e in entries.items()},
    }


def write_corpus_stats(path: str | Path, *args) -> dict:
    """Write :func:`corpus_statistics` ``(*args)`` to ``path``; returns it."""
    stats = corpus_statistics(*args)
    write_json(path, stats)
    return stats


def read_corpus_tokens(path: str | Path, domains: list[str] | None = None) -> dict[str, float]:
    """Each domain's estimated tokens from ``corpus_stats.json`` (``domains``: those needed,
    in that order; default all), checked: every domain present with a positive count."""
    path = Path(path)
    if not path.is_file():
        raise CorpusStatsError(
            f"no corpus statistics at {path}: the workflow writes them "
            f"(snakemake {path}); a budget or the natural mixture needs each domain's tokens"
        )
    entries = json.loads(path.read_text()).get("domains", {})
    domains = list(entries) if domains is None else domains
    missing = [d for d in domains if d not in entries]
    if missing:
        raise CorpusStatsError(
            f"{path} has no statistics for {', '.join(map(repr, missing))} (it has "
            f"{', '.join(entries)}); remake it with those domains"
        )
    tokens = {d: entries[d].get("tokens") for d in domains}
    empty = [d for d, n in tokens.items() if not (isinstance(n, (int, float)) and n > 0)]
    if empty:
        raise CorpusStatsError(
            f"{path}: domain(s) {', '.join(map(repr, empty))} have no tokens; a domain "
            "without data cannot be weighted: fix its source or leave it out"
        )
    return tokens


def natural_shares(path: str | Path, domains: list[str]) -> dict[str, float]:
    """Each of ``domains``' share of their corpus tokens (``corpus_stats.json`` at ``path``)."""
    tokens = read_corpus_tokens(path, domains)
    total = sum(tokens.values())
    return {d: n / total for d, n in tokens.items()}
