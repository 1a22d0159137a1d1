"""What a domain's own source files change: editing, adding or removing one reruns that
domain's shards, tokens and embedding and the weights, nothing else (Snakemake's dry run)."""

import json
import os
from pathlib import Path

import pytest
from test_workflow import planned_jobs, snakemake, write_config

pytestmark = pytest.mark.slow

DOMAINS = {"rivers": "river", "mills": "mill", "springs": "spring"}


def write_documents(path: Path, word: str, count: int, offset: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {"text": f"Document {i} about the {word}. " + f"The {word} {i % 7} is old. " * 12}
        )
        for i in range(offset, offset + count)
    ]
    path.write_text("\n".join(lines) + "\n")


def config(root: Path) -> dict:
    domains = [
        {"name": name, "source": {"files": str(root / "data" / name / "*.jsonl")}}
        for name in DOMAINS
    ]
    return {
        "datasets": {
            "own": {
                "proxy": "tiny",
                "seed": 1,
                "min_chars": 100,
                "splits": {"train": 24, "val": 4, "test": 4},
                "domains": domains,
                "embedding": {"samples": 8, "seq_len": 32, "batch_size": 8},
                "methods": ["uniform", "chameleon"],
            }
        },
        "proxies": {
            "tiny": {
                "dataset": "own",
                "domains": ["rivers", "mills"],  # springs is weighted, not trained on
                "model": {"n_layer": 2, "n_head": 2, "n_embd": 32},
                "tokenizer": {"vocab_size": 300, "train_documents": 24},
                "train": {"steps": 4, "batch_size": 4, "seq_len": 32, "warmup_steps": 1},
            }
        },
    }


def planned(workdir: Path) -> list[tuple[str, str]]:
    return planned_jobs(workdir, "results/own/weights.json")


def test_a_changed_source_file_reruns_only_its_domain(tmp_path):
    for name, word in DOMAINS.items():
        write_documents(tmp_path / "data" / name / "part-0.jsonl", word, 20)
        write_documents(tmp_path / "data" / name / "part-1.jsonl", word, 20, offset=20)
    write_config(tmp_path, config(tmp_path))
    snakemake(tmp_path, "results/own/weights.json")
    assert planned(tmp_path) == []

    only_springs = [
        ("embed_domain", "dataset=own, embedder=seed-0, ckpt=final, domain=springs"),
        ("sample_shards", "dataset=own, domain=springs"),
        ("tokenize_domain", "dataset=own, domain=springs"),
        ("weights", "dataset=own"),
    ]
    springs = tmp_path / "data" / "springs"
    part = springs / "part-1.jsonl"
    original, stat = part.read_bytes(), part.stat()
    write_documents(part, "spring", 20, offset=100)  # edited in place
    assert planned(tmp_path) == only_springs
    part.write_bytes(original)  # undone, with its old time: nothing to do again
    os.utime(part, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert planned(tmp_path) == []
    write_documents(springs / "part-2.jsonl", "spring", 5, offset=200)  # added
    assert planned(tmp_path) == only_springs
    (springs / "part-2.jsonl").unlink()
    assert planned(tmp_path) == []
    part.unlink()  # removed
    assert planned(tmp_path) == only_springs
