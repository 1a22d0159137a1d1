"""Data sources and deterministic shard sampling, on files the tests write."""

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from conftest import load_test_config

from chameleon_mix.shards import partition_groups, partition_part, sample_domain, sample_partition
from chameleon_mix.sources import ReadStats, SourceError, iter_documents, iter_records

SPLITS = {"train": 20, "val": 5, "test": 5}


def records(n, domain="web", offset=0):
    return [
        {
            "text": f"document {i + offset} of {domain}: " + "word " * (i % 7 + 3),
            "meta": {"set": domain},
        }
        for i in range(n)
    ]


def write_jsonl(path, rows, compress=False, frames=1):
    """``rows`` as JSON lines, compressed as ``frames`` zstd frames (as multi-block files are)."""
    lines = [(json.dumps(r) + "\n").encode() for r in rows]
    if compress:
        step = -(-len(lines) // frames)
        chunks = [b"".join(lines[i : i + step]) for i in range(0, len(lines), step)]
        path.write_bytes(b"".join(zstandard.ZstdCompressor().compress(c) for c in chunks))
    else:
        path.write_bytes(b"".join(lines))
    return path


def read_split(directory, split):
    return pq.read_table(directory / f"{split}.parquet").column("text").to_pylist()


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.zst", "parquet", "hf_disk"])
def test_every_source_format_yields_the_same_documents(tmp_path, fmt):
    rows = records(40)
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(rows[:25]), tmp_path / "a.parquet")
        pq.write_table(pa.Table.from_pylist(rows[25:]), tmp_path / "b.parquet")
        source = {"files": str(tmp_path / "*.parquet")}
    elif fmt == "hf_disk":
        import datasets

        datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
        source = {"hf_disk": str(tmp_path / "saved")}
    else:
        compress = fmt == "jsonl.zst"
        write_jsonl(tmp_path / f"a.{fmt}", rows[:25], compress)
        write_jsonl(tmp_path / f"b.{fmt}", rows[25:], compress)
        source = {"files": str(tmp_path / f"*.{fmt}")}
    texts = [d.text for d in iter_documents(source)]
    assert texts == [r["text"] for r in rows]


def test_dotted_text_field(tmp_path):
    write_jsonl(tmp_path / "x.jsonl", [{"doc": {"body": "hello there"}}])
    docs = list(iter_documents({"files": str(tmp_path / "x.jsonl"), "text_field": "doc.body"}))
    assert [d.text for d in docs] == ["hello there"]


def test_shards_are_deterministic_disjoint_and_deduplicated(tmp_path):
    rows = records(60) + records(10)  # the last ten repeat the first ten exactly
    source = {"files": str(write_jsonl(tmp_path / "d.jsonl", rows))}
    stats = sample_domain("web", source, SPLITS, seed=7, out_dir=tmp_path / "one")
    sample_domain("web", source, SPLITS, seed=7, out_dir=tmp_path / "two")
    sample_domain("web", source, SPLITS, seed=8, out_dir=tmp_path / "other")
    for split in SPLITS:
        assert (tmp_path / "one" / f"{split}.parquet").read_bytes() == (
            tmp_path / "two" / f"{split}.parquet"
        ).read_bytes()
    assert read_split(tmp_path / "one", "train") != read_split(tmp_path / "other", "train")
    texts = {s: read_split(tmp_path / "one", s) for s in SPLITS}
    assert {s: len(t) for s, t in texts.items()} == SPLITS
    everything = [t for s in SPLITS for t in texts[s]]
    assert len(set(everything)) == len(everything)  # disjoint splits, no duplicates
    assert stats.documents == SPLITS
    stats_file = json.loads((tmp_path / "one" / "stats.json").read_text())
    assert stats_file["bytes"]["train"] == sum(len(t.encode()) for t in texts["train"])
    assert stats_file["records_read"] == 70


def test_shards_do_not_depend_on_file_order(tmp_path):
    rows = records(40)
    a = write_jsonl(tmp_path / "a.jsonl", rows)
    b = write_jsonl(tmp_path / "b.jsonl", rows[::-1])
    sample_domain("web", {"files": str(a)}, SPLITS, 3, tmp_path / "a")
    sample_domain("web", {"files": str(b)}, SPLITS, 3, tmp_path / "b")
    assert read_split(tmp_path / "a", "test") == read_split(tmp_path / "b", "test")


def partition(source, out, files_per_job=1, per_value=30, seed=5, reverse=False):
    """Scatter ``source`` over jobs of ``files_per_job`` files; the (sample, stats) pairs."""
    parts = []
    for i, group in enumerate(partition_groups(source, files_per_job)):
        sample, stats = out / f"part-{i}.parquet", out / f"part-{i}.json"
        partition_part(group, "meta.set", per_value, seed, sample, stats, min_chars=10)
        parts.append((sample, stats))
    return parts[::-1] if reverse else parts


def mixed_source(directory):
    """Four files of three domains, in every format, with copies of texts and a text too
    short to keep."""
    rows = records(40, "web") + records(40, "code", offset=1000) + records(40, "law", offset=2000)
    rows += rows[:5] + [{"text": "tiny", "meta": {"set": "web"}}]
    shuffled = rows[::7] + [r for i, r in enumerate(rows) if i % 7]
    directory.mkdir()
    write_jsonl(directory / "a.jsonl.zst", shuffled[:40], compress=True, frames=3)
    write_jsonl(directory / "b.jsonl", shuffled[40:70])
    pq.write_table(pa.Table.from_pylist(shuffled[70:100]), directory / "c.parquet")
    write_jsonl(directory / "d.jsonl.zst", shuffled[100:] + shuffled[:3], compress=True)
    return {"files": str(directory / "*")}


def shard_files(directory):
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def test_scatter_gather_equals_one_pass_and_direct_sampling(tmp_path):
    source = mixed_source(tmp_path / "src")
    layouts = {
        "one pass": {"files_per_job": 4},
        "4 jobs": {},
        "2 jobs reversed": {"files_per_job": 3, "reverse": True},
    }
    results = {}
    for name, layout in layouts.items():
        parts = partition(source, tmp_path / name / "parts", **layout)
        for value in ("web", "code", "law"):
            sample_partition(value, value, parts, SPLITS, tmp_path / name / value)
        results[name] = {v: shard_files(tmp_path / name / v) for v in ("web", "code", "law")}
    assert len(partition_groups(source, 1)) == 4
    assert results["4 jobs"] == results["one pass"] == results["2 jobs reversed"]
    stats = json.loads(results["4 jobs"]["web"]["stats.json"])
    web = [r["text"] for _, _, r in iter_records(source, ReadStats()) if r["meta"]["set"] == "web"]
    sampled = {t for split in SPLITS for t in read_split(tmp_path / "4 jobs" / "web", split)}
    copies = sum(web.count(t) - 1 for t in sampled)
    assert copies > 0 and len(web) == 49  # 40 texts, 8 copies and a short one
    counts = (stats["records_read"], stats["too_short"], stats["duplicates_dropped"])
    assert counts == (49, 1, copies)

    only_code = write_jsonl(tmp_path / "code.jsonl", records(40, "code", offset=1000))
    sample_domain("code", {"files": str(only_code)}, SPLITS, 5, tmp_path / "direct")
    for split in SPLITS:
        via_partition = read_split(tmp_path / "4 jobs" / "code", split)
        assert via_partition == read_split(tmp_path / "direct", split)


def test_a_value_with_splits_of_its_own_keeps_its_own_sample(tmp_path):
    source = mixed_source(tmp_path / "src")
    sizes = {"default": 30, "values": {"law": 36}}
    parts = partition(source, tmp_path / "parts", per_value=sizes)
    big = {"train": 30, "val": 3, "test": 3}
    stats = sample_partition("law", "law", parts, big, tmp_path / "law")
    assert stats.documents == big
    with pytest.raises(SourceError, match="keeps 30 documents of 'web', fewer than the 36"):
        sample_partition("web", "web", parts, big, tmp_path / "web")


def test_part_keeps_first_copy_in_file_order(tmp_path):
    """Which copy of a duplicated text is kept does not depend on the order parts are read."""
    source = mixed_source(tmp_path / "src")
    parts = partition(source, tmp_path / "parts")
    sample_partition("web", "web", parts[::-1], SPLITS, tmp_path / "web")
    table = pq.read_table(tmp_path / "web" / "train.parquet").to_pylist()
    first = {}
    for name, number, record in iter_records(source, ReadStats()):
        first.setdefault(record["text"], (name, number))
    assert all((r["source"], r["record"]) == first[r["text"]] for r in table)


def test_unknown_partition_value_lists_what_exists(tmp_path):
    mixed = write_jsonl(tmp_path / "m.jsonl", records(30, "web"))
    parts = partition({"files": str(mixed)}, tmp_path / "p")
    with pytest.raises(SourceError, match=r"'Web'.*holds: 'web' \(30\)"):
        sample_partition("w", "Web", parts, SPLITS, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_missing_domain_field_is_refused(tmp_path):
    rows = [{"text": f"doc {i} " * 5} for i in range(30)]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    parts = partition({"files": str(path)}, tmp_path / "p")
    with pytest.raises(SourceError, match="no record has the field 'meta.set'"):
        sample_partition("web", "web", parts, SPLITS, tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_broken_lines_are_skipped_and_counted_then_refused_past_threshold(tmp_path):
    good = "".join(json.dumps(r) + "\n" for r in records(40)).encode()
    path = tmp_path / "d.jsonl"
    path.write_bytes(good + b"{not json\n" + b'{"text": "caf\xe9 latin-1 bytes"}\n')
    stats = ReadStats()
    docs = list(iter_documents({"files": str(path)}, stats))
    assert (len(docs), stats.records, stats.bad_json, stats.bad_bytes) == (40, 42, 1, 1)
    sample_domain("web", {"files": str(path)}, SPLITS, 1, tmp_path / "ok", max_bad_fraction=0.1)
    with pytest.raises(
        SourceError, match=r"domain 'web'.*2 of 42 records are unusable.*max_bad_fraction"
    ):
        sample_domain(
            "web", {"files": str(path)}, SPLITS, 1, tmp_path / "refused", max_bad_fraction=0.01
        )
    assert not (tmp_path / "refused").exists()


def test_too_few_documents_names_domain_and_sizes(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", records(12) + records(12))
    with pytest.raises(
        SourceError, match=r"domain 'tiny' has 12 distinct documents.*fewer than the 30"
    ):
        sample_domain("tiny", {"files": str(path)}, SPLITS, 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_glob_matching_nothing(tmp_path):
    with pytest.raises(SourceError, match=r"no file matches \[.*nothing-\*\.jsonl"):
        list(iter_documents({"files": str(tmp_path / "nothing-*.jsonl")}))


def test_hub_dataset_while_offline_gets_a_clear_error():
    # A fresh process, because the hub client reads its offline switch once, at import.
    code = (
        "from chameleon_mix.sources import iter_documents\n"
        "list(iter_documents({'hf': 'no-such-org/no-such-set'}))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert run.returncode != 0
    assert "SourceError: cannot load Hugging Face dataset 'no-such-org/no-such-set'" in run.stderr
    assert "hf_disk" in run.stderr


@pytest.mark.parametrize("frames", [1, 4])
def test_truncated_zst_among_good_files_is_refused_with_its_path(tmp_path, frames):
    source = mixed_source(tmp_path / "src")
    cut = tmp_path / "src" / "e.jsonl.zst"
    write_jsonl(cut, records(4000, "web", offset=5000), compress=True, frames=frames)
    whole = cut.read_bytes()
    cut.write_bytes(whole[: len(whole) * 6 // 10])
    with pytest.raises(SourceError) as err:
        partition(source, tmp_path / "parts")
    assert str(err.value).startswith(
        f"{cut}: the zstd stream ends inside a frame (read all {len(whole) * 6 // 10} "
        "compressed bytes, "
    )
    assert "download it again, or leave it out" in str(err.value)
    # The parts of the good files were written; the failed part wrote nothing.
    assert len(list((tmp_path / "parts").glob("part-*.json"))) == 4
    assert not list((tmp_path / "parts").glob("*part-4*"))
    with pytest.raises(SourceError, match=f"{cut}: the zstd stream ends inside a frame"):
        sample_domain("web", {"files": str(cut)}, SPLITS, 1, tmp_path / "direct")
    assert not (tmp_path / "direct").exists()


def test_corrupt_zst_is_refused_with_its_path(tmp_path):
    fake = tmp_path / "plain.jsonl.zst"  # a jsonl file with a .zst name
    write_jsonl(fake, records(40))
    with pytest.raises(
        SourceError, match=rf"^{fake}: corrupt zstd data \(.*\) \(within compressed bytes 0-"
    ):
        sample_domain("web", {"files": str(fake)}, SPLITS, 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_empty_zst_is_refused_with_its_path(tmp_path):
    """`zstd -d` refuses a 0-byte .zst; read as zero records it would vanish from the sample."""
    write_jsonl(tmp_path / "a.jsonl.zst", records(40), compress=True)
    (tmp_path / "b.jsonl.zst").write_bytes(b"")
    with pytest.raises(SourceError, match=rf"^{tmp_path / 'b.jsonl.zst'}: the file is empty"):
        sample_domain("web", {"files": str(tmp_path / "*.zst")}, SPLITS, 1, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("compress", [False, True])
def test_a_utf8_byte_order_mark_keeps_the_first_record(tmp_path, compress):
    lines = "".join(json.dumps(r) + "\n" for r in records(40)).encode()
    path = tmp_path / ("bom.jsonl.zst" if compress else "bom.jsonl")
    data = b"\xef\xbb\xbf" + lines
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compress else data)
    stats = ReadStats()
    docs = list(iter_documents({"files": str(path)}, stats))
    assert (len(docs), stats.bad) == (40, 0)
    assert docs[0].text == records(1)[0]["text"]


def test_corrupt_parquet_in_a_glob_is_refused_with_its_path(tmp_path):
    pq.write_table(pa.Table.from_pylist(records(40)), tmp_path / "a.parquet")
    whole = (tmp_path / "a.parquet").read_bytes()
    (tmp_path / "b.parquet").write_bytes(whole[: len(whole) // 2])
    source = {"files": str(tmp_path / "*.parquet")}
    with pytest.raises(SourceError) as err:
        sample_domain("web", source, SPLITS, 1, tmp_path / "out")
    assert str(err.value).startswith(
        f"{tmp_path / 'b.parquet'}: not a readable parquet file (Parquet magic bytes not found"
    )
    assert not (tmp_path / "out").exists()


def test_file_that_is_not_utf8_is_counted_and_named(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", records(40))
    latin = tmp_path / "b.jsonl"
    rows = records(10, "caf\u00e9", offset=100)
    latin.write_bytes(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("latin-1")
    )
    source = {"files": str(tmp_path / "*.jsonl")}
    culprit = (
        f"most in {latin} (10 of its 10 records; first: line 1: not UTF-8 (byte 0xe9 at offset "
    )
    with pytest.raises(SourceError, match="10 of 50 records are unusable") as err:
        sample_domain("web", source, SPLITS, 1, tmp_path / "out")
    assert culprit in str(err.value)
    assert not (tmp_path / "out").exists()
    parts = partition(source, tmp_path / "parts")
    with pytest.raises(SourceError, match="10 of 50 records are unusable") as err:
        sample_partition("web", "web", parts, SPLITS, tmp_path / "out")
    assert culprit in str(err.value)
    assert not (tmp_path / "out").exists()
    # Under the limit the file's records are skipped, and stats.json says where they were.
    stats = sample_partition("web", "web", parts, SPLITS, tmp_path / "ok", max_bad_fraction=0.25)
    assert stats.unusable_records == 10 and stats.unusable_files[str(latin)]["bad"] == 10


def mixed_dataset(domains):
    """.test/config-mixed.yaml's dataset of the test's mixed source (``data/``) with these
    domains, for the workflow tests."""
    dataset = load_test_config("config-mixed")["datasets"]["mixed"]
    assert dataset["splits"] == SPLITS  # the library's single pass below samples SPLITS
    dataset["domains"] = [{"name": d, "value": d} for d in domains]
    return dataset


@pytest.mark.slow
def test_workflow_runs_a_partition_job_per_file_and_a_new_domain_reruns_none(tmp_path, monkeypatch):
    from test_workflow import DOMAINS, planned_jobs, small_config, snakemake, write_config

    mixed_source(tmp_path / "data")
    write_config(tmp_path, small_config(DOMAINS, {"mixed": mixed_dataset(["web", "code"])}))
    targets = [f"results/mixed/shards/{d}/stats.json" for d in ("web", "code")]
    assert planned_jobs(tmp_path, targets[0]) == sorted(
        [("partition_source", f"dataset=mixed, part=0000{i}") for i in range(4)]
        + [("sample_shards", "dataset=mixed, domain=web")]
    )
    snakemake(tmp_path, *targets)
    # The same shards as the library's single pass (one job over the four files).
    monkeypatch.chdir(tmp_path)  # where snakemake ran: the rows name the files as it did
    reference = tmp_path / "reference"
    parts = partition({"files": "data/*"}, reference / "parts", 4)
    for domain in ("web", "code"):
        sample_partition(domain, domain, parts, SPLITS, reference / domain)
        assert shard_files(tmp_path / "results/mixed/shards" / domain) == shard_files(
            reference / domain
        )
    # Adding a domain of the same source merges the existing parts: no partition job reruns.
    write_config(tmp_path, small_config(DOMAINS, {"mixed": mixed_dataset(["web", "code", "law"])}))
    assert planned_jobs(tmp_path, "results/mixed/shards/law/stats.json") == [
        ("sample_shards", "dataset=mixed, domain=law")
    ]


def test_a_domain_field_that_is_no_string_or_integer_selects_no_domain(tmp_path):
    """null, booleans, lists and fractions are counted as records without a domain (not
    turned into the text "None", "True", "['web']"); an integer is its decimal text."""
    odd = [None, True, ["web"], 2.5, {"set": "web"}]
    rows = records(30) + [
        {"text": f"odd document {i} " * 4, "meta": {"set": v}} for i, v in enumerate(odd)
    ]
    rows += [
        {"text": f"numbered document {i} " * 4, "meta": {"set": v}} for i, v in enumerate((3, "3"))
    ]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    ((sample, stats),) = partition({"files": str(path)}, tmp_path / "p")
    read = json.loads(stats.read_text())["read"]
    assert read["missing_field"] == len(odd)
    assert read["files"][str(path)]["first"].endswith(
        "'meta.set' is None, not a string or an integer"
    )
    with pytest.raises(
        SourceError, match=r"holds: '3' \(2\), 'web' \(30\)$|holds: 'web' \(30\), '3' \(2\)"
    ):
        sample_partition(
            "x", "None", [(sample, stats)], SPLITS, tmp_path / "o", max_bad_fraction=0.5
        )
