"""The paper-scale configs do not repeat a domain's train split more than 4 times (issue 24).

Base models and finetuned models sample windows from each domain's train split, a sample of
``splits.train`` documents. A mixture that gives a domain the weight w repeats its split

    w x planned tokens / (splits.train x mean tokens per document of the domain)

times, planned tokens = steps x batch_size x seq_len of the dataset's training schedule as
:func:`chameleon_mix.settings.resolve` completes it. Every mixture the comparison can train is
checked: uniform, the configured human weights, the natural token shares (`natural`, and the
centre of RegMix's runs) and the weights the Chameleon paper publishes (arXiv 2505.24844,
Tables 9, 15, 16, 17). Repeated data is worth much less past ~4 passes (Muennighoff et al.
2023), hence the bound.

Mean tokens per document are published statistics at ~4 bytes per token (GPT-2/NeoX-like
tokenizers on English; on other languages and on code they give more tokens per byte, so the
figures below err low, which makes the check stricter).
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from conftest import SLIMPAJAMA_SHARES

from chameleon_mix.config import validate_config
from chameleon_mix.plan import Plan
from chameleon_mix.settings import resolve

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())

MAX_REPETITION = 4
BYTES_PER_TOKEN = 4
KIB, GIB = 2**10, 2**30

PILE_TABLE_1 = "Gao et al. 2020 (the Pile), Table 1"


def pile(raw_gib: float, mean_kib: float) -> tuple[float, int]:
    """Tokens per document and documents of a Pile component from Table 1 (raw size, mean
    document size)."""
    return mean_kib * KIB / BYTES_PER_TOKEN, round(raw_gib * GIB / (mean_kib * KIB))


def hub(train_bytes: int, train_examples: int) -> tuple[float, int]:
    """Tokens per document and documents of a split from a dataset card's dataset_info."""
    return train_bytes / train_examples / BYTES_PER_TOKEN, train_examples


def github_code(size_gb: float, files: int) -> tuple[float, int | None]:
    """Tokens per file from codeparrot/github-code's card (file count, size in GB); the
    Stack-dedup's own file count is not taken from it (None)."""
    return size_gb * 1e9 / files / BYTES_PER_TOKEN, None


# dataset -> domain -> (mean tokens per document, documents in the whole corpus or None when
# not published, source). "estimate" marks a figure that is not the corpus's own.
CODEPARROT = "codeparrot/github-code card (GitHub files); ESTIMATE for the Stack-dedup"
WIKI40B_CARD = "google/wiki40b card, dataset_info of the train split"
WIKI40B_UNPUBLISHED = (
    "ESTIMATE: not in the card excerpts we could read; half of the shortest published "
    "language's mean article (fr, 3,137 bytes): smaller Wikipedias have shorter articles"
)
CORPUS_STATS = {
    "slimpajama": {
        # SlimPajama's card and the RedPajama-1T card give token counts per source but no
        # document counts; the Pile's components of the same kind stand in (estimates).
        "arxiv": (pile(56.21, 46.61)[0], None, f"ESTIMATE: {PILE_TABLE_1}, ArXiv"),
        # RedPajama's books are PG-19 and Books3 (538.36 KiB); PG-19's shorter mean is used.
        # Documents: SlimPajama-6B's card (a 1% sample: 3.7% of 23.9 GB are books) over
        # Books3's mean document gives ~1.6e5 books in SlimPajama (estimate).
        "book": (pile(10.88, 398.73)[0], 160_000, f"ESTIMATE: {PILE_TABLE_1}, Gutenberg"),
        # RedPajama's CC is cc_net output; Pile-CC (jusText pages) stands in.
        "cc": (pile(227.12, 4.33)[0], None, f"ESTIMATE: {PILE_TABLE_1}, Pile-CC"),
        # RedPajama took C4 (en) unchanged from the hub: 175B tokens (RedPajama-1T card) in
        # its 365M documents (allenai/c4 card; Raffel et al. 2020).
        "c4": (175e9 / 365e6, 365_000_000, "RedPajama-1T card; allenai/c4 card"),
        "github": (pile(95.16, 5.25)[0], None, f"ESTIMATE: {PILE_TABLE_1}, Github"),
        "stackexchange": (pile(32.20, 2.16)[0], None, f"ESTIMATE: {PILE_TABLE_1}, StackExchange"),
        # The Pile's English Wikipedia (1.11 KiB an article) is shorter than Wiki40b's (~3.2 KB).
        "wikipedia": (pile(6.38, 1.11)[0], None, f"ESTIMATE: {PILE_TABLE_1}, Wikipedia (en)"),
    },
    "pile": {
        "pile_cc": (*pile(227.12, 4.33), PILE_TABLE_1),
        "pubmed_central": (*pile(90.27, 30.55), PILE_TABLE_1),
        "arxiv": (*pile(56.21, 46.61), PILE_TABLE_1),
        "github": (*pile(95.16, 5.25), PILE_TABLE_1),
        "freelaw": (*pile(51.15, 15.06), PILE_TABLE_1),
        "stackexchange": (*pile(32.20, 2.16), PILE_TABLE_1),
        "uspto_backgrounds": (*pile(22.90, 4.08), PILE_TABLE_1),
        "pubmed_abstracts": (*pile(19.26, 1.30), PILE_TABLE_1),
        "gutenberg_pg_19": (*pile(10.88, 398.73), PILE_TABLE_1),
        "wikipedia_en": (*pile(6.38, 1.11), PILE_TABLE_1),
        "dm_mathematics": (*pile(7.75, 8.00), PILE_TABLE_1),
        "ubuntu_irc": (*pile(5.52, 545.48), PILE_TABLE_1),
        "europarl": (*pile(4.59, 68.87), PILE_TABLE_1),
        "hackernews": (*pile(3.90, 4.92), PILE_TABLE_1),
        "philpapers": (*pile(2.38, 73.37), PILE_TABLE_1),
        "nih_exporter": (*pile(1.89, 2.11), PILE_TABLE_1),
        "enron_emails": (*pile(0.88, 1.78), PILE_TABLE_1),
    },
    "wiki40b": {
        "de": (*hub(4_988_094_268, 1_554_910), WIKI40B_CARD),
        "fr": (*hub(3_850_031_120, 1_227_206), WIKI40B_CARD),
        "es": (*hub(2_906_242_601, 872_541), WIKI40B_CARD),
        "it": (3_137 / 2 / BYTES_PER_TOKEN, None, WIKI40B_UNPUBLISHED),
        "pt": (3_137 / 2 / BYTES_PER_TOKEN, None, WIKI40B_UNPUBLISHED),
        "nl": (3_137 / 2 / BYTES_PER_TOKEN, None, WIKI40B_UNPUBLISHED),
        "pl": (3_137 / 2 / BYTES_PER_TOKEN, None, WIKI40B_UNPUBLISHED),
    },
    "stack": {
        # The Stack paper's per-language table (Kocetkov et al. 2022) was not readable here;
        # codeparrot/github-code, also GitHub files of these languages, stands in.
        "python": (*github_code(52.03, 7_226_626), CODEPARROT),
        "java": (*github_code(107.70, 19_548_190), CODEPARROT),
        "c": (*github_code(183.83, 14_143_113), CODEPARROT),
        "cpp": (*github_code(87.73, 7_380_520), CODEPARROT),
        "go": (*github_code(19.28, 2_265_436), CODEPARROT),
        "ruby": (*github_code(10.95, 4_473_331), CODEPARROT),
        "php": (*github_code(61.41, 11_177_610), CODEPARROT),
    },
}

# Natural token shares, for the datasets whose runs use them (`natural` in methods, RegMix's
# runs centred on them). SlimPajama's card (Soboleva et al. 2023); the Pile's raw sizes
# (Table 1) of the 17 components the uncopyrighted Pile keeps. wiki40b and stack list no
# `natural` method and no RegMix, so no run trains on their natural shares.
NATURAL = {
    "slimpajama": SLIMPAJAMA_SHARES,
    "pile": {
        "pile_cc": 227.12,
        "pubmed_central": 90.27,
        "arxiv": 56.21,
        "github": 95.16,
        "freelaw": 51.15,
        "stackexchange": 32.20,
        "uspto_backgrounds": 22.90,
        "pubmed_abstracts": 19.26,
        "gutenberg_pg_19": 10.88,
        "wikipedia_en": 6.38,
        "dm_mathematics": 7.75,
        "ubuntu_irc": 5.52,
        "europarl": 4.59,
        "hackernews": 3.90,
        "philpapers": 2.38,
        "nih_exporter": 1.89,
        "enron_emails": 0.88,
    },
}

# The Chameleon paper's published weights, as printed (not renormalised: a column that sums
# over 1 is checked as it stands, which is stricter). One row per domain, as in the paper.
TABLE_9 = ("doremi", "doge", "chameleon", "regmix")  # SlimPajama, final domain weights
TABLE_9_ROWS = {
    "arxiv": (0.057, 0.041, 0.083, 0.001),
    "book": (0.002, 0.078, 0.164, 0.025),
    "cc": (0.237, 0.268, 0.202, 0.924),
    "c4": (0.237, 0.283, 0.247, 0.024),
    "github": (0.130, 0.059, 0.082, 0.019),
    "stackexchange": (0.101, 0.230, 0.149, 0.006),
    "wikipedia": (0.236, 0.041, 0.073, 0.001),
}
# Table 15, domain weights on the Pile. Its text is legible but two columns do not sum to 1,
# so some entries are misread or misprinted: DoGE's sums to 1.135 and Chameleon's to 1.017
# (its Philpapers shows Stackexchange's 0.0226); used as printed.
TABLE_15 = ("human", "doremi", "doge", "regmix", "chameleon")
TABLE_15_ROWS = {
    "arxiv": (0.134, 0.004, 0.0608, 0.001, 0.0386),
    "dm_mathematics": (0.025, 0.002, 0.0280, 0.000, 0.0538),
    "enron_emails": (0.004, 0.009, 0.0239, 0.002, 0.0085),
    "europarl": (0.005, 0.008, 0.0407, 0.000, 0.0048),
    "freelaw": (0.049, 0.005, 0.0293, 0.001, 0.0147),
    "github": (0.054, 0.022, 0.0693, 0.000, 0.0099),
    "gutenberg_pg_19": (0.025, 0.009, 0.0283, 0.002, 0.0115),
    "hackernews": (0.010, 0.016, 0.3949, 0.012, 0.0637),
    "nih_exporter": (0.007, 0.008, 0.180, 0.001, 0.0424),
    "philpapers": (0.003, 0.034, 0.0266, 0.000, 0.0226),
    "pile_cc": (0.142, 0.743, 0.0348, 0.870, 0.4519),
    "pubmed_abstracts": (0.107, 0.014, 0.0398, 0.024, 0.0104),
    "pubmed_central": (0.136, 0.006, 0.0251, 0.003, 0.1207),
    "stackexchange": (0.118, 0.019, 0.0266, 0.000, 0.0226),
    "ubuntu_irc": (0.009, 0.011, 0.0474, 0.064, 0.0123),
    "uspto_backgrounds": (0.053, 0.004, 0.0366, 0.002, 0.0212),
    "wikipedia_en": (0.117, 0.086, 0.0425, 0.016, 0.1075),
}
# Tables 16 and 17 (alpha^FT for finetuning, Chameleon's only). The extracted text garbles
# the captions ("WIKI400 Dumani Weiging", "CHAMELEO") but every value is legible. The paper
# does not publish the alpha^PT control's weights (chameleon_pt, Appendix B.8): not checked.
TABLE_16_ROWS = {
    "fr": (0.115,),
    "de": (0.163,),
    "it": (0.127,),
    "es": (0.109,),
    "pt": (0.090,),
    "nl": (0.140,),
    "pl": (0.257,),
}
TABLE_17_ROWS = {
    "python": (0.125,),
    "java": (0.129,),
    "c": (0.102,),
    "cpp": (0.088,),
    "go": (0.241,),
    "ruby": (0.118,),
    "php": (0.197,),
}


def columns(methods: tuple[str, ...], rows: dict[str, tuple]) -> dict[str, dict[str, float]]:
    """method -> domain -> weight of a table printed one row per domain."""
    return {m: {domain: row[i] for domain, row in rows.items()} for i, m in enumerate(methods)}


PAPER_WEIGHTS = {
    "slimpajama": columns(TABLE_9, TABLE_9_ROWS),
    "pile": columns(TABLE_15, TABLE_15_ROWS),
    "wiki40b": columns(("chameleon",), TABLE_16_ROWS),
    "stack": columns(("chameleon",), TABLE_17_ROWS),
}

PAPER_SCALE = ["slimpajama", "pile", "wiki40b", "stack"]


def resolved_dataset(name: str, config: dict = SHIPPED) -> dict:
    return resolve(validate_config(copy.deepcopy(config)))["datasets"][name]


def domain_splits(name: str, config: dict = SHIPPED) -> dict[str, dict[str, int]]:
    """Each domain's documents per split, as the planner gives them to its sampling job."""
    dataset = Plan(resolve(validate_config(copy.deepcopy(config)))).dataset(name)
    return {domain: dataset.splits(domain) for domain in dataset.domains}


def planned_tokens(dataset: dict) -> int:
    """Tokens the dataset's own models train on: base models, or finetuning."""
    stage = "finetune" if dataset["stage"] == "finetune" else "base"
    schedule = dataset["schedules"][stage]
    return schedule["steps"] * schedule["batch_size"] * schedule["seq_len"]


def normalised(shares: dict[str, float]) -> dict[str, float]:
    total = sum(shares.values())
    return {domain: share / total for domain, share in shares.items()}


def mixtures(name: str, dataset: dict) -> dict[str, dict[str, float]]:
    """Every mixture of the dataset's domains that a run can train on."""
    domains = [d["name"] for d in dataset["domains"]]
    found = {"uniform": {d: 1 / len(domains) for d in domains}}
    if dataset.get("human_weights"):
        found["human_weights"] = normalised(dataset["human_weights"])
    if name in NATURAL:
        found["natural"] = normalised(NATURAL[name])
    for method, weights in PAPER_WEIGHTS[name].items():
        found[f"paper {method}"] = weights
    for mixture, weights in found.items():
        assert sorted(weights) == sorted(domains), f"{name} {mixture}: other domains"
    return found


def repetitions(name: str, config: dict = SHIPPED) -> dict[tuple[str, str], float]:
    """(mixture, domain) -> planned passes over the domain's train split."""
    dataset = resolved_dataset(name, config)
    tokens, splits = planned_tokens(dataset), domain_splits(name, config)
    stats = CORPUS_STATS[name]
    return {
        (mixture, domain): weight * tokens / (splits[domain]["train"] * stats[domain][0])
        for mixture, weights in mixtures(name, dataset).items()
        for domain, weight in weights.items()
    }


@pytest.mark.parametrize("name", PAPER_SCALE)
def test_no_mixture_repeats_a_train_split_more_than_4_times(name):
    repeated = {
        f"{domain} at {mixture}": round(passes, 2)
        for (mixture, domain), passes in repetitions(name).items()
        if passes > MAX_REPETITION
    }
    assert not repeated, f"{name}: train splits repeated more than {MAX_REPETITION}x: {repeated}"


@pytest.mark.parametrize("name", PAPER_SCALE)
def test_every_domain_has_the_documents_its_splits_ask_for(name):
    short = {
        domain: (documents, sum(splits.values()))
        for domain, splits in domain_splits(name).items()
        if (documents := CORPUS_STATS[name][domain][1]) is not None
        and documents < sum(splits.values())
    }
    assert not short, f"{name}: domains with fewer documents than their splits take: {short}"


def test_the_check_fails_on_the_split_before_issue_24():
    """The bound binds: SlimPajama's former split (100,000) repeats CC at RegMix's weight and
    Wikipedia at DoReMi's about 5.5 times."""
    old = copy.deepcopy(SHIPPED)
    old["datasets"]["slimpajama"]["splits"]["train"] = 100_000
    passes = repetitions("slimpajama", old)
    assert passes[("paper regmix", "cc")] > MAX_REPETITION
    assert passes[("paper doremi", "wikipedia")] > MAX_REPETITION


def test_every_domain_has_published_statistics():
    for name, stats in CORPUS_STATS.items():
        domains = {d["name"] for d in SHIPPED["datasets"][name]["domains"]}
        assert set(stats) == domains, name
