"""The pooled documents of a clustered dataset: their vectors, and their texts read back.

:func:`embed_documents_to_files` (rule ``embed_documents``): each document is one window, its
first ``embedding.seq_len`` tokens read from the source's token files, embedded by the
dataset's proxy exactly as :mod:`chameleon_mix.embed` embeds a domain's windows (hidden state
after block ``embedding.layer``, mean over real tokens). The first window, not a random one,
because a document's beginning (title, header, shebang) says most about what it is, and so a
document's vector depends on no sampling seed. It does not depend on k either: changing k
refits the clusters without embedding again.

A document is known by its global number: its row in the vectors, the parts (domain, split)
in the order of the index that :func:`embed_documents_to_files` writes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..io import atomic_path, write_json


def embed_documents_to_files(
    model_dir: str | Path,
    parts: list[tuple[str, str, str | Path]],
    settings: dict,
    out_vectors: str | Path,
    out_info: str | Path,
    model_name: str,
    device: str | None = None,
    chunk_documents: int = 4096,
) -> dict:
    """The embed_documents rule: one vector per document of every ``(domain, split,
    token_dir)`` part, in that order, as ``out_vectors`` (.npy, float32, documents x hidden),
    and the index of the parts in ``out_info`` (JSON). ``settings`` is the dataset's
    ``embedding`` (``layer``, ``seq_len``, ``batch_size``, ``include_padding``).

    Memory is one chunk of ``chunk_documents`` windows: the token files are memory-mapped and
    the vectors written straight into a memory-mapped ``.npy``.
    """
    import torch

    from ..embed import embed_windows, middle_layer, truncate_to_layer
    from ..model import load_pretrained

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_pretrained(model_dir)
    layer = settings["layer"] or middle_layer(model.config.num_hidden_layers)
    seq_len = min(settings["seq_len"], model.config.max_position_embeddings)
    trunk = truncate_to_layer(model, layer)
    streams, index = open_parts(parts, tokenizer, f"the tokenizer of {model_dir}")
    total = sum(part["documents"] for part in index)
    with atomic_path(out_vectors) as tmp:
        vectors = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.float32, shape=(total, trunk.hidden_size)
        )
        for (tokens, offsets), part in zip(streams, index):
            for first in range(0, part["documents"], chunk_documents):
                last = min(first + chunk_documents, part["documents"])
                windows = first_windows(tokens, offsets[first : last + 1], seq_len)
                start = part["start"] + first
                vectors[start : start + len(windows)] = embed_windows(
                    trunk,
                    windows,
                    tokenizer.pad_token_id,
                    settings["batch_size"],
                    settings["include_padding"],
                    device,
                )
            print(f"{part['domain']}/{part['split']}: {part['documents']} documents", flush=True)
        vectors.flush()
        del vectors
    info = {
        "model": model_name,
        "layer": layer,
        "seq_len": seq_len,
        "include_padding": settings["include_padding"],
        "documents": total,
        "hidden_size": trunk.hidden_size,
        "parts": index,
    }
    write_json(out_info, info)
    return info


def open_parts(
    parts: list[tuple[str, str, str | Path]], tokenizer, expected: str
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[dict]]:
    """Each ``(domain, split, token_dir)`` part's tokens and document offsets, memory-mapped,
    after checking they were written by ``tokenizer`` (``expected`` names it in the error);
    and the index of the parts: where each one's documents start in the document order."""
    from ..tokens import check_tokenizer, read_offsets, read_tokens, verify_token_file

    streams, index, total = [], [], 0
    for domain, split, token_dir in parts:
        check_tokenizer(token_dir, tokenizer, expected)
        offsets = read_offsets(token_dir, split)
        streams.append((read_tokens(token_dir, split), offsets))
        index.append(
            {
                "domain": domain,
                "split": split,
                "start": total,
                "documents": len(offsets) - 1,
                "tokens_sha256": verify_token_file(token_dir, split),
            }
        )
        total += len(offsets) - 1
    return streams, index


def first_windows(tokens: np.ndarray, offsets: np.ndarray, seq_len: int) -> list[np.ndarray]:
    """The first ``seq_len`` tokens of each document between consecutive ``offsets``, without
    its EOS (an empty document: the EOS)."""
    return [
        np.asarray(tokens[s : max(s + 1, min(e - 1, s + seq_len))], dtype=np.int64)
        for s, e in zip(offsets[:-1], offsets[1:])
    ]


def document_meta(parts: list[dict], shards: dict) -> pa.Table:
    """The small columns (``source``, ``record``, ``key``, the text's ``bytes``) of the
    parts' shards (``shards[(domain, split)]``) in document order, after checking that each
    shard holds the documents its token files held when they were embedded."""
    pieces = []
    for part in parts:
        path = shards[(part["domain"], part["split"])]
        shard = pq.ParquetFile(path)
        if shard.metadata.num_rows != part["documents"]:
            raise ValueError(
                f"{path} holds {shard.metadata.num_rows} documents, but its token files held "
                f"{part['documents']} when they were embedded; rerun tokenize_domain and "
                "embed_documents"
            )
        for batch in shard.iter_batches(
            batch_size=4096, columns=["source", "record", "key", "text"]
        ):
            pieces.append(
                pa.record_batch(
                    [*batch.columns[:3], pc.binary_length(batch.column(3))],
                    names=["source", "record", "key", "bytes"],
                )
            )
    return pa.Table.from_batches(pieces)


def document_texts(info: dict, shards: dict, rows: np.ndarray) -> dict[int, str]:
    """The texts of the documents ``rows`` (global document numbers), read in record batches."""
    wanted = np.zeros(info["documents"], dtype=bool)
    wanted[rows] = True
    texts = {}
    for part in info["parts"]:
        start = part["start"]
        if not wanted[start : start + part["documents"]].any():
            continue
        shard = pq.ParquetFile(shards[(part["domain"], part["split"])])
        for batch in shard.iter_batches(batch_size=4096, columns=["text"]):
            take = np.flatnonzero(wanted[start : start + batch.num_rows])
            column = batch.column(0)
            for i in take:
                texts[start + int(i)] = column[int(i)].as_py()
            start += batch.num_rows
    return texts
