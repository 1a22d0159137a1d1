"""A mixture as the inputs of production trainers: Megatron-LM / NeMo, OLMo-core, MosaicML
streaming, LitData, Hugging Face ``datasets`` and Nanotron.

The project's weights are shares of **training tokens**: the trainer cuts fixed-length windows
from each domain's token stream, so a domain of weight ``w_i`` supplies ``w_i`` of the tokens.
Consumers that sample fixed-length sequences (Megatron's blend, OLMo-core's source mixture,
Nanotron's Nanoset) take the weights as they are. Consumers that sample whole examples
(MosaicML streams, LitData items, ``datasets.interleave_datasets``), one example a document,
need the document probability that gives the same token shares:

    p_i ∝ w_i / mean_tokens_i,   renormalised,

where ``mean_tokens_i`` is the mean tokens per document of domain i's train split (its trailing
EOS included), measured when the split was tokenized (``stats.json`` of the token files). Then
the expected tokens of domain i per example are ``p_i · mean_tokens_i ∝ w_i``.

Domains of weight 0 are left out of every file: Megatron refuses a zero weight, and
``interleave_datasets`` never exhausts a dataset it never draws from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from .io import atomic_path
from .tokens import read_offsets, read_stats, read_tokens, verify_token_file

# Megatron's indexed dataset stores no uint32 (its DType codes stop at uint16): larger
# vocabularies are written as int32, which holds every id below 2**31.
MEGATRON_DTYPES = {"uint16": np.uint16, "uint32": np.int32}


def example_probabilities(
    weights: dict[str, float], mean_tokens: dict[str, float]
) -> dict[str, float]:
    """Per-document sampling probabilities whose expected token shares are ``weights``."""
    empty = [d for d, w in weights.items() if w > 0 and not mean_tokens[d] > 0]
    if empty:
        raise ValueError(
            f"domain(s) {empty} have weight > 0 but no tokens in their train split; "
            "resample them (shards) or give them weight 0"
        )
    raw = {d: w / mean_tokens[d] for d, w in weights.items() if w > 0}
    total = sum(raw.values())
    return {d: p / total for d, p in raw.items()}


def write_megatron_dataset(token_dir: str | Path, prefix: str | Path) -> dict:
    """A domain's train split as a Megatron indexed dataset ``<prefix>.bin`` / ``.idx``,
    one document (its EOS included) per sequence, written by megatron-core's own builder."""
    from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    stats = read_stats(token_dir)
    verify_token_file(token_dir, "train")
    tokens, offsets = read_tokens(token_dir, "train"), read_offsets(token_dir, "train")
    if len(offsets) < 2:
        raise ValueError(
            f"{token_dir}: the train split has no documents; a Megatron dataset needs at least "
            "one (resample the domain with more train documents)"
        )
    dtype = MEGATRON_DTYPES[stats["dtype"]]
    prefix = Path(prefix)
    with (
        atomic_path(prefix.with_name(prefix.name + ".bin")) as bin_path,
        atomic_path(prefix.with_name(prefix.name + ".idx")) as idx_path,
    ):
        builder = IndexedDatasetBuilder(str(bin_path), dtype=dtype)
        for start, end in zip(offsets[:-1], offsets[1:]):
            builder.add_document(tokens[start:end], lengths=[int(end - start)])
        builder.finalize(str(idx_path))
    return {"documents": len(offsets) - 1, "tokens": int(offsets[-1])}


def _absolute(path: str | Path) -> str:
    return str(Path(path).resolve())


def data_dir(data_root: str | Path, consumer: str) -> Path:
    """Where a consumer's own copy of the domains' train data lives, one folder or prefix per
    domain: ``<data_root>/<consumer>_data/<domain>``, shared by every method's files."""
    return Path(data_root) / f"{consumer}_data"


def consumer_files(
    weights: dict[str, float],
    stats: dict[str, dict],
    token_dirs: dict[str, str | Path],
    train_shards: dict[str, str | Path],
    data_root: str | Path,
    global_batch_tokens: int,
) -> dict[str, str]:
    """File name -> text of each consumer's mixture. Paths are absolute, so a trainer started
    anywhere finds the data."""
    mean_tokens = {d: stats[d]["splits"]["train"]["mean_tokens_per_document"] for d in weights}
    probabilities = example_probabilities(weights, mean_tokens)
    domains = list(probabilities)  # the domains of weight > 0, in the mixture's order
    tokens = {d: stats[d]["splits"]["train"]["tokens"] for d in domains}
    token_bytes = np.dtype(stats[domains[0]]["dtype"]).itemsize
    # One pass over the data: the most tokens the mixture reaches without repeating a domain.
    one_pass = int(min(tokens[d] / weights[d] for d in domains))
    megatron = " ".join(
        f"{weights[d]!r} {prefix}"
        for d, prefix in zip(domains, _folders(data_root, "megatron", domains))
    )
    olmo_core = _olmo_core(weights, domains, token_dirs, one_pass, global_batch_tokens)
    mosaic = {
        "streams": {
            d: {"local": local, "proportion": probabilities[d]}
            for d, local in zip(domains, _folders(data_root, "mosaic", domains))
        }
    }
    hf = {
        "domains": domains,
        "data_files": {d: _absolute(train_shards[d]) for d in domains},
        "probabilities": [probabilities[d] for d in domains],
    }
    litdata = {
        "domains": domains,
        "input_dirs": dict(zip(domains, _folders(data_root, "litdata", domains))),
        "weights": [probabilities[d] for d in domains],
    }
    nanotron = _nanotron(weights, domains, _folders(data_root, "nanotron", domains), token_bytes)
    shares = {
        "weights": weights,
        "mean_tokens_per_document": mean_tokens,
        "document_probabilities": probabilities,
    }
    return {
        "megatron.txt": megatron + "\n",
        "olmo_core.yaml": yaml.safe_dump(olmo_core, sort_keys=False),
        "mosaic_streams.yaml": yaml.safe_dump(mosaic, sort_keys=False),
        "hf_interleave.json": json.dumps(hf, indent=2) + "\n",
        "litdata.json": json.dumps(litdata, indent=2) + "\n",
        "nanotron.yaml": yaml.safe_dump(nanotron, sort_keys=False),
        "shares.json": json.dumps(shares, indent=2) + "\n",
        "README.md": _readme(shares, stats[domains[0]], one_pass),
    }


def _folders(data_root: str | Path, consumer: str, domains: list[str]) -> list[str]:
    """The consumer's data folder (or prefix) of each domain, absolute."""
    return [_absolute(data_dir(data_root, consumer) / d) for d in domains]


def _olmo_core(
    weights: dict[str, float],
    domains: list[str],
    token_dirs: dict[str, str | Path],
    one_pass: int,
    global_batch_tokens: int,
) -> dict:
    """OLMo-core's source mixture over the raw token files: token shares, ``one_pass`` tokens."""
    return {
        "source_list": {
            "sources": [
                {
                    "source_name": d,
                    "target_ratio": weights[d],
                    "paths": [_absolute(Path(token_dirs[d]) / "train.bin")],
                    "max_repetition_ratio": 1.0,
                }
                for d in domains
            ]
        },
        "requested_tokens": one_pass,
        "global_batch_size": global_batch_tokens,
    }


def _nanotron(
    weights: dict[str, float], domains: list[str], folders: list[str], token_bytes: int
) -> dict:
    """Nanotron's data stages: one stage of token shares over the domains' Nanoset folders."""
    return {
        "data_stages": [
            {
                "name": "mixture",
                "start_training_step": 1,
                "data": {
                    "dataset": {
                        "dataset_folder": folders,
                        "dataset_weights": [weights[d] for d in domains],
                        "token_size_in_bytes": token_bytes,
                    }
                },
            }
        ]
    }


def _readme(shares: dict, stats: dict, one_pass: int) -> str:
    probabilities = shares["document_probabilities"]
    rows = "\n".join(
        f"| {d} | {w:.4f} | {shares['mean_tokens_per_document'][d]:.1f} | "
        + (f"{probabilities[d]:.4f} |" if d in probabilities else "left out (weight 0) |")
        for d, w in shares["weights"].items()
    )
    return f"""# This mixture for other trainers

Weights are shares of **training tokens**. Trainers that sample fixed-length sequences take them
as they are; trainers that sample whole documents get per-document probabilities
`p_i ∝ w_i / mean_tokens_i` (mean tokens per train document, EOS included), which give the same
expected token shares. Token ids: `{stats["dtype"]}`, EOS `{stats["eos_id"]}`, vocabulary
{stats["vocab_size"]}, tokenizer `{stats["tokenizer"]}`. Paths are absolute, as written.

| domain | token share (weight) | mean tokens / document | document probability |
|---|---|---|---|
{rows}

| file | unit | use |
|---|---|---|
| `megatron.txt` | token share (Megatron blends fixed-length samples) | Megatron-LM / NeMo: `--data-path $(cat megatron.txt)` or `--data-args-path megatron.txt`; each prefix is a Megatron indexed dataset (`.bin`/`.idx`) of the domain's train documents, written with megatron-core's `IndexedDatasetBuilder` |
| `olmo_core.yaml` | token share (`target_ratio`) | OLMo-core: `SourceMixtureDatasetConfig.from_dict(yaml)` as the `source_mixture_config` of a `NumpyFSLDatasetConfig` (dtype `{stats["dtype"]}`); the paths are the raw token files. `requested_tokens` is one pass without repeating a domain ({one_pass:,}); `global_batch_size` (tokens) is the workflow's schedule: set both to your run's |
| `mosaic_streams.yaml` | document probability (`proportion` per sample) | MosaicML streaming / LLM Foundry: `streams:` of the dataset, `Stream(local=..., proportion=...)`; write each domain's train documents to its `local` folder with `MDSWriter`, one sample per document. For shards of concatenated fixed-length token samples use the token shares instead |
| `hf_interleave.json` | document probability | `datasets.interleave_datasets([load_dataset("parquet", data_files=f, split="train") for f in data_files.values()], probabilities=..., stopping_strategy="all_exhausted")`; the data files are the train shards (column `text`) |
| `litdata.json` | document probability (per item) | LitData: `CombinedStreamingDataset([StreamingDataset(d) for d in input_dirs.values()], weights=...)`; write each domain's train documents to its input dir with LitData's writer (`litdata.optimize`, or its `BinaryWriter` as below), one item per document (token array) |
| `nanotron.yaml` | token share (Nanoset samples fixed-length sequences) | Nanotron: the `data_stages` of the config; each `dataset_folder` is the domain's train documents tokenized with datatrove's `DocumentTokenizer` (Nanoset's input format) |
| `shares.json` | all three | the weights, mean tokens per document and document probabilities, for scripts |

The Megatron datasets, and the folders named for MosaicML, LitData and Nanotron, are shared by
every method's files (`<consumer>_data/<domain>` beside the methods' folders). One document a
sample or item, from the token files (`chameleon_mix.tokens`), e.g. for LitData:

```python
import numpy as np
from litdata.streaming.writer import BinaryWriter  # the writer of litdata.optimize
from chameleon_mix.tokens import read_offsets, read_tokens

tokens, offsets = read_tokens(token_dir, "train"), read_offsets(token_dir, "train")
writer = BinaryWriter(input_dir, chunk_bytes="64MB")  # input_dir: litdata.json's, per domain
for i, (start, end) in enumerate(zip(offsets[:-1], offsets[1:])):
    writer[i] = np.array(tokens[start:end])
writer.done()
writer.merge()
```

and for MosaicML, `MDSWriter(out=local, columns={{"tokens": "ndarray:{stats["dtype"]}"}})` with
one `write({{"tokens": document}})` per document.
"""


def export_mixture(
    mixture: str | Path,
    domains: list[str],
    token_dirs: dict[str, str | Path],
    train_shards: dict[str, str | Path],
    data_root: str | Path,
    out_dir: str | Path,
    global_batch_tokens: int,
) -> dict:
    """Write each consumer's file for the mixture file ``mixture`` into ``out_dir`` (whole, or
    not at all); return what ``shares.json`` holds: the weights, each domain's mean tokens per
    train document and the per-document probabilities.

    ``token_dirs`` and ``train_shards`` are each domain's token files and train shard;
    ``data_root`` holds the consumers' own copies of the data (``data_dir``): the Megatron
    datasets that ``write_megatron_dataset`` writes, and the folders the README says how to fill.
    """
    from .mixtures import read_mixture

    weights = read_mixture(mixture, domains)
    stats = {d: read_stats(token_dirs[d]) for d in domains}
    tokenizers = {stats[d]["tokenizer_sha256"] for d in domains}
    if len(tokenizers) > 1:
        by_domain = {d: stats[d]["tokenizer"] for d in domains}
        raise ValueError(
            f"the domains' token files were written with different tokenizers ({by_domain}); "
            "one trainer reads one vocabulary: tokenize every domain with the dataset's tokenizer"
        )
    files = consumer_files(weights, stats, token_dirs, train_shards, data_root, global_batch_tokens)
    with atomic_path(out_dir, directory=True) as tmp:
        for name, text in files.items():
            (tmp / name).write_text(text)
    return json.loads(files["shares.json"])
