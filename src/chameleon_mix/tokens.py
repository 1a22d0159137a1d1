"""Token files: each domain's shards tokenized once, then read by every job through ``np.memmap``.

Per dataset and domain, ``results/<dataset>/tokens/<domain>/`` holds for each split:

* ``<split>.bin``: the flat token ids, little-endian ``uint16`` when the tokenizer's vocabulary
  (``len(tokenizer)``) is at most 65535, else ``uint32``; every document's tokens are followed
  by one EOS id, so the file is the stream the trainer draws its windows from;
* ``<split>.offsets.npy``: int64, documents + 1 entries; document ``i`` is
  ``bin[offsets[i]:offsets[i + 1]]``, its trailing EOS included;

and one ``stats.json``: dtype, EOS id, vocabulary size, the tokenizer (its directory and a digest
of its definition) and per split the documents, tokens (EOS included), mean tokens per document,
the sha256 of the ``.bin`` and ``ratio``, the sums over documents that estimate the domain's
tokens per byte (:class:`RatioSums`, read by :mod:`chameleon_mix.corpus_stats`).

Writing streams: the parquet shard is read in record batches of ``batch_documents`` rows, each
batch is encoded by the tokenizers library's batch encoder (parallel over its Rust threads; a
batch of long documents in calls of at most ``MAX_CHARS_PER_ENCODE`` characters, a document
over ``PIECE_BYTES`` in pieces split at word boundaries, with the ids of one call) and appended
to the ``.bin``; the offsets go straight into a preallocated ``.npy`` memmap. Memory therefore
stays at one batch whatever the size of the shard or of its largest document. The directory
appears whole or not at all.

Readers check what they read (:func:`read_tokens`, :func:`read_offsets`: sizes and offsets
against ``stats.json``, free; :func:`verify_token_file`: the streamed sha256, ~0.6 s per GB),
so a cut or damaged file is named, with its fix, before a result is written from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .io import atomic_path, write_json

SPLITS = ("train", "val", "test")
UINT16_VOCABULARY = 65535  # the largest vocabulary stored as uint16
MAX_CHARS_PER_ENCODE = 1 << 24  # ~4M tokens, ~150 MB of Python ids per encoder call
# A longer document is encoded in pieces of about this many bytes, split where a space is
# between two letters or digits: the tokenizer's pre-tokenization splits there too, so the
# ids are those of one call, and memory is a piece's, not the document's (a 50 MB book
# encoded at once peaked at 10 GB here).
PIECE_BYTES = 1 << 16  # 64 KB: 516 MB peak for a 50 MB document, 577 MB at 256 KB, 3.4 GB at 4 MB
BOUNDARY_CONTEXT = 256  # bytes each side of a split the pieces' ids are checked against


def token_dtype(vocab_size: int) -> np.dtype:
    """``uint16`` when every id of a ``vocab_size`` vocabulary fits, else ``uint32``."""
    return np.dtype("<u2") if vocab_size <= UINT16_VOCABULARY else np.dtype("<u4")


def tokenizer_digest(tokenizer) -> str:
    """sha256 of the tokenizer's definition (vocabulary, merges, normalisation, special tokens).

    Read from the fast tokenizer's own serialisation with the call-time settings (truncation,
    padding) left out, so a tokenizer and its ``save_pretrained`` copy beside a model agree.
    """
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("truncation", None)
    spec.pop("padding", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def _open_shard(path: Path):
    import pyarrow.parquet as pq

    try:
        # Buffered column reads without pre-buffering: pages are decoded as batches are asked
        # for, never a whole row group's text at once.
        shard = pq.ParquetFile(path, buffer_size=1 << 20, pre_buffer=False)
    except Exception as err:  # pyarrow raises several kinds for a damaged or missing file
        raise ValueError(
            f"{path}: cannot read the shard as parquet ({err}); delete it and rerun its "
            "sample_shards job"
        ) from None
    if "text" not in shard.schema_arrow.names:
        raise ValueError(
            f"{path}: the shard has no `text` column (columns: {shard.schema_arrow.names}); "
            "shards are written by the sample_shards rule"
        )
    return shard


def _encode(
    tokenizer, texts: list[str], eos: int, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
    """``texts`` as one flat id array, each document followed by EOS, and each one's length."""
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    lengths = np.array([len(doc) + 1 for doc in ids], dtype=np.int64)
    flat = np.full(int(lengths.sum()), eos, dtype=dtype)
    for doc, end in zip(ids, np.cumsum(lengths)):
        flat[end - 1 - len(doc) : end - 1] = doc
    return flat, lengths


_WORD_BYTES = np.zeros(256, dtype=bool)
_WORD_BYTES[[*range(48, 58), *range(65, 91), *range(97, 123)]] = True  # ASCII letters, digits


def _split_points(data: np.ndarray, piece_bytes: int):
    """Byte positions, about ``piece_bytes`` apart, of a space between two ASCII letters or
    digits (never inside a UTF-8 sequence); the next piece starts with the space."""
    start = 0
    while len(data) - start > piece_bytes:
        window = data[start + piece_bytes // 2 : start + piece_bytes]
        spaces = np.flatnonzero(window[1:-1] == 0x20) + 1
        spaces = spaces[_WORD_BYTES[window[spaces - 1]] & _WORD_BYTES[window[spaces + 1]]]
        if not len(spaces):  # no word boundary here (a blob): look further on
            start += piece_bytes // 2
            continue
        start += piece_bytes // 2 + int(spaces[-1])
        yield start


def _char_start(data: np.ndarray, position: int) -> int:
    """The first position at or after ``position`` that starts a UTF-8 character."""
    while position < len(data) and data[position] & 0xC0 == 0x80:
        position += 1
    return position


def _long_document_ids(tokenizer, text, piece_bytes: int, batch: int = 8) -> Iterator[list[int]]:
    """A long document's ids (without EOS), piece by piece, ``batch`` pieces to an encoder
    call (in parallel, as short documents are): equal to one call's, checked at every split on
    the text around it (a split this tokenizer merges across is dropped)."""
    data = np.frombuffer(text.as_buffer(), dtype=np.uint8)

    def encode(spans: list[tuple[int, int]]) -> list[list[int]]:
        texts = [data[lo:hi].tobytes().decode() for lo, hi in spans]
        return tokenizer(texts, add_special_tokens=False)["input_ids"]

    splits = list(_split_points(data, piece_bytes))
    contexts = [
        (_char_start(data, s - BOUNDARY_CONTEXT), s, _char_start(data, s + BOUNDARY_CONTEXT))
        for s in splits
    ]
    for i in range(0, len(contexts), batch):
        group = contexts[i : i + batch]
        left = encode([(lo, s) for lo, s, _ in group])
        right = encode([(s, hi) for _, s, hi in group])
        whole = encode([(lo, hi) for lo, _, hi in group])
        splits[i : i + len(group)] = [
            s if a + b == w else None for (_, s, _), a, b, w in zip(group, left, right, whole)
        ]
    bounds = [0, *(s for s in splits if s is not None), len(data)]
    spans = list(zip(bounds[:-1], bounds[1:]))
    for i in range(0, len(spans), batch):
        yield from encode(spans[i : i + batch])


def _chunks(texts, max_chars: int, long_bytes: int):
    """Consecutive runs of documents (Arrow slices) of at most ``max_chars`` characters each,
    and each document of more than ``long_bytes`` bytes alone (it is encoded in pieces): a
    batch of books must not become one huge list of ids."""
    import pyarrow.compute as pc

    chars = pc.utf8_length(texts).to_numpy(zero_copy_only=False)
    long = pc.binary_length(texts).to_numpy(zero_copy_only=False) > long_bytes
    start, size = 0, 0
    for i, n in enumerate(chars):
        if i > start and (long[i] or size + n > max_chars):
            yield texts.slice(start, i - start)
            start, size = i, 0
        if long[i]:
            yield texts.slice(i, 1)
            start = i + 1
            continue
        size += n
    if start < len(texts):
        yield texts.slice(start)


class RatioSums:
    """Sums over distinct documents of their UTF-8 bytes ``b`` and text tokens ``t`` (EOS left
    out), each times its copies in the source: enough for the ratio estimate of tokens per
    byte of the source, copies included, and its standard error."""

    def __init__(self):
        self.documents = self.bytes = self.tokens = 0
        self.bytes_sq = self.tokens_sq = self.cross = 0.0

    def add(self, size: np.ndarray, tokens: np.ndarray, copies: np.ndarray | None = None) -> None:
        """Add documents of ``size`` bytes, ``tokens`` text tokens, ``copies`` copies (1)."""
        weight = np.ones(len(size)) if copies is None else np.asarray(copies, np.float64)
        size, tokens = weight * size, weight * tokens
        self.documents += len(size)
        self.bytes += int(size.sum())
        self.tokens += int(tokens.sum())
        self.bytes_sq += float(size @ size)
        self.tokens_sq += float(tokens @ tokens)
        self.cross += float(size @ tokens)

    def to_dict(self) -> dict:
        return dict(vars(self))


def _write_split(
    shard_path: Path, tokenizer, dtype: np.dtype, eos: int, out_dir: Path, split: str, batch: int
) -> dict:
    """Tokenize one shard into ``<split>.bin`` and ``<split>.offsets.npy``; return its stats."""
    import pyarrow.compute as pc

    shard = _open_shard(shard_path)
    documents = shard.metadata.num_rows
    offsets = np.lib.format.open_memmap(
        out_dir / f"{split}.offsets.npy", mode="w+", dtype=np.int64, shape=(documents + 1,)
    )
    offsets[0] = 0
    digest, done, tokens = hashlib.sha256(), 0, 0
    ratio = RatioSums()
    with open(out_dir / f"{split}.bin", "wb") as out:

        def write(ids: np.ndarray) -> int:
            data = ids.tobytes()
            out.write(data)
            digest.update(data)
            return len(ids)

        copies_of = "copies" in shard.schema_arrow.names  # each text's copies in its source
        columns = ["text", "copies"] if copies_of else ["text"]
        for records in shard.iter_batches(batch_size=batch, columns=columns):
            column = records.column(0)
            copies = records.column(1).to_numpy() if copies_of else np.ones(len(column))
            if column.null_count:
                row = done + column.is_null().to_numpy(zero_copy_only=False).argmax()
                raise ValueError(f"{shard_path}: row {row} has no text; resample the domain")
            first = 0  # the chunk's first row in the batch
            for texts in _chunks(column, MAX_CHARS_PER_ENCODE, PIECE_BYTES):
                if len(texts) == 1 and texts[0].as_buffer().size > PIECE_BYTES:
                    # A long document: its pieces straight to the file, then its EOS.
                    pieces = _long_document_ids(tokenizer, texts[0], PIECE_BYTES)
                    written = sum(write(np.asarray(ids, dtype=dtype)) for ids in pieces)
                    lengths = np.array([written + write(np.array([eos], dtype=dtype))])
                else:
                    flat, lengths = _encode(tokenizer, texts.to_pylist(), eos, dtype)
                    write(flat)
                offsets[done + 1 : done + 1 + len(lengths)] = tokens + np.cumsum(lengths)
                done, tokens = done + len(lengths), tokens + int(lengths.sum())
                size = pc.binary_length(texts).to_numpy(zero_copy_only=False)
                ratio.add(size, lengths - 1, copies[first : first + len(texts)])
                first += len(texts)
    offsets.flush()
    del offsets  # closes the memmap before the directory is moved into place
    return {
        "documents": documents,
        "tokens": tokens,
        "mean_tokens_per_document": tokens / documents if documents else 0.0,
        "sha256": digest.hexdigest(),
        "ratio": ratio.to_dict(),
    }


def write_token_files(
    shards: dict[str, str | Path],
    tokenizer_dir: str | Path,
    out_dir: str | Path,
    batch_documents: int = 1024,
) -> dict:
    """Tokenize a domain's shards (split -> parquet) into ``out_dir``; return the stats written.

    Memory is one batch of ``batch_documents`` documents and their ids, whatever the shards'
    size. ``out_dir`` is replaced whole, or left untouched when anything fails.
    """
    from .tokenizer import load_tokenizer

    unknown = sorted(set(shards) - set(SPLITS))
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; token files hold {', '.join(SPLITS)}")
    tokenizer = load_tokenizer(tokenizer_dir)
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValueError(
            f"the tokenizer {tokenizer_dir} has no EOS token to end documents with; use a "
            "tokenizer that defines one"
        )
    vocab_size = len(tokenizer)
    dtype = token_dtype(vocab_size)
    with atomic_path(out_dir, directory=True) as tmp:
        splits = {}
        for split, shard in shards.items():
            splits[split] = _write_split(
                Path(shard), tokenizer, dtype, eos, tmp, split, batch_documents
            )
            print(
                f"{split}: {splits[split]['documents']:,} documents, "
                f"{splits[split]['tokens']:,} tokens",
                flush=True,
            )
        stats = {
            "dtype": "uint16" if dtype.itemsize == 2 else "uint32",
            "eos_id": eos,
            "vocab_size": vocab_size,
            "tokenizer": str(tokenizer_dir),
            "tokenizer_sha256": tokenizer_digest(tokenizer),
            "splits": splits,
        }
        write_json(tmp / "stats.json", stats)
    return stats


def token_dirs(domains, stats_files) -> dict[str, Path]:
    """Domain -> its token directory, from a job's ``stats.json`` inputs in ``domains`` order."""
    return {domain: Path(stats).parent for domain, stats in zip(domains, stats_files, strict=True)}


def _damaged(path: Path, what: str) -> ValueError:
    token_dir = path.parent
    return ValueError(
        f"{path}: {what}; the token files are damaged: delete {token_dir} and rerun its "
        f"tokenize_domain job (snakemake --forcerun tokenize_domain {token_dir / 'stats.json'})"
    )


def read_stats(out_dir: str | Path) -> dict:
    path = Path(out_dir) / "stats.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{out_dir} holds no token files (no stats.json); the tokenize_domain rule writes "
            "them: snakemake results/<dataset>/tokens/<domain>/stats.json"
        )
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise _damaged(path, f"not valid JSON ({err})") from None


def _checked_bin(out_dir: str | Path, split: str, stats: dict) -> Path:
    """A split's ``.bin``, after checking it holds exactly the tokens ``stats.json`` counts."""
    if split not in stats["splits"]:
        raise ValueError(f"{out_dir} holds no {split!r} split (has: {', '.join(stats['splits'])})")
    tokens, itemsize = stats["splits"][split]["tokens"], np.dtype(stats["dtype"]).itemsize
    path = Path(out_dir) / f"{split}.bin"
    size = path.stat().st_size if path.is_file() else None
    if size != tokens * itemsize:
        found = "is missing" if size is None else f"holds {size:,} bytes"
        raise _damaged(path, f"{found}, not the {tokens:,} tokens x {itemsize} bytes of stats.json")
    return path


def verify_token_file(out_dir: str | Path, split: str) -> str:
    """The sha256 of a split's ``.bin`` as read now, after checking it is the one
    ``stats.json`` records (streamed, 1 MB at a time): in-place damage the size check of
    :func:`read_tokens` cannot see. Jobs whose result stands for a whole file (an
    embedding, an export, a training run, an evaluation) call it before they write anything."""
    from .io import sha256_file

    stats = read_stats(out_dir)
    path = _checked_bin(out_dir, split, stats)
    expected, actual = stats["splits"][split]["sha256"], sha256_file(path)
    if actual != expected:
        raise _damaged(path, f"its sha256 is {actual[:12]}…, stats.json records {expected[:12]}…")
    return actual


def read_tokens(out_dir: str | Path, split: str) -> np.ndarray:
    """A split's token stream, memory-mapped read-only (an empty split: an empty array), after
    checking the file holds exactly the tokens ``stats.json`` counts (a cut file is refused)."""
    stats = read_stats(out_dir)
    path = _checked_bin(out_dir, split, stats)
    dtype = np.dtype(stats["dtype"]).newbyteorder("<")
    if stats["splits"][split]["tokens"] == 0:
        return np.empty(0, dtype=dtype)  # mmap cannot map an empty file
    return np.memmap(path, dtype=dtype, mode="r")


def read_offsets(out_dir: str | Path, split: str) -> np.ndarray:
    """A split's document offsets (documents + 1,) int64, checked against ``stats.json``:
    from 0 to the split's token count, never decreasing."""
    split_stats = read_stats(out_dir)["splits"][split]
    path = Path(out_dir) / f"{split}.offsets.npy"
    try:
        offsets = np.load(path)
    except (ValueError, OSError, EOFError) as err:
        raise _damaged(path, f"not a readable .npy ({err})") from None
    documents, tokens = split_stats["documents"], split_stats["tokens"]
    if offsets.shape != (documents + 1,) or offsets.dtype != np.int64:
        raise _damaged(path, f"{offsets.dtype} {offsets.shape}, not {documents + 1} int64 offsets")
    if offsets[0] != 0 or offsets[-1] != tokens or np.any(np.diff(offsets) < 0):
        raise _damaged(path, f"the offsets do not run from 0 up to the {tokens:,} tokens")
    return offsets


def check_tokenizer(out_dir: str | Path, tokenizer, expected: str) -> dict:
    """The stats of ``out_dir``, after checking they were written with ``tokenizer``
    (``expected`` names it in the error): one tokenizer's ids are noise to another's model."""
    stats = read_stats(out_dir)
    if stats["tokenizer_sha256"] != tokenizer_digest(tokenizer):
        raise ValueError(
            f"the token files {out_dir} were written with the tokenizer {stats['tokenizer']}, "
            f"not with {expected}; tokenize the domain with that one (the tokenize_domain rule "
            "uses the dataset's tokenizer)"
        )
    return stats


def documents(tokens: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """Each document's tokens without its trailing EOS, as views into ``tokens``."""
    return [tokens[start : end - 1] for start, end in zip(offsets[:-1], offsets[1:])]
