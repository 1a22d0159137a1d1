"""The whole corpus per domain (chameleon_mix.by_domain) on a SlimPajama-shaped mixed source:
every record in exactly one part of its domain, text and Megatron tokens read back with
megatron-core and checked against the tokenizer, the manifest's counts, and the bad inputs."""

import copy
import json
from collections import Counter
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from conftest import load_test_config, train_tokenizer, write_slimpajama_chunks

from chameleon_mix.by_domain import (
    ByDomainError,
    load_tokenizer,
    own_source_parts,
    read_manifest,
    split_group,
    write_manifest,
)
from chameleon_mix.config import ConfigError, validate_config
from chameleon_mix.plan import Plan, PlanError
from chameleon_mix.settings import resolve
from chameleon_mix.shards import partition_groups
from chameleon_mix.sources import SourceError
from chameleon_mix.tokenizer import EOS
from chameleon_mix.tokenizer import load_tokenizer as load_hf_tokenizer

FIELD = "meta.redpajama_set_name"
# SlimPajama's sets as the test's domains (name -> value), documents of each.
SETS = {
    "cc": ("RedPajamaCommonCrawl", 160),
    "c4": ("RedPajamaC4", 90),
    "github": ("RedPajamaGithub", 40),
    "book": ("RedPajamaBook", 12),
    "arxiv": ("RedPajamaArXiv", 20),
    "wikipedia": ("RedPajamaWikipedia", 30),
    "stackexchange": ("RedPajamaStackExchange", 25),
}
VALUES = {value: [name] for name, (value, _) in SETS.items()}
FILES, FILES_PER_JOB = 5, 2  # 3 scatter jobs, the last of one file
WORDS = [
    "the",
    "of",
    "river",
    "mill",
    "data",
    "model",
    "café",
    "naïve",
    "東京",
    "sort",
    "loop",
    "print",
    "return",
    "while",
    "∑",
    "λ",
]


def set_documents() -> dict[str, list[str]]:
    """Each set's texts (keyed by its value): seeded word salad with non-ASCII words, copies
    of identical texts (each copy is a record), an empty text and a book over the 64 KB at
    which a document is encoded in pieces."""
    rng = np.random.default_rng(7)
    documents = {}
    for name, (value, count) in SETS.items():
        texts = [
            f"{name} {i}: " + " ".join(rng.choice(WORDS, int(rng.integers(3, 200))))
            for i in range(count)
        ]
        documents[value] = texts + texts[:3]
    documents["RedPajamaBook"].append(
        "chapter " + " ".join(rng.choice(WORDS, 20_000)) + "\n" * 3 + "the end"
    )
    documents["RedPajamaWikipedia"].append("")
    return documents


# Lines the split skips and counts (malformed JSON, no domain field) or counts as records of a
# value no domain selects, appended to the first chunk as a second zstd frame.
EXTRA = [
    b'{"text": "cut off", "meta": {',
    b'{"text": "no meta"}',
    b'{"text": "another set", "meta": {"redpajama_set_name": "RedPajamaOther"}}',
]


@pytest.fixture(scope="module")
def slimpajama(tmp_path_factory):
    """The mixed source's directory, its texts by value (as a reader of the files counts
    them), and a tokenizer trained on them."""
    root = tmp_path_factory.mktemp("slimpajama")
    documents = set_documents()
    write_slimpajama_chunks(root / "data", documents, FILES)
    first = root / "data" / "chunk_0.jsonl.zst"
    first.write_bytes(first.read_bytes() + zstandard.compress(b"\n".join(EXTRA) + b"\n"))
    tokenizer = root / "tokenizer"
    train_tokenizer([t for ts in documents.values() for t in ts[:20]], 500, tokenizer)
    return root / "data", count_source(root / "data"), tokenizer


def count_source(directory: Path) -> dict[str, list[str]]:
    """The texts of each value, read with zstd and json themselves."""
    texts: dict[str, list[str]] = {}
    for path in sorted(directory.glob("*.jsonl.zst")):
        reader = zstandard.ZstdDecompressor().stream_reader(
            path.read_bytes(), read_across_frames=True
        )
        for line in reader.read().splitlines():
            try:
                record = json.loads(line)
                value = record["meta"]["redpajama_set_name"]
            except (ValueError, KeyError):
                continue
            texts.setdefault(value, []).append(record["text"])
    return texts


def split(directory: Path, out: Path, tokenizer, values=VALUES) -> list[Path]:
    """The scatter jobs over the source's groups, as the workflow runs them; their counts."""
    counts = []
    groups = partition_groups({"files": str(directory / "*.jsonl.zst")}, FILES_PER_JOB)
    for group, source in enumerate(groups):
        path = out / "counts" / f"part-{group:05d}.json"
        split_group(source, FIELD, values, group, out, path, tokenizer)
        counts.append(path)
    return counts


def part_texts(part: dict) -> list[str]:
    data = zstandard.ZstdDecompressor().stream_reader(Path(part["text"]).read_bytes()).read()
    return [orjson.loads(line)["text"] for line in data.splitlines()]


def check_parts(manifest: dict, texts: dict[str, list[str]], tokenizer_dir) -> None:
    """Every domain's parts hold its texts, each once (as a multiset), their tokens equal the
    tokenizer's encoding with EOS, and the manifest counts them."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    hf = load_hf_tokenizer(tokenizer_dir)
    eos = hf.convert_tokens_to_ids(EOS)
    assert manifest["tokenizer"]["eos_id"] == eos
    assert set(manifest["domains"]) == set(SETS)
    for name, (value, _) in SETS.items():
        entry = manifest["domains"][name]
        written, tokens = [], 0
        for part in entry["parts"]:
            docs = part_texts(part)
            sequences = IndexedDataset(part["megatron"])
            assert len(sequences) == len(docs) == part["records"]
            ids = hf(docs, add_special_tokens=False)["input_ids"]
            for i, expected in enumerate(ids):
                assert sequences[i].tolist() == [*expected, eos], (name, i)
            assert part["tokens"] == sum(len(e) + 1 for e in ids)
            assert part["bytes"] == sum(len(d.encode()) for d in docs)
            written += docs
            tokens += part["tokens"]
        assert Counter(written) == Counter(texts[value]), name  # nothing lost or doubled
        assert entry["records"] == len(texts[value])
        assert entry["bytes"] == sum(len(t.encode()) for t in texts[value])
        assert entry["tokens"] == tokens


def test_every_record_is_in_one_part_of_its_domain_with_its_tokens(slimpajama, tmp_path):
    directory, texts, tokenizer = slimpajama
    counts = split(directory, tmp_path / "by_domain", tokenizer)
    assert len(counts) == 3  # ceil(5 files / 2 per job)
    out = tmp_path / "by_domain" / "manifest.json"
    manifest = write_manifest("slim", counts, list(SETS), "user", 0.01, out)
    assert read_manifest(out) == json.loads(out.read_text()) == manifest
    check_parts(manifest, texts, tokenizer)
    # one part per domain per job (the book's 13 documents may miss a group)
    for name in SETS:
        names = [Path(p["text"]).name for p in manifest["domains"][name]["parts"]]
        assert names == sorted(names) and set(names) <= {
            f"part-{g:05d}.jsonl.zst" for g in range(3)
        }
    assert manifest["tokenizer"] == {
        **load_tokenizer(tokenizer).info(),
        "source": "user",
    }
    first = json.loads(counts[0].read_text())
    assert first["read"]["bad_json"] == 1 and first["read"]["missing_field"] == 1
    assert first["unassigned"] == {"RedPajamaOther": {"records": 1, "bytes": 11}}
    # the long book went through the piece-wise encoder and still equals one call
    assert max(len(t) for t in texts["RedPajamaBook"]) > 1 << 16


def test_a_truncated_file_mid_split_is_named_and_leaves_no_part(slimpajama, tmp_path):
    directory, _, tokenizer = slimpajama
    source = tmp_path / "source"
    source.mkdir()
    for name in ("chunk_0.jsonl.zst", "chunk_1.jsonl.zst"):
        (source / name).write_bytes((directory / name).read_bytes())
    whole = (source / "chunk_1.jsonl.zst").read_bytes()
    (source / "chunk_1.jsonl.zst").write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "by_domain"
    with pytest.raises(SourceError) as err:
        split_group(
            {"files": str(source / "*.zst")}, FIELD, VALUES, 0, out, out / "counts.json", tokenizer
        )
    message = str(err.value)
    assert message.startswith(
        f"{source / 'chunk_1.jsonl.zst'}: the zstd stream ends inside a frame"
    )
    assert "download it again, or leave it out of the source's files" in message
    # chunk_0's records were read and buffered, but no part (nor a temporary file) remains
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_a_domain_without_records_is_refused_by_name(slimpajama, tmp_path):
    directory, _, tokenizer = slimpajama
    values = {**VALUES, "RedPajamaBooks": ["books"]}  # a misspelt value: no record has it
    counts = split(directory, tmp_path / "by_domain", tokenizer, values)
    with pytest.raises(ByDomainError) as err:
        write_manifest("slim", counts, [*SETS, "books"], "user", 0.01, tmp_path / "manifest.json")
    assert "domain(s) 'books' have no records in the whole corpus" in str(err.value)
    assert "'RedPajamaOther' (1 records)" in str(err.value)
    assert not (tmp_path / "manifest.json").exists()


def test_a_damaged_part_is_named_by_the_manifest_reader(slimpajama, tmp_path):
    directory, _, tokenizer = slimpajama
    counts = split(directory, tmp_path / "by_domain", tokenizer)
    out = tmp_path / "by_domain" / "manifest.json"
    manifest = write_manifest("slim", counts, list(SETS), "dataset", 0.01, out)
    prefix = manifest["domains"]["cc"]["parts"][1]["megatron"]
    with open(f"{prefix}.bin", "r+b") as f:
        f.truncate(10)
    with pytest.raises(ByDomainError, match=rf"domain 'cc': {prefix}.bin holds 10 bytes, not "):
        read_manifest(out)
    with pytest.raises(ByDomainError, match="no by-domain manifest; write it with `snakemake"):
        read_manifest(tmp_path / "nowhere.json")


def test_a_domains_own_files_are_its_parts_as_they_are(slimpajama, tmp_path):
    _, texts, tokenizer = slimpajama
    docs = texts["RedPajamaGithub"]
    jsonl = tmp_path / "code" / "a.jsonl"
    jsonl.parent.mkdir()
    jsonl.write_text("".join(json.dumps({"content": t}) + "\n" for t in docs[:20]))
    pq.write_table(pa.table({"content": docs[20:]}), tmp_path / "code" / "b.parquet")
    source = {"files": str(tmp_path / "code" / "*"), "text_field": "content"}
    out = tmp_path / "by_domain"
    counts = own_source_parts("github", source, 4, out, out / "counts.json", tokenizer)
    parts = counts["parts"]["github"]
    assert [(p["text"], p["format"], p["text_field"]) for p in parts] == [
        (str(jsonl), "jsonl", "content"),
        (str(tmp_path / "code" / "b.parquet"), "parquet", "content"),
    ]
    assert [Path(p["megatron"]).name for p in parts] == ["part-00004", "part-00005"]
    assert not list(out.rglob("*.jsonl.zst"))  # no text rewritten
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    hf = load_hf_tokenizer(tokenizer)
    for part, chunk in zip(parts, (docs[:20], docs[20:])):
        ids = hf(chunk, add_special_tokens=False)["input_ids"]
        assert [s.tolist() for s in IndexedDataset(part["megatron"])] == [
            [*e, hf.eos_token_id] for e in ids
        ]


def test_a_hub_datasets_records_are_written_as_a_part(slimpajama, tmp_path):
    """A saved Hugging Face dataset has no files to point at: its texts become a part."""
    import datasets

    _, texts, tokenizer = slimpajama
    docs = texts["RedPajamaArXiv"]
    datasets.Dataset.from_dict({"text": docs}).save_to_disk(str(tmp_path / "saved"))
    out = tmp_path / "by_domain"
    source = {"hf_disk": str(tmp_path / "saved"), "split": "train"}
    counts = own_source_parts("arxiv", source, 0, out, out / "counts.json", tokenizer)
    (part,) = counts["parts"]["arxiv"]
    assert part["text"] == str(out / "arxiv" / "part-00000.jsonl.zst")
    assert part_texts(part) == docs and part["records"] == len(docs)


def test_a_rerun_deletes_the_part_of_a_domain_no_longer_in_its_files(slimpajama, tmp_path):
    directory, _, tokenizer = slimpajama
    source = {"files": str(directory / "chunk_0.jsonl.zst")}
    out = tmp_path / "by_domain"
    split_group(source, FIELD, VALUES, 0, out, out / "counts.json", tokenizer)
    assert (out / "cc" / "part-00000.jsonl.zst").is_file()
    (out / "cc" / ".part-00000.bin.0123abcd").write_bytes(b"")  # a killed run's temporary file
    fewer = {v: d for v, d in VALUES.items() if v != "RedPajamaCommonCrawl"}
    fewer["RedPajamaCommonCrawl"] = ["web"]  # cc's records now go to another domain
    split_group(
        source, FIELD, {**fewer, "RedPajamaNothing": ["cc"]}, 0, out, out / "c.json", tokenizer
    )
    assert sorted(p.name for p in (out / "cc").iterdir()) == []
    assert (out / "web" / "part-00000.idx").is_file()


def test_the_eos_is_the_tokenizer_configs_else_the_projects(slimpajama, tmp_path):
    _, _, tokenizer = slimpajama
    assert load_tokenizer(tokenizer).eos_id == load_hf_tokenizer(tokenizer).eos_token_id
    alone = tmp_path / "my-tokenizer.json"  # a tokenizer.json without its config
    alone.write_bytes((tokenizer / "tokenizer.json").read_bytes())
    loaded = load_tokenizer(alone)
    assert loaded.eos_id == loaded.encoder.token_to_id(EOS) and loaded.dtype == "uint16"
    other = tmp_path / "other"
    other.mkdir()
    (other / "tokenizer.json").write_bytes(alone.read_bytes())
    (other / "tokenizer_config.json").write_text(json.dumps({"eos_token": "<eos>"}))
    with pytest.raises(ByDomainError, match="has no token '<eos>' .*tokenizer_config.json"):
        load_tokenizer(other)


def slim_config(tmp_path, tokenizer=None) -> dict:
    """The small workflow config with a SlimPajama-shaped dataset of the test's source."""
    config = load_test_config("config-small", "config-mixed")
    dataset = config["datasets"].pop("mixed")
    dataset.update(
        source={"files": str(tmp_path / "data" / "*.jsonl.zst")},
        domain_field=FIELD,
        partition={"files_per_job": FILES_PER_JOB},
        domains=[{"name": name, "value": value} for name, (value, _) in SETS.items()],
    )
    if tokenizer is not None:
        dataset["by_domain"] = {"tokenizer": str(tokenizer)}
    config["datasets"]["slim"] = dataset
    return config


def test_a_missing_tokenizer_is_a_config_error_naming_the_key(tmp_path):
    config = slim_config(tmp_path, tmp_path / "nowhere")
    with pytest.raises(ConfigError) as err:
        validate_config(config)
    assert str(err.value).startswith(
        f"config: datasets.slim.by_domain.tokenizer: {tmp_path / 'nowhere'} is not found; give "
        "a local Hugging Face tokenizer directory"
    )
    (tmp_path / "nowhere").mkdir()
    with pytest.raises(ConfigError, match="is a directory without tokenizer.json"):
        validate_config(slim_config(tmp_path, tmp_path / "nowhere"))


def test_the_plan_has_a_job_per_file_group_and_the_datasets_tokenizer_by_default(
    slimpajama, tmp_path
):
    directory, _, tokenizer = slimpajama
    (tmp_path / "data").symlink_to(directory)
    config = slim_config(tmp_path)
    own = tmp_path / "own"
    own.mkdir()
    for i in range(3):
        (own / f"{i}.jsonl").write_text('{"text": "own words"}\n')
    config["datasets"]["slim"]["domains"].append(
        {"name": "own", "source": {"files": str(own / "*.jsonl")}}
    )
    plan = Plan(resolve(validate_config(copy.deepcopy(config))), lambda entry: None)
    slim = plan.dataset("slim")
    assert slim.by_domain_groups == 3
    assert slim.by_domain_values == VALUES
    assert slim.by_domain_tokenizer == "results/proxies/tiny/tokenizer"
    assert slim.by_domain_tokenizer_source == "dataset"
    assert slim.by_domain_counts() == [
        *(f"results/slim/by_domain/counts/part-{g:05d}.json" for g in range(3)),
        "results/slim/by_domain/counts/own/part-00000.json",
        "results/slim/by_domain/counts/own/part-00001.json",
    ]
    assert slim.by_domain_source_files("own", 1) == [str(own / "2.jsonl")]
    assert slim.by_domain_first_part("own", 1) == 2
    small = plan.dataset("small")  # a collected domain: its one file, made by the workflow
    assert small.by_domain_source_files("python_code", 0) == ["results/corpus/python_code.jsonl"]
    assert (
        small.by_domain_counts()[0] == "results/small/by_domain/counts/python_code/part-00000.json"
    )
    config["datasets"]["slim"]["by_domain"] = {"tokenizer": str(tokenizer)}
    slim = Plan(resolve(validate_config(config)), lambda entry: None).dataset("slim")
    assert (slim.by_domain_tokenizer, slim.by_domain_tokenizer_source) == (str(tokenizer), "user")


def test_a_clustered_dataset_is_not_split():
    config = validate_config(load_test_config("config-small", "config-clusters"))
    plan = Plan(resolve(config), lambda entry: None)
    clustered = next(d for d in plan.datasets.values() if "clusters" in d.settings)
    with pytest.raises(PlanError, match="clusters of the sampled shards"):
        clustered.by_domain_domains  # noqa: B018


@pytest.mark.slow
def test_workflow_splits_the_source_with_a_job_per_file_group(slimpajama, tmp_path):
    from test_workflow import planned_jobs, snakemake, write_config

    directory, texts, tokenizer = slimpajama
    (tmp_path / "data").symlink_to(directory)
    write_config(tmp_path, slim_config(tmp_path, tokenizer))
    target = "results/slim/by_domain/manifest.json"
    assert planned_jobs(tmp_path, target) == [
        ("by_domain_manifest", "dataset=slim"),
        *(("by_domain_split", f"dataset=slim, group={g:05d}") for g in range(3)),
    ]
    snakemake(tmp_path, target)
    manifest = read_manifest(tmp_path / target)
    check_parts(manifest, texts, tokenizer)
    assert manifest["tokenizer"]["source"] == "user" and manifest["dataset"] == "slim"
    # Without a tokenizer of its own, the dataset's proxy's tokenizer is trained first.
    write_config(tmp_path, slim_config(tmp_path))
    jobs = {rule for rule, _ in planned_jobs(tmp_path, target)}
    assert {"train_tokenizer", "by_domain_split", "by_domain_manifest"} <= jobs
