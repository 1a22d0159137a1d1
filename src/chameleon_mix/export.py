"""A mixture as the inputs of production trainers, over the **whole corpus** of each domain:
Megatron-LM / NeMo, OLMo-core, MosaicML streaming, LitData, Hugging Face ``datasets``,
Nanotron and torchtitan.

Where the data is. A domain's data is either its by-domain split (``results/<ds>/by_domain/
manifest.json``: parts, each a Megatron indexed dataset whose ``.bin`` is the raw token stream,
with exact tokens and records) or what the user declared under the domain's ``data:`` (Megatron
prefixes, OLMo-core token files, MDS or LitData folders). Every token file of an export is in
one tokenizer's ids, the manifest's; a ``data:`` entry is checked against it.

The units. The weights are shares of **training tokens**. Trainers that draw fixed-length
sequences (Megatron's blend, OLMo-core's source mixture, Nanotron's Nanoset, torchtitan's packed
sources, LitGPT's ``TokensLoader``) take them as they are; trainers that draw whole documents
(MosaicML streams, LitData items, ``datasets.interleave_datasets``) get the per-document
probability that gives the same token shares, ``p_i ∝ w_i / mean_tokens_i``, with
``mean_tokens_i`` the domain's tokens per document (EOS included) over its whole data.

The budget. A run of ``tokens`` tokens reads ``w_i · tokens`` of domain i, whose data holds
``n_i``: ``epochs_i = w_i · tokens / n_i``. The budget (the mixture file's ``budget``, else the
caller's) is checked against the exported data's exact tokens (:func:`~chameleon_mix.budget.
check_mixture_budget`), and each trainer's file carries it in its own terms. Without a budget
the run is one pass: the most tokens the mixture reaches without repeating any domain,
``min_i n_i / w_i``.

Domains of weight 0 are left out of every file: Megatron refuses a zero weight, and
``interleave_datasets`` never exhausts a dataset it never draws from.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .by_domain import read_manifest
from .io import atomic_path

# Megatron's indexed dataset stores no uint32 (its DType codes stop at uint16): larger
# vocabularies are written as int32, which holds every id below 2**31 in the same 4 bytes, so
# the .bin reads the same as a uint32 stream (OLMo-core, datatrove, torchtitan's source).
MEGATRON_DTYPES = {"uint16": np.uint16, "uint32": np.int32}
# megatron.core.datasets.indexed_dataset.DType, the .idx's dtype code.
_IDX_DTYPES = {
    1: np.uint8,
    2: np.int8,
    3: np.int16,
    4: np.int32,
    5: np.int64,
    6: np.float64,
    7: np.float32,
    8: np.uint16,
}
_IDX_HEADER = b"MMIDIDX\x00\x00"
SAMPLED_WINDOWS, WINDOW_TOKENS = 64, 4096  # the sampled check of a token file's ids
DATA_KEYS = ("megatron", "olmo_core", "mosaic", "litdata")
FILES_DIR = Path(__file__).with_name("export_files")  # the recipes copied into each export


class ExportError(ValueError):
    """Input an export cannot be written from: the message names it and what to do."""


# --- reading the data ------------------------------------------------------------------------


def read_megatron_index(prefix: str | Path) -> dict:
    """The header and counts of a Megatron indexed dataset's ``<prefix>.idx`` (the layout
    megatron-core's ``IndexedDatasetBuilder.finalize`` writes): ``dtype``, ``sequences``,
    ``documents`` and ``tokens`` (the sum of the sequence lengths)."""
    path = Path(f"{prefix}.idx")
    with path.open("rb") as f:
        header = f.read(len(_IDX_HEADER))
        if header != _IDX_HEADER:
            raise ExportError(f"{path} is not a Megatron index (bad header {header!r})")
        (version,) = struct.unpack("<Q", f.read(8))
        (code,) = struct.unpack("<B", f.read(1))
        sequences, document_indices = struct.unpack("<QQ", f.read(16))
        lengths = np.fromfile(f, dtype=np.int32, count=sequences)
    if version != 1 or code not in _IDX_DTYPES or len(lengths) != sequences:
        raise ExportError(f"{path}: a damaged Megatron index (version {version}, dtype {code})")
    return {
        "dtype": np.dtype(_IDX_DTYPES[code]),
        "sequences": int(sequences),
        "documents": max(int(document_indices) - 1, 0),
        "tokens": int(lengths.sum(dtype=np.int64)),
    }


@dataclass
class DomainData:
    """One domain's data as the export sees it."""

    name: str
    tokens: int
    documents: int | None  # None: not known (token files without document boundaries)
    parts: list[dict] = field(default_factory=list)  # Megatron parts: {megatron, tokens, documents}
    token_files: list[str] = field(default_factory=list)  # raw token streams
    text: list[str] = field(default_factory=list)  # text files (jsonl[.zst] / parquet)
    mosaic: str | None = None  # a user's MDS folder
    litdata: str | None = None  # a user's LitData folder
    declared: bool = False  # from the domain's `data:`

    @property
    def mean_tokens(self) -> float | None:
        return self.tokens / self.documents if self.documents else None


def _exists(path: str, domain: str, key: str, directory: bool = False) -> Path:
    p = Path(path)
    if not (p.is_dir() if directory else p.is_file()):
        raise ExportError(
            f"domain {domain!r}: data.{key}: {path} does not exist"
            + (" (or is not a folder)" if directory else "")
            + "; fix the path in the domain's `data:` or remove the entry"
        )
    return p


def _check_ids(path: Path, dtype: np.dtype, vocab_size: int, domain: str, key: str) -> None:
    """Token ids from ``SAMPLED_WINDOWS`` windows spread over the file: none may reach the
    vocabulary size of the export's tokenizer."""
    size = path.stat().st_size
    if size % dtype.itemsize:
        raise ExportError(
            f"domain {domain!r}: data.{key}: {path} holds {size} bytes, not whole "
            f"{dtype.name} tokens; these are not token ids of the export's tokenizer"
        )
    tokens = np.memmap(path, dtype=dtype, mode="r") if size else np.zeros(0, dtype)
    starts = np.linspace(0, max(len(tokens) - WINDOW_TOKENS, 0), SAMPLED_WINDOWS).astype(np.int64)
    largest = max(
        (int(tokens[s : s + WINDOW_TOKENS].max()) for s in np.unique(starts) if len(tokens)),
        default=0,
    )
    if largest >= vocab_size:
        raise ExportError(
            f"domain {domain!r}: data.{key}: {path} holds token id {largest}, beyond the "
            f"export tokenizer's vocabulary of {vocab_size}: these are another tokenizer's "
            "tokens; tokenize the domain with the manifest's tokenizer"
        )


def declared_domain(name: str, data: dict, tokenizer: dict) -> DomainData:
    """A domain's ``data:`` entry, checked: every path exists, every token file holds the
    manifest tokenizer's ids (Megatron dtype and a sampled check of the ids), and the data is
    not empty."""
    token_dtype = np.dtype(MEGATRON_DTYPES[tokenizer["dtype"]])
    vocab = int(tokenizer["vocab_size"])
    entry = DomainData(name, tokens=0, documents=None, declared=True)
    documents = 0
    for i, prefix in enumerate(data.get("megatron") or []):
        key = f"megatron[{i}]"
        for suffix in (".idx", ".bin"):
            _exists(f"{prefix}{suffix}", name, key)
        index = read_megatron_index(prefix)
        if index["dtype"] != token_dtype:
            raise ExportError(
                f"domain {name!r}: data.{key}: {prefix}.idx holds {index['dtype'].name} tokens; "
                f"the export's tokenizer ({tokenizer['path']}, vocabulary {vocab}) writes "
                f"{token_dtype.name}: another tokenizer's data, or preprocess it again with the "
                "manifest's tokenizer"
            )
        _check_ids(Path(f"{prefix}.bin"), token_dtype, vocab, name, key)
        if index["tokens"]:
            entry.parts.append(
                {
                    "megatron": str(Path(prefix).resolve()),
                    "tokens": index["tokens"],
                    "documents": index["documents"],
                }
            )
        entry.tokens += index["tokens"]
        documents += index["documents"]
    if data.get("megatron"):
        entry.documents = documents
        entry.token_files = [f"{p['megatron']}.bin" for p in entry.parts]
    if data.get("olmo_core"):
        olmo_tokens = 0
        files = []
        for i, path in enumerate(data["olmo_core"]):
            p = _exists(path, name, f"olmo_core[{i}]")
            _check_ids(p, token_dtype, vocab, name, f"olmo_core[{i}]")
            olmo_tokens += p.stat().st_size // token_dtype.itemsize
            files.append(str(p.resolve()))
        if data.get("megatron") and olmo_tokens != entry.tokens:
            raise ExportError(
                f"domain {name!r}: data.olmo_core holds {olmo_tokens:,} tokens, data.megatron "
                f"{entry.tokens:,}: one domain, one data; give the same tokens in both"
            )
        entry.tokens, entry.token_files = olmo_tokens, files
    for key in ("mosaic", "litdata"):
        if data.get(key):
            folder = _exists(data[key], name, key, directory=True)
            _exists(str(folder / "index.json"), name, f"{key} (its index.json)")
            setattr(entry, key, str(folder.resolve()))
    if data.get("tokens") is not None:
        if entry.token_files and data["tokens"] != entry.tokens:
            raise ExportError(
                f"domain {name!r}: data.tokens is {data['tokens']:,}, but its token files hold "
                f"{entry.tokens:,}; leave data.tokens out (it is counted) or fix it"
            )
        entry.tokens = int(data["tokens"])
    if data.get("documents") is not None:
        entry.documents = int(data["documents"])
    if (data.get("megatron") or data.get("olmo_core")) and entry.tokens <= 0:
        raise ExportError(
            f"domain {name!r}: its `data:` holds no tokens (every part is empty); point it at "
            "the domain's data or drop the domain from the mixture's dataset"
        )
    if not any(data.get(key) for key in DATA_KEYS):
        raise ExportError(
            f"domain {name!r}: `data:` names no data ({', '.join(DATA_KEYS)}); give at least one"
        )
    if not entry.token_files and data.get("tokens") is None:
        raise ExportError(
            f"domain {name!r}: `data:` has no token files (megatron, olmo_core) to count its "
            "tokens; give data.tokens, the exact tokens of its data (EOS included)"
        )
    if entry.tokens <= 0:
        raise ExportError(
            f"domain {name!r}: its `data:` holds no tokens (every part is empty); point it at "
            "the domain's data or drop the domain from the mixture's dataset"
        )
    return entry


def split_domain(name: str, entry: dict, manifest_path: str | Path) -> DomainData:
    """A domain of the by-domain manifest: its parts with records, checked on disk."""
    parts = [p for p in entry["parts"] if int(p["records"]) > 0]
    tokens = sum(int(p["tokens"]) for p in parts)
    if not parts or tokens <= 0:
        raise ExportError(
            f"domain {name!r}: the by-domain manifest {manifest_path} lists no records for it "
            "(its parts are empty): the source holds none of its documents; check its `value` "
            "against the source's domain field, or give the domain `data:`"
        )
    for part in parts:
        for suffix in (".bin", ".idx"):
            if not Path(f"{part['megatron']}{suffix}").is_file():
                raise ExportError(
                    f"domain {name!r}: {part['megatron']}{suffix}, a part the by-domain "
                    f"manifest {manifest_path} lists, does not exist; rerun the by-domain split"
                )
    return DomainData(
        name,
        tokens=tokens,
        documents=sum(int(p["records"]) for p in parts),
        parts=[
            {"megatron": p["megatron"], "tokens": int(p["tokens"]), "documents": int(p["records"])}
            for p in parts
        ],
        token_files=[f"{p['megatron']}.bin" for p in parts],
        text=[p["text"] for p in parts if p.get("text")],
    )


def load_domains(
    domains: list[str], manifest_path: str | Path, data: dict[str, dict] | None = None
) -> tuple[dict, dict[str, DomainData]]:
    """The tokenizer and each domain's data: its ``data:`` entry where ``data`` has one, else
    its by-domain split."""
    data = data or {}
    manifest = read_manifest(manifest_path)
    tokenizer = manifest["tokenizer"]
    split = manifest["domains"]
    missing = [d for d in domains if d not in data and d not in split]
    if missing:
        raise ExportError(
            f"domain(s) {missing} are neither in the by-domain manifest {manifest_path} (it has "
            f"{', '.join(split) or 'none'}) nor have `data:`; rerun the by-domain split"
        )
    return tokenizer, {
        d: declared_domain(d, data[d], tokenizer)
        if d in data
        else split_domain(d, split[d], manifest_path)
        for d in domains
    }


# --- units ------------------------------------------------------------------------------------


def example_probabilities(
    weights: dict[str, float], mean_tokens: dict[str, float]
) -> dict[str, float]:
    """Per-document sampling probabilities whose expected token shares are ``weights``."""
    empty = [d for d, w in weights.items() if w > 0 and not (mean_tokens[d] or 0) > 0]
    if empty:
        raise ValueError(
            f"domain(s) {empty} have weight > 0 but no tokens in their data; "
            "give them data or weight 0"
        )
    raw = {d: w / mean_tokens[d] for d, w in weights.items() if w > 0}
    total = sum(raw.values())
    return {d: p / total for d, p in raw.items()}


def run_plan(weights: dict[str, float], data: dict[str, DomainData], budget: dict | None) -> dict:
    """The run the files describe: its tokens, ``max_epochs`` and each weighted domain's
    epochs, checked against the data (:class:`~chameleon_mix.budget.BudgetError`)."""
    from .budget import check_mixture_budget

    weighted = [d for d, w in weights.items() if w > 0]
    corpus = {d: data[d].tokens for d in weighted}
    if budget and budget.get("tokens"):
        tokens, max_epochs = int(budget["tokens"]), float(budget["max_epochs"])
        epochs = check_mixture_budget(
            {d: weights[d] for d in weighted},
            corpus,
            tokens,
            max_epochs,
            "the budget against the exported data",
        )
        return {"tokens": tokens, "max_epochs": max_epochs, "epochs": epochs, "budget": True}
    tokens = int(min(corpus[d] / weights[d] for d in weighted))
    epochs = {d: weights[d] * tokens / corpus[d] for d in weighted}
    return {"tokens": tokens, "max_epochs": 1.0, "epochs": epochs, "budget": False}


# --- the files --------------------------------------------------------------------------------


def _megatron_blend(weights: dict[str, float], parts: dict[str, list[dict]]) -> list[str]:
    """Megatron's flat ``[weight, prefix, ...]``: a domain's weight split over its parts by
    their tokens."""
    blend = []
    for d, w in weights.items():
        total = sum(p["tokens"] for p in parts[d])
        for p in parts[d]:
            blend += [repr(w * p["tokens"] / total), p["megatron"]]
    return blend


def consumer_files(
    weights: dict[str, float],
    data: dict[str, DomainData],
    tokenizer: dict,
    plan: dict,
    out_dir: Path,
    data_root: Path,
    seq_length: int,
    global_batch_tokens: int,
    eval_prefixes: dict[str, dict[str, str]] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """File name -> text of each trainer's files, and file name -> why it is not written (a
    trainer some domain has no data for). Paths are absolute."""
    domains = [d for d, w in weights.items() if w > 0]  # the mixture's order
    w = {d: weights[d] for d in domains}
    run, epochs = plan["tokens"], plan["epochs"]
    dtype = np.dtype(MEGATRON_DTYPES[tokenizer["dtype"]])
    files: dict[str, str] = {}
    skipped: dict[str, str] = {}

    def without(test) -> list[str]:
        return [d for d in domains if not test(data[d])]

    # Megatron-LM / NeMo: blends of Megatron parts, one sample = seq_length tokens read.
    train_samples = math.ceil(run / seq_length)
    no_megatron = without(lambda e: e.parts)
    if no_megatron:
        skipped["megatron.txt"] = f"domain(s) {no_megatron} have no Megatron data"
    else:
        blend = _megatron_blend(w, {d: data[d].parts for d in domains})
        files["megatron.txt"] = " ".join(blend) + "\n"
        common = f"--train-samples {train_samples} --seq-length {seq_length}"
        files["megatron_blend_args.txt"] = (
            f"--data-args-path {out_dir / 'megatron.txt'} --split 100,0,0 {common}\n"
        )
        if eval_prefixes:
            per_split = {"train": blend}
            for split in ("valid", "test"):
                per_split[split] = [
                    x for d in domains for x in (repr(w[d]), eval_prefixes[split][d])
                ]
            files["megatron_per_split.json"] = json.dumps(per_split, indent=2) + "\n"
            files["megatron_args.txt"] = (
                f"--per-split-data-args-path {out_dir / 'megatron_per_split.json'} {common}\n"
            )
    # Token-stream trainers: OLMo-core, Nanotron, torchtitan.
    no_tokens = without(lambda e: e.token_files)
    if no_tokens:
        why = f"domain(s) {no_tokens} have no token files (megatron or olmo_core data)"
        for name in ("olmo_core.yaml", "nanotron.yaml", "torchtitan_mixture.py"):
            skipped[name] = why
    else:
        files["olmo_core.yaml"] = yaml.safe_dump(
            {
                "source_list": {
                    "sources": [
                        {
                            "source_name": d,
                            "target_ratio": w[d],
                            "paths": data[d].token_files,
                            "max_repetition_ratio": plan["max_epochs"],
                        }
                        for d in domains
                    ]
                },
                "requested_tokens": run,
                "global_batch_size": global_batch_tokens,
            },
            sort_keys=False,
        )
        files["nanotron.yaml"] = yaml.safe_dump(
            {
                "tokens": {
                    "sequence_length": seq_length,
                    "train_steps": math.ceil(run / global_batch_tokens),
                },
                "data_stages": [
                    {
                        "name": "mixture",
                        "start_training_step": 1,
                        "data": {
                            "dataset": {
                                "dataset_folder": [str(out_dir / "nanotron" / d) for d in domains],
                                "dataset_weights": [w[d] for d in domains],
                                "dataset_max_tokens": [math.ceil(w[d] * run) for d in domains],
                                "token_size_in_bytes": dtype.itemsize,
                            }
                        },
                    }
                ],
            },
            sort_keys=False,
        )
        files["torchtitan_mixture.py"] = (FILES_DIR / "torchtitan_mixture.py").read_text()
        files["torchtitan_mixture.json"] = (
            json.dumps(
                {
                    "sources": {d: data[d].token_files for d in domains},
                    "weights": w,
                    "dtype": dtype.name,
                    "eos_id": int(tokenizer["eos_id"]),
                    "tokens": run,
                },
                indent=2,
            )
            + "\n"
        )
    # Document trainers: MosaicML streaming, LitData, HF datasets.
    no_documents = without(lambda e: e.documents)
    probabilities = (
        example_probabilities(w, {d: data[d].mean_tokens for d in domains})
        if not no_documents
        else {}
    )
    for name, key in (("mosaic_streams.yaml", "mosaic"), ("litdata.json", "litdata")):
        folders = {d: getattr(data[d], key) or str(data_root / f"{key}_data" / d) for d in domains}
        unwritable = [d for d in domains if not getattr(data[d], key) and not data[d].parts]
        if no_documents or unwritable:
            skipped[name] = (
                f"domain(s) {no_documents} have no document count (give data.documents)"
                if no_documents
                else f"domain(s) {unwritable} have neither a {key} folder nor Megatron data "
                "to write one from"
            )
            continue
        if key == "mosaic":
            choose = {d: round(epochs[d] * data[d].documents) for d in domains}
            files[name] = yaml.safe_dump(
                {
                    "epoch_size": sum(choose.values()),
                    "streams": {
                        d: {"local": folders[d], "proportion": probabilities[d]} for d in domains
                    },
                    "streams_repeat": {
                        d: {"local": folders[d], "repeat": epochs[d]} for d in domains
                    },
                },
                sort_keys=False,
            )
        else:
            one_pass = min(data[d].tokens / w[d] for d in domains)
            files[name] = (
                json.dumps(
                    {
                        "domains": domains,
                        "input_dirs": folders,
                        "weights": [probabilities[d] for d in domains],
                        "token_shares": [w[d] for d in domains],
                        "iterate_over_all": False,
                        "epochs": math.ceil(run / one_pass - 1e-9),
                    },
                    indent=2,
                )
                + "\n"
            )
    no_text = without(lambda e: e.text)
    if no_documents or no_text:
        skipped["hf_interleave.json"] = (
            f"domain(s) {no_text or no_documents} have no text files"
            if no_text
            else f"domain(s) {no_documents} have no document count"
        )
    else:
        files["hf_interleave.json"] = (
            json.dumps(
                {
                    "domains": domains,
                    "data_files": {d: data[d].text for d in domains},
                    "probabilities": [probabilities[d] for d in domains],
                    "repeats": {d: max(1, math.ceil(epochs[d] - 1e-9)) for d in domains},
                    "stopping_strategy": "first_exhausted",
                },
                indent=2,
            )
            + "\n"
        )
    # The recipes that write MDS and LitData folders from the Megatron parts.
    files["sources.json"] = (
        json.dumps(
            {
                "tokenizer": {k: tokenizer[k] for k in ("path", "dtype", "eos_id", "vocab_size")},
                "token_dtype": dtype.name,
                "domains": {
                    d: {
                        "tokens": data[d].tokens,
                        "documents": data[d].documents,
                        "parts": data[d].parts,
                        "token_files": data[d].token_files,
                        "text": data[d].text,
                        "mosaic": None if data[d].mosaic else str(data_root / "mosaic_data" / d),
                        "litdata": None if data[d].litdata else str(data_root / "litdata_data" / d),
                    }
                    for d in domains
                },
            },
            indent=2,
        )
        + "\n"
    )
    for recipe in ("write_mds.py", "write_litdata.py"):
        files[recipe] = (FILES_DIR / recipe).read_text()
    shares = {
        "weights": weights,
        "tokens": {d: data[d].tokens for d in domains},
        "documents": {d: data[d].documents for d in domains},
        "mean_tokens_per_document": {d: data[d].mean_tokens for d in domains},
        "document_probabilities": probabilities,
        "run": {
            "tokens": run,
            "budget": plan["budget"],
            "max_epochs": plan["max_epochs"],
            "epochs": epochs,
            "seq_length": seq_length,
            "global_batch_tokens": global_batch_tokens,
        },
    }
    files["shares.json"] = json.dumps(shares, indent=2) + "\n"
    files["README.md"] = _readme(shares, tokenizer, dtype, files, skipped, out_dir)
    return files, skipped


def _readme(
    shares: dict, tokenizer: dict, dtype: np.dtype, files: dict, skipped: dict, out: Path
) -> str:
    from .export_files import readme

    return readme.render(shares, tokenizer, dtype.name, sorted(files), skipped, str(out))


def _nanotron_folders(tmp: Path, data: dict[str, DomainData], domains: list[str]) -> None:
    """Nanotron's Nanoset folders: datatrove's ``*.ds`` token streams, as links to the
    domain's token files (datatrove reads ``.ds`` files as raw ids of token_size_in_bytes)."""
    for d in domains:
        folder = tmp / "nanotron" / d
        folder.mkdir(parents=True)
        for i, path in enumerate(data[d].token_files):
            (folder / f"part-{i:05d}.ds").symlink_to(path)


def check_export(
    mixture: str | Path,
    domains: list[str],
    manifest: str | Path,
    *,
    seq_length: int,
    global_batch_tokens: int,
    data: dict[str, dict] | None = None,
    budget: dict | None = None,
) -> tuple[dict, dict, dict[str, DomainData], dict]:
    """Everything an export is written from, checked before anything is written: the
    mixture's weights, the tokenizer, each weighted domain's data and the run (raises
    :class:`ExportError`, :class:`~chameleon_mix.budget.BudgetError` or ``ValueError``)."""
    from .mixtures import check_weights

    mixture = Path(mixture)
    if not mixture.is_file():
        raise FileNotFoundError(f"mixture {mixture} does not exist; run the rule that makes it")
    content = json.loads(mixture.read_text())
    weights = check_weights(content.get("weights", {}), domains, f"mixture {mixture}")
    if seq_length < 1 or global_batch_tokens < 1 or global_batch_tokens % seq_length:
        raise ExportError(
            f"global batch of {global_batch_tokens} tokens is not a whole number of sequences "
            f"of {seq_length} tokens (OLMo-core and Nanotron count batches in sequences); give "
            "a multiple of the sequence length"
        )
    weighted = [d for d in domains if weights[d] > 0]
    declared = {d: e for d, e in (data or {}).items() if d in weighted}
    tokenizer, found = load_domains(weighted, manifest, declared)
    plan = run_plan({d: weights[d] for d in weighted}, found, content.get("budget") or budget)
    return weights, tokenizer, found, plan


def export_mixture(
    mixture: str | Path,
    domains: list[str],
    manifest: str | Path,
    out_dir: str | Path,
    *,
    seq_length: int,
    global_batch_tokens: int,
    data: dict[str, dict] | None = None,
    budget: dict | None = None,
    eval_prefixes: dict[str, dict[str, str]] | None = None,
    data_root: str | Path | None = None,
) -> dict:
    """Write each trainer's files for the mixture file ``mixture`` into ``out_dir`` (whole, or
    not at all) and return what ``shares.json`` holds.

    ``manifest`` is the by-domain manifest, ``data`` the domains' ``data:`` entries (domain ->
    entry), ``budget`` the run's ``{tokens, max_epochs}`` where the mixture file has none,
    ``eval_prefixes`` the Megatron datasets of the workflow's val/test splits
    (``{"valid": {domain: prefix}, "test": {...}}``, for Megatron's per-split blends), and
    ``data_root`` the folder of the MDS and LitData copies the recipes write (default: the
    parent of ``out_dir``)."""
    weights, tokenizer, found, plan = check_export(
        mixture,
        domains,
        manifest,
        seq_length=seq_length,
        global_batch_tokens=global_batch_tokens,
        data=data,
        budget=budget,
    )
    weighted = list(found)
    out_dir = Path(out_dir).resolve()
    data_root = Path(data_root).resolve() if data_root else out_dir.parent
    if eval_prefixes:
        missing = [d for s in ("valid", "test") for d in weighted if d not in eval_prefixes[s]]
        if missing:
            raise ExportError(f"no val/test Megatron data for domain(s) {sorted(set(missing))}")
        eval_prefixes = {
            s: {d: str(Path(p).resolve()) for d, p in prefixes.items()}
            for s, prefixes in eval_prefixes.items()
        }
    files, _ = consumer_files(
        weights,
        found,
        tokenizer,
        plan,
        out_dir,
        data_root,
        seq_length,
        global_batch_tokens,
        eval_prefixes,
    )
    with atomic_path(out_dir, directory=True) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text)
        if "nanotron.yaml" in files:
            _nanotron_folders(tmp, found, weighted)
    return json.loads(files["shares.json"])


# --- Megatron datasets of the workflow's splits ---------------------------------------------


def write_megatron_dataset(token_dir: str | Path, prefix: str | Path, split: str = "train") -> dict:
    """A domain's ``split`` of its token files as a Megatron indexed dataset ``<prefix>.bin`` /
    ``.idx``, one document (its EOS included) per sequence, written by megatron-core's own
    builder."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    from .tokens import read_offsets, read_stats, read_tokens, verify_token_file

    stats = read_stats(token_dir)
    verify_token_file(token_dir, split)
    tokens, offsets = read_tokens(token_dir, split), read_offsets(token_dir, split)
    if len(offsets) < 2:
        raise ValueError(
            f"{token_dir}: the {split} split has no documents; a Megatron dataset needs at "
            f"least one (resample the domain with more {split} documents)"
        )
    dtype = MEGATRON_DTYPES[stats["dtype"]]
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with (
        atomic_path(prefix.with_name(prefix.name + ".bin")) as bin_path,
        atomic_path(prefix.with_name(prefix.name + ".idx")) as idx_path,
    ):
        builder = IndexedDatasetBuilder(str(bin_path), dtype=dtype)
        for start, end in zip(offsets[:-1], offsets[1:]):
            builder.add_document(tokens[start:end], lengths=[int(end - start)])
        builder.finalize(str(idx_path))
    return {"documents": len(offsets) - 1, "tokens": int(offsets[-1])}


def write_eval_megatron(
    shards: dict[str, str | Path], tokenizer: str | Path, prefixes: dict[str, str | Path]
) -> dict:
    """A domain's val and test shards (split -> parquet, column ``text``), each as a Megatron
    dataset at ``prefixes[split]``, tokenized as the by-domain parts are with ``tokenizer``
    (the manifest's: a tokenizer directory or its ``tokenizer.json``): the valid/test blends of
    Megatron's per-split data, in the ids of its train blend."""
    import pyarrow.parquet as pq

    from .by_domain import load_tokenizer, write_megatron_texts

    tokenizer = load_tokenizer(tokenizer)

    def texts(shard):
        for batch in pq.ParquetFile(shard).iter_batches(columns=["text"]):
            yield from batch.column(0).to_pylist()

    return {
        split: write_megatron_texts(texts(shards[split]), prefixes[split], tokenizer)
        for split in shards
    }
