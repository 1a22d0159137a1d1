"""Data sources and deterministic shard sampling, on files the tests write."""

import json
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from chameleon_mix.shards import partition_source, sample_domain
from chameleon_mix.sources import ReadStats, SourceError, iter_documents

SPLITS = {"train": 20, "val": 5, "test": 5}


def records(n, domain="web", offset=0):
    return [
        {
            "text": f"document {i + offset} of {domain}: " + "word " * (i % 7 + 3),
            "meta": {"set": domain},
        }
        for i in range(n)
    ]


def write_jsonl(path, rows, compress=False):
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    path.write_bytes(zstandard.ZstdCompressor().compress(data) if compress else data)
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


def test_partition_once_then_sample_matches_direct_sampling(tmp_path):
    rows = records(40, "web") + records(40, "code", offset=1000) + records(40, "law", offset=2000)
    mixed = write_jsonl(tmp_path / "mixed.jsonl.zst", rows, compress=True)
    source = {"files": str(mixed)}
    index = partition_source(source, "meta.set", 30, seed=5, out_dir=tmp_path / "partition")
    assert {v: e["documents"] for v, e in index.items()} == {"web": 30, "code": 30, "law": 30}
    sample_domain(
        "code",
        {"partition": "code"},
        SPLITS,
        5,
        tmp_path / "via",
        partition_dir=tmp_path / "partition",
    )
    only_code = write_jsonl(tmp_path / "code.jsonl", records(40, "code", offset=1000))
    sample_domain("code", {"files": str(only_code)}, SPLITS, 5, tmp_path / "direct")
    for split in SPLITS:
        assert read_split(tmp_path / "via", split) == read_split(tmp_path / "direct", split)


def test_unknown_partition_value_lists_what_exists(tmp_path):
    mixed = write_jsonl(tmp_path / "m.jsonl", records(30, "web"))
    partition_source({"files": str(mixed)}, "meta.set", 30, 1, tmp_path / "p")
    with pytest.raises(SourceError, match=r"'Web'.*holds: 'web' \(30\)"):
        sample_domain(
            "w", {"partition": "Web"}, SPLITS, 1, tmp_path / "o", partition_dir=tmp_path / "p"
        )


def test_missing_domain_field_is_refused(tmp_path):
    rows = [{"text": f"doc {i} " * 5} for i in range(30)]
    path = write_jsonl(tmp_path / "m.jsonl", rows)
    with pytest.raises(SourceError, match="no record has the field 'meta.pile_set_name'"):
        partition_source({"files": str(path)}, "meta.pile_set_name", 10, 1, tmp_path / "p")
    assert not (tmp_path / "p").exists()


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
