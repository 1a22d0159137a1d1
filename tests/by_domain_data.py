"""A by-domain split as the by-domain target lays it out (``results/<ds>/by_domain/``), built
by hand for the export's tests: per domain, parts of zstd jsonl text, each also a Megatron
indexed dataset written by megatron-core's builder, and ``manifest.json``."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from chameleon_mix.export import MEGATRON_DTYPES
from chameleon_mix.tokens import read_offsets, read_stats, read_tokens, write_token_files


def write_megatron_part(prefix: Path, documents: list[np.ndarray], dtype) -> None:
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    builder = IndexedDatasetBuilder(f"{prefix}.bin", dtype=dtype)
    for document in documents:
        builder.add_document(np.asarray(document), lengths=[len(document)])
    builder.finalize(f"{prefix}.idx")


def write_by_domain(
    root: Path, documents: dict[str, list[str]], tokenizer: Path, parts: int = 2
) -> tuple[Path, dict[str, np.ndarray]]:
    """Split each domain's ``documents`` into ``parts`` parts under ``root/<domain>/`` and
    write ``root/manifest.json``; return its path and each domain's tokens per document."""
    domains, lengths = {}, {}
    for domain, texts in documents.items():
        folder = root / domain
        folder.mkdir(parents=True)
        shard = folder / "all.parquet"
        pq.write_table(pa.table({"text": texts}), shard)
        stats = write_token_files({"train": shard}, tokenizer, folder / "tokens")
        tokens, offsets = (
            read_tokens(folder / "tokens", "train"),
            read_offsets(folder / "tokens", "train"),
        )
        ids = [tokens[a:b] for a, b in zip(offsets[:-1], offsets[1:])]
        lengths[domain] = np.diff(offsets)
        entries = []
        size = -(-len(texts) // parts)
        for group in range(parts):
            chunk = slice(group * size, (group + 1) * size)
            if not texts[chunk]:
                continue
            name = folder / f"part-{group:05d}"
            text = name.with_suffix(".jsonl.zst")
            lines = "".join(json.dumps({"text": t}) + "\n" for t in texts[chunk]).encode()
            text.write_bytes(zstandard.ZstdCompressor().compress(lines))
            write_megatron_part(name, ids[chunk], MEGATRON_DTYPES[stats["dtype"]])
            entries.append(
                {
                    "text": str(text.resolve()),
                    "format": "jsonl.zst",
                    "text_field": "text",
                    "records": len(texts[chunk]),
                    "bytes": sum(len(t.encode()) for t in texts[chunk]),
                    "tokens": int(sum(map(len, ids[chunk]))),
                    "megatron": str(name.resolve()),
                }
            )
        domains[domain] = {
            "records": sum(e["records"] for e in entries),
            "bytes": sum(e["bytes"] for e in entries),
            "tokens": sum(e["tokens"] for e in entries),
            "parts": entries,
        }
    stats = read_stats(folder / "tokens")
    tokenizer_json = (tokenizer / "tokenizer.json").resolve()
    manifest = root / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "dataset": root.parent.name,
                "tokenizer": {
                    "path": str(tokenizer_json),
                    "sha256": hashlib.sha256(tokenizer_json.read_bytes()).hexdigest(),
                    "dtype": stats["dtype"],
                    "eos_id": stats["eos_id"],
                    "vocab_size": stats["vocab_size"],
                    "source": "dataset",
                },
                "domains": domains,
            },
            indent=2,
        )
    )
    return manifest, lengths
