"""The whole corpus, per domain: every record of a dataset's sources as each domain's parts,
text and tokens, for a production trainer.

A mixed source (SlimPajama's 59,166 chunks, the domain in ``meta.redpajama_set_name``) is split
scatter-gather, like the partition (:mod:`chameleon_mix.shards`): one job per group of its files
(``partition.files_per_job``, the partition's groups) reads them once and writes, for each
domain with records there, one part ``<out>/<domain>/part-<group:05d>``:

* ``.jsonl.zst``: the records' texts, one ``{"text": ...}`` per line, zstd-compressed (the
  input of Megatron's ``preprocess_data.py``, datatrove and every other trainer's tooling);
* ``.bin`` / ``.idx``: the same documents tokenized, each followed by EOS, as a Megatron
  indexed dataset written by megatron-core's own ``IndexedDatasetBuilder``, one document per
  sequence, in the order of the text's lines.

Text and tokens are written in the same pass over the source: the files are decompressed and
parsed once (``benchmarks/by_domain_throughput.py`` measures what tokenizing adds). There is no
merge: a domain's data is its parts, listed by the manifest.

A domain with a source of its own (``source:``, a collected demo domain) is its own split
already: each of its files is a part as it is (no text rewritten), and gets its Megatron dataset
(one job per group of its files); a Hugging Face dataset, which has no files to point at, has its
records written as a part like a mixed source's.

Every job writes its parts to temporary names and moves them into place only once all of its
input was read: a source file that turns out truncated or corrupt stops the job with the
file's name and the fix (:mod:`chameleon_mix.sources`), and no part of that job is left
half-written. Memory is one batch (``batch_bytes`` of text over all domains, and its ids),
whatever the size of the files; the Megatron builder keeps one length per document.

Each job's counts (records, UTF-8 bytes, tokens per part, and the read's unusable records) go to
a small JSON file; :func:`write_manifest` gathers them into ``manifest.json``, which
:func:`read_manifest` reads for the exports.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from .io import atomic_path, warn, write_json
from .sources import (
    ReadStats,
    describe,
    file_format,
    iter_records,
    resolve_files,
    text_getter,
)

PART = "part-{:05d}"
TEXT_SUFFIX = ".jsonl.zst"
MEGATRON_SUFFIXES = (".bin", ".idx")
# Text buffered over all domains before it is written and tokenized: the job's memory is this
# and its ids (~10 bytes of Python ints per byte of text while a batch is encoded).
BATCH_BYTES = 1 << 22
ZSTD_LEVEL = 3  # zstd's default: ~3x on web text, and faster than parsing the JSON
TOKENIZER_KEY = "by_domain.tokenizer"
TOKENIZER_SOURCES = ("dataset", "user")
# A manifest's keys (docs/by_domain.md): a part's, and its tokenizer's.
PART_KEYS = ("text", "format", "text_field", "records", "bytes", "tokens", "megatron")
TOKENIZER_KEYS = ("path", "sha256", "dtype", "eos_id", "vocab_size", "source")


class ByDomainError(ValueError):
    """A by-domain target that cannot be written or read as it is; the message says which file
    or domain and what to do."""


# --- the tokenizer --------------------------------------------------------------------------
def tokenizer_file(path: str | Path, key: str = TOKENIZER_KEY) -> Path:
    """The ``tokenizer.json`` of ``path``: a Hugging Face tokenizer directory holding one, or
    the file itself; an error naming the config ``key`` otherwise."""
    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    if not file.is_file():
        found = "a directory without tokenizer.json" if path.is_dir() else "not found"
        raise ByDomainError(
            f"{key}: {path} is {found}; give a local Hugging Face tokenizer directory (with its "
            "tokenizer.json, as save_pretrained writes it) or a tokenizer.json file"
        )
    return file


def _eos_token(file: Path) -> tuple[str, str]:
    """The EOS token's text and where it came from: ``eos_token`` of the tokenizer_config.json
    beside ``file``, else the project's own (:data:`chameleon_mix.tokenizer.EOS`)."""
    from .tokenizer import EOS

    config = file.parent / "tokenizer_config.json"
    if config.is_file():
        token = json.loads(config.read_text()).get("eos_token")
        if isinstance(token, dict):  # an AddedToken, as transformers serialises one
            token = token.get("content")
        if isinstance(token, str) and token:
            return token, f"the eos_token of {config}"
    return EOS, f"the project's EOS (no eos_token in a tokenizer_config.json beside {file})"


@dataclass
class PartTokenizer:
    """A ``tokenizers`` tokenizer with its EOS id and the dtype of its ids. Called like a
    Hugging Face tokenizer (``tok(texts, add_special_tokens=False)["input_ids"]``), so the
    encoding helpers of :mod:`chameleon_mix.tokens` take it."""

    path: Path  # its tokenizer.json
    encoder: object  # tokenizers.Tokenizer
    eos_id: int
    vocab_size: int
    sha256: str

    @property
    def dtype(self) -> str:
        """``uint16`` when every id fits (:func:`chameleon_mix.tokens.token_dtype`), else
        ``uint32`` (Megatron's files store those as ``int32``)."""
        from .tokens import token_dtype

        return "uint16" if token_dtype(self.vocab_size).itemsize == 2 else "uint32"

    @property
    def megatron_dtype(self) -> type:
        from .export import MEGATRON_DTYPES

        return MEGATRON_DTYPES[self.dtype]

    def info(self) -> dict:
        return {
            "path": str(self.path.resolve()),
            "sha256": self.sha256,
            "dtype": self.dtype,
            "eos_id": self.eos_id,
            "vocab_size": self.vocab_size,
        }

    def __call__(self, texts: list[str], add_special_tokens: bool = False) -> dict:
        encodings = self.encoder.encode_batch_fast(texts, add_special_tokens=add_special_tokens)
        return {"input_ids": [e.ids for e in encodings]}


def load_tokenizer(path: str | Path, key: str = TOKENIZER_KEY) -> PartTokenizer:
    """The tokenizer of a local Hugging Face tokenizer directory or ``tokenizer.json`` file,
    loaded with the ``tokenizers`` library; its EOS from ``tokenizer_config.json``'s
    ``eos_token`` when there is one, else ``<|endoftext|>``."""
    from tokenizers import Tokenizer

    file = tokenizer_file(path, key)
    data = file.read_bytes()
    try:
        encoder = Tokenizer.from_str(data.decode())
    except Exception as err:  # the Rust side raises a plain Exception
        raise ByDomainError(f"{key}: {file} is not a tokenizers tokenizer.json ({err})") from None
    token, where = _eos_token(file)
    eos = encoder.token_to_id(token)
    if eos is None:
        raise ByDomainError(
            f"{key}: the tokenizer {file} has no token {token!r} ({where}) to end documents "
            "with; set eos_token in its tokenizer_config.json"
        )
    ids = encoder.get_vocab(with_added_tokens=True).values()
    vocab_size = max(encoder.get_vocab_size(with_added_tokens=True), max(ids) + 1)
    return PartTokenizer(file, encoder, eos, vocab_size, hashlib.sha256(data).hexdigest())


# --- one job's parts ------------------------------------------------------------------------
def part_prefix(out_dir: str | Path, domain: str, index: int) -> Path:
    """A part's path without its suffixes: ``<out_dir>/<domain>/part-<index:05d>``."""
    return Path(out_dir) / domain / PART.format(index)


class _Part:
    """One domain's part in one job: its texts (unless they are the source's own file) and
    its Megatron dataset, in temporary files that become the part when the job's stack of
    :func:`~chameleon_mix.io.atomic_path` closes without an error."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        prefix: Path,
        tokenizer: PartTokenizer | None,
        text_file: Path | None,
        text_field: str,
    ):
        self.prefix, self.tokenizer = prefix, tokenizer
        self.records = self.bytes = self.tokens = 0
        self.texts: list[str] = []
        self.sizes: list[int] = []
        self.text, self.builder = None, None
        if text_file is None:  # the texts are written here
            import zstandard

            self.text_file, self.format, self.text_field = (
                prefix.with_name(prefix.name + TEXT_SUFFIX),
                "jsonl.zst",
                "text",
            )
            raw = stack.enter_context(open(stack.enter_context(atomic_path(self.text_file)), "wb"))
            self.text = stack.enter_context(
                zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw, closefd=False)
            )
        else:  # a file of the domain's own source: the part's text as it is
            self.text_file, self.format, self.text_field = text_file, None, text_field
        if tokenizer is not None:
            from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

            bin_path, self.idx_path = (
                stack.enter_context(atomic_path(prefix.with_name(prefix.name + s)))
                for s in MEGATRON_SUFFIXES
            )
            self.builder = IndexedDatasetBuilder(str(bin_path), dtype=tokenizer.megatron_dtype)
            stack.callback(self.builder.data_file.close)  # on an error; finalize closes it too

    def add(self, text: str, size: int) -> None:
        self.texts.append(text)
        self.sizes.append(size)

    def flush(self) -> None:
        """Write and tokenize the buffered documents."""
        texts, sizes = self.texts, self.sizes
        if not texts:
            return
        if self.text is not None:
            dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
            self.text.write(b"".join([dumps({"text": t}, option=newline) for t in texts]))
        if self.builder is not None:
            self._tokenize(texts, sizes)
        self.records += len(texts)
        self.bytes += sum(sizes)
        self.texts, self.sizes = [], []

    def _tokenize(self, texts: list[str], sizes: list[int]) -> None:
        """One Megatron document per text, its EOS included; a text of more than
        ``PIECE_BYTES`` is encoded in pieces (:mod:`chameleon_mix.tokens`), with the ids of one
        call and the memory of a piece."""
        from .tokens import PIECE_BYTES, _encode, _long_document_ids

        tokenizer, builder = self.tokenizer, self.builder
        dtype = np.dtype(tokenizer.megatron_dtype)
        start = 0
        for i in [*(i for i, size in enumerate(sizes) if size > PIECE_BYTES), len(texts)]:
            if i > start:
                flat, lengths = _encode(tokenizer, texts[start:i], tokenizer.eos_id, dtype)
                end = 0
                for length in lengths.tolist():
                    builder.add_document(flat[end : end + length], lengths=[length])
                    end += length
                self.tokens += end
            if i < len(texts):
                import pyarrow as pa

                pieces = _long_document_ids(tokenizer, pa.scalar(texts[i]), PIECE_BYTES)
                ids = np.concatenate(
                    [np.asarray(p, dtype=dtype) for p in pieces] + [[tokenizer.eos_id]]
                ).astype(dtype)
                builder.add_document(ids, lengths=[len(ids)])
                self.tokens += len(ids)
            start = i + 1

    def close(self) -> None:
        """Finish the files (they are moved into place with the job's other parts)."""
        self.flush()
        if self.text is not None:
            self.text.close()  # the end of the zstd frame
        if self.builder is not None:
            self.builder.finalize(str(self.idx_path))

    def counts(self) -> dict:
        part = {
            "text": str(self.text_file.resolve()),
            "format": self.format,
            "text_field": self.text_field,
            "records": self.records,
            "bytes": self.bytes,
        }
        if self.builder is not None:
            part["tokens"] = self.tokens
            part["megatron"] = str(self.prefix.resolve())
        return part


class _Parts:
    """The parts one job writes, ``batch_bytes`` of text buffered over all of them."""

    def __init__(
        self,
        stack: contextlib.ExitStack,
        out_dir: Path,
        tokenizer: PartTokenizer | None,
        batch_bytes: int,
    ):
        self.stack, self.out_dir, self.tokenizer = stack, out_dir, tokenizer
        self.batch_bytes, self.pending = batch_bytes, 0
        self.open: dict[str, _Part] = {}
        self.done: dict[str, list[_Part]] = {}

    def start(self, domain: str, index: int, text_file: Path | None = None, text_field="text"):
        prefix = part_prefix(self.out_dir, domain, index)
        part = _Part(self.stack, prefix, self.tokenizer, text_file, text_field)
        self.open[domain] = part
        self.done.setdefault(domain, []).append(part)
        return part

    def add(self, part: _Part, text: str) -> None:
        # len() is the UTF-8 size of an ASCII text (an O(1) check), most of a web corpus's.
        size = len(text) if text.isascii() else len(text.encode("utf-8"))
        part.add(text, size)
        self.pending += size
        if self.pending >= self.batch_bytes:
            for each in self.open.values():
                each.flush()
            self.pending = 0

    def finish(self) -> None:
        """Close every open part; the stack moves them into place when the job succeeds."""
        for part in self.open.values():
            part.close()
        self.open, self.pending = {}, 0

    def counts(self) -> dict[str, list[dict]]:
        return {d: [p.counts() for p in parts] for d, parts in sorted(self.done.items())}


def write_megatron_texts(
    texts, prefix: str | Path, tokenizer: PartTokenizer, batch_bytes: int = BATCH_BYTES
) -> dict:
    """``texts`` (an iterable of strings) as one Megatron dataset at ``prefix``, tokenized as
    the parts are (EOS after each, long texts in pieces), written whole or not at all; returns
    its documents and tokens. Memory is one batch of ``batch_bytes`` of text."""
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        part = _Part(stack, prefix, tokenizer, text_file=prefix, text_field="text")
        pending = 0
        for text in texts:
            size = len(text) if text.isascii() else len(text.encode("utf-8"))
            part.add(text, size)
            pending += size
            if pending >= batch_bytes:
                part.flush()
                pending = 0
        part.close()
    return {"documents": part.records, "tokens": part.tokens}


def _remove_stale(out_dir: Path, domains, index: int, written: dict) -> None:
    """Delete what an earlier run of this job left for a domain that has no part now (the
    source changed), or a killed one left in temporary files, so a folder never holds a part
    that no manifest counts."""
    from .io import _remove_leftovers

    for domain in domains:
        if domain in written:
            continue
        prefix = part_prefix(out_dir, domain, index)
        for suffix in (TEXT_SUFFIX, *MEGATRON_SUFFIXES):
            path = prefix.with_name(prefix.name + suffix)
            path.unlink(missing_ok=True)
            if path.parent.is_dir():
                _remove_leftovers(path)


def _progress(source: dict):
    from .shards import _progress_bar

    return _progress_bar(source)


def _loaded(tokenizer) -> PartTokenizer | None:
    if tokenizer is None or isinstance(tokenizer, PartTokenizer):
        return tokenizer
    return load_tokenizer(tokenizer)


def split_group(
    source: dict,
    domain_field: str,
    values: dict[str, list[str]],
    group: int,
    out_dir: str | Path,
    out_counts: str | Path,
    tokenizer: str | Path | PartTokenizer | None,
    batch_bytes: int = BATCH_BYTES,
) -> dict:
    """One scatter job: every record of ``source`` (a group of a mixed source's files) whose
    ``domain_field`` value (:func:`chameleon_mix.shards.domain_value`) selects a domain
    (``values``: value -> the domains it selects) goes to that domain's part ``group``
    (:func:`part_prefix`): its text, and its tokens when there is a ``tokenizer`` (without
    one, text only: the benchmark's measure of what tokens cost). Returns the counts, also
    written to ``out_counts`` (JSON) once every part is in place.

    Records are skipped and counted as the partition does (malformed JSON, bytes that are not
    UTF-8, no string text, no domain field), records of a value that selects no domain are
    counted by value; a broken file stops the job with its name and writes nothing.
    """
    from .shards import valued_texts

    tokenizer, out_dir = _loaded(tokenizer), Path(out_dir)
    read = ReadStats()
    unassigned: dict[str, list[int]] = {}  # value -> [records, bytes]
    with contextlib.ExitStack() as stack:
        parts = _Parts(stack, out_dir, tokenizer, batch_bytes)
        routes: dict[str, list[_Part]] = {}  # value -> its domains' parts
        with _progress(source) as bar:
            for _, _, text, value in valued_texts(source, domain_field, read, bar):
                route = routes.get(value)
                if route is None:
                    route = routes[value] = [parts.start(d, group) for d in values.get(value, [])]
                    if not route:
                        unassigned[value] = [0, 0]
                if not route:
                    count = unassigned[value]
                    count[0] += 1
                    count[1] += len(text) if text.isascii() else len(text.encode("utf-8"))
                    continue
                for part in route:
                    parts.add(part, text)
        parts.finish()
    # Every part is in place: now the job's counts, its declared output.
    _remove_stale(out_dir, {d for ds in values.values() for d in ds}, group, parts.done)
    counts = {
        "kind": "split",
        "group": group,
        "source": describe(source),
        "domain_field": domain_field,
        "read": read.to_dict(),
        "tokenizer": tokenizer.info() if tokenizer else None,
        "parts": parts.counts(),
        "unassigned": {v: {"records": r, "bytes": b} for v, (r, b) in sorted(unassigned.items())},
    }
    write_json(out_counts, counts)
    return counts


def own_source_parts(
    domain: str,
    source: dict,
    first_part: int,
    out_dir: str | Path,
    out_counts: str | Path,
    tokenizer: str | Path | PartTokenizer | None,
    batch_bytes: int = BATCH_BYTES,
) -> dict:
    """One job over a group of a domain's own source: each file is a part as it is (part
    ``first_part``, the next, ...), its documents tokenized into the part's Megatron dataset;
    a Hugging Face dataset (no files) has its records written as part ``first_part``, as a
    mixed source's are. Returns the counts, also written to ``out_counts``."""
    tokenizer, out_dir = _loaded(tokenizer), Path(out_dir)
    text_field = source.get("text_field", "text")
    text_of = text_getter(text_field)
    read = ReadStats()
    if "files" in source:
        files = resolve_files(source)
        inputs = [({**source, "files": [glob.escape(str(f))]}, f) for f in files]
    else:
        inputs = [(source, None)]
    with contextlib.ExitStack() as stack:
        parts = _Parts(stack, out_dir, tokenizer, batch_bytes)
        for offset, (single, file) in enumerate(inputs):
            part = parts.start(domain, first_part + offset, file, text_field)
            if file is not None:
                part.format = file_format(file, source.get("format"))
            with _progress(single) as bar:
                for name, number, record in iter_records(single, read, (text_field,), bar):
                    text = text_of(record)
                    if text is None:
                        read.skip(
                            "missing_text", name, f"record {number}: no string {text_field!r}"
                        )
                        continue
                    parts.add(part, text)
            parts.finish()
    indices = range(first_part, first_part + len(inputs))
    for index, part in zip(indices, parts.done.get(domain, [])):
        if not part.records:  # an empty file: no part (its empty dataset is deleted)
            _remove_stale(out_dir, [domain], index, {})
    counts = {
        "kind": "own_source",
        "domain": domain,
        "group": first_part,
        "source": describe(source),
        "read": read.to_dict(),
        "tokenizer": tokenizer.info() if tokenizer else None,
        "parts": parts.counts(),
        "unassigned": {},
    }
    write_json(out_counts, counts)
    return counts


# --- the manifest ---------------------------------------------------------------------------
def _read_counts(path: Path) -> dict:
    try:
        counts = json.loads(Path(path).read_text())
        missing = [key for key in ("kind", "parts", "read") if key not in counts]
    except (OSError, ValueError, TypeError) as err:
        missing = [f"({type(err).__name__}: {err})"]
    if missing:
        raise ByDomainError(
            f"{path}: not the counts of a by-domain job (no {', '.join(missing)}); delete it "
            "and rerun the target, which reruns its job"
        )
    return counts


def write_manifest(
    dataset: str,
    counts_files: list[str | Path],
    domains: list[str],
    tokenizer_source: str,
    max_bad_fraction: float,
    out: str | Path,
) -> dict:
    """The gather: the manifest of the whole corpus per domain from the counts of every job
    (:func:`split_group`, :func:`own_source_parts`), written atomically to ``out`` and
    returned. ``domains`` are the domains split; each must have records (the exports cannot
    weight an empty domain), the unusable records of each source stay within
    ``max_bad_fraction``, and every part is checked to be on disk as counted."""
    if tokenizer_source not in TOKENIZER_SOURCES:
        raise ValueError(f"tokenizer_source {tokenizer_source!r} is not one of {TOKENIZER_SOURCES}")
    if not domains or not counts_files:
        raise ByDomainError(f"dataset {dataset!r}: no domain to split, no counts to gather")
    entries = {d: {"records": 0, "bytes": 0, "tokens": 0, "parts": []} for d in domains}
    reads: dict[str, ReadStats] = {}  # "the dataset's source", or a domain's own source
    unassigned: dict[str, int] = {}
    tokenizer, tokenizer_from = None, None
    for path in counts_files:
        counts = _read_counts(Path(path))
        info = counts.get("tokenizer")
        if info is None:
            raise ByDomainError(
                f"{path}: its parts were written without tokens; delete it and rerun the target"
            )
        if tokenizer is None:
            tokenizer, tokenizer_from = info, path
        elif info["sha256"] != tokenizer["sha256"]:
            raise ByDomainError(
                f"{path} was tokenized with {info['path']}, {tokenizer_from} with "
                f"{tokenizer['path']}: one trainer reads one vocabulary. Delete the counts of "
                f"{Path(path).parent} and rerun the target to tokenize every part with one"
            )
        where = counts["domain"] if counts["kind"] == "own_source" else None
        reads.setdefault(where, ReadStats()).add(ReadStats.from_dict(counts["read"]))
        for value, count in counts.get("unassigned", {}).items():
            unassigned[value] = unassigned.get(value, 0) + count["records"]
        for domain, parts in counts["parts"].items():
            if domain not in entries:
                continue  # a domain no longer split (the config changed)
            for part in parts:
                if part["records"] > 0:
                    entry = entries[domain]
                    entry["parts"].append({k: part[k] for k in PART_KEYS})
                    for key in ("records", "bytes", "tokens"):
                        entry[key] += part[key]
    for where, read in reads.items():
        what = f"domain {where!r} (its own source)" if where else "the dataset's source"
        read.check(f"{dataset}: {what}", max_bad_fraction)
    empty = [d for d, entry in entries.items() if not entry["records"]]
    if empty:
        others = ", ".join(f"{v!r} ({n} records)" for v, n in sorted(unassigned.items()))
        raise ByDomainError(
            f"dataset {dataset!r}: domain(s) {', '.join(map(repr, empty))} have no records in "
            "the whole corpus, and a mixture cannot weight an empty domain: check the "
            "domain's `value` (or its source)"
            + (f"; records of no domain have the values {others}" if others else "")
            + ", or remove the domain"
        )
    if unassigned:
        warn(
            f"dataset {dataset!r}: records of values no domain selects are left out of the "
            "by-domain parts: "
            + ", ".join(f"{v!r} ({n} records)" for v, n in sorted(unassigned.items()))
        )
    for entry in entries.values():
        entry["parts"].sort(key=lambda part: part["megatron"])
    manifest = {
        "dataset": dataset,
        "tokenizer": {**tokenizer, "source": tokenizer_source} if tokenizer else None,
        "domains": entries,
    }
    _check(manifest, Path(out), rerun="a part's job")
    write_json(out, manifest)
    return manifest


def read_manifest(path: str | Path) -> dict:
    """The manifest of the whole corpus per domain (``results/<dataset>/by_domain/manifest
    .json``), after checking its form, its sums, and that every part's files are on disk with
    the tokens counted (sizes only: cheap for thousands of parts)."""
    path = Path(path)
    if not path.is_file():
        raise ByDomainError(
            f"{path}: no by-domain manifest; write it with `snakemake --cores N {path}`"
        )
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise ByDomainError(
            f"{path}: not valid JSON ({err}); delete it and rerun `snakemake --cores N {path}`"
        ) from None
    _check(manifest, path, rerun="the target")
    return manifest


def _check(manifest: dict, path: Path, rerun: str) -> None:
    def bad(what: str) -> ByDomainError:
        return ByDomainError(
            f"{path}: {what}; delete {path} and rerun `snakemake --cores N {path}`"
            + ("" if rerun == "the target" else f" (deleting {rerun}'s counts reruns it)")
        )

    tokenizer, domains = manifest.get("tokenizer"), manifest.get("domains")
    if (
        not isinstance(tokenizer, dict)
        or not isinstance(domains, dict)
        or "dataset" not in manifest
    ):
        raise bad("not a by-domain manifest (it needs dataset, tokenizer and domains)")
    missing = [key for key in TOKENIZER_KEYS if key not in tokenizer]
    if missing:
        raise bad(f"its tokenizer lacks {', '.join(missing)}")
    dtype = tokenizer["dtype"]
    if dtype not in ("uint16", "uint32") or tokenizer["source"] not in TOKENIZER_SOURCES:
        raise bad(f"tokenizer dtype {dtype!r} or source {tokenizer['source']!r} is unknown")
    from .export import MEGATRON_DTYPES

    itemsize = np.dtype(MEGATRON_DTYPES[dtype]).itemsize
    for domain, entry in domains.items():
        parts = entry.get("parts") or []
        if not parts:
            raise bad(f"domain {domain!r} has no parts")
        for key in ("records", "bytes", "tokens"):
            total = sum(part.get(key, 0) for part in parts)
            if entry.get(key) != total:
                raise bad(f"domain {domain!r}: {key} {entry.get(key)} is not its parts' {total}")
        for part in parts:
            if any(key not in part for key in PART_KEYS) or part["records"] < 1:
                raise bad(f"domain {domain!r}: a part lacks {PART_KEYS} or has no records")
            prefix = Path(part["megatron"])
            binary, index = (prefix.with_name(prefix.name + s) for s in MEGATRON_SUFFIXES)
            missing = [str(f) for f in (Path(part["text"]), index) if not f.is_file()]
            size = binary.stat().st_size if binary.is_file() else None
            if missing or size != part["tokens"] * itemsize:
                what = (
                    f"{', '.join(missing)} missing"
                    if missing
                    else f"{binary} holds {size} bytes, not {part['tokens']} tokens x {itemsize}"
                )
                raise ByDomainError(
                    f"{path}: domain {domain!r}: {what}; the part was deleted or changed after "
                    f"its job. Delete {path} and the counts of that part's job (under "
                    f"{path.parent / 'counts'}) and rerun `snakemake --cores N {path}`"
                )
