"""The README of an export folder: each file, its unit, and the command or code that uses it."""

from __future__ import annotations

FILES = {
    "megatron.txt": (
        "token share per part",
        "Megatron-LM / NeMo blend, `weight prefix` pairs: a domain's weight split over its parts "
        "by their tokens; each prefix is a Megatron indexed dataset (`.bin`/`.idx`) of the whole "
        "corpus. Megatron draws fixed-length samples, so the weights are token shares",
    ),
    "megatron_per_split.json": (
        "token share per part",
        "`--per-split-data-args-path`: `train` is the whole corpus (as `megatron.txt`), `valid` "
        "and `test` the workflow's val and test documents of each domain at the domain's weight",
    ),
    "megatron_args.txt": (
        "flags",
        "`pretrain_gpt.py ... $(cat megatron_args.txt)`: the per-split blends, `--train-samples` "
        "for the run's tokens at `--seq-length` (a sample reads `seq_length` new tokens)",
    ),
    "megatron_blend_args.txt": (
        "flags",
        "`pretrain_gpt.py ... $(cat megatron_blend_args.txt)`: the single blend "
        "(`--data-args-path`, which needs `--split`; `100,0,0` trains on every document and "
        "validates on none); prefer `megatron_args.txt`, which validates on the workflow's val split",
    ),
    "olmo_core.yaml": (
        "token share (`target_ratio`)",
        "OLMo-core: `NumpyFSLDatasetConfig.from_src_mix(SourceMixtureDatasetConfig.from_dict("
        "yaml.safe_load(open('olmo_core.yaml'))), tokenizer=..., sequence_length=..., "
        "dtype=...)`; `requested_tokens` is the run's tokens, `max_repetition_ratio` its "
        "max_epochs, `global_batch_size` tokens a step (a multiple of the sequence length). "
        "`paths` are raw token files (the Megatron parts' `.bin`)",
    ),
    "nanotron.yaml": (
        "token share (`dataset_weights`)",
        "Nanotron: `tokens` and `data_stages` of the config (merge them into yours); each "
        "`dataset_folder` is a datatrove folder of `.ds` token streams (links to the token "
        "files; no `.ds.index`, so take positions from EOS), `dataset_max_tokens` each domain's "
        "tokens in the run",
    ),
    "torchtitan_mixture.py": (
        "token share (interleaving weights of packed samples)",
        "torchtitan 0.3: `with_mixture(config)` in your config function (the module's "
        "docstring has the `torchrun` line); reads the token files, no text",
    ),
    "torchtitan_mixture.json": ("token share", "the settings `torchtitan_mixture.py` reads"),
    "mosaic_streams.yaml": (
        "document probability (`proportion`)",
        "MosaicML streaming / LLM Foundry: `StreamingDataset(streams=[Stream(**s) for s in "
        "y['streams'].values()], epoch_size=y['epoch_size'], batch_size=...)`: one epoch is "
        "the run, `epoch_size` its documents. `streams_repeat` is the same run as absolute "
        "`repeat` (each domain's epochs; use it without `epoch_size`). Write the folders "
        "first: `python write_mds.py` (one sample per document)",
    ),
    "litdata.json": (
        "document probability (`weights`); `token_shares` for fixed-block items",
        "LitData: `CombinedStreamingDataset([StreamingDataset(d) for d in "
        "j['input_dirs'].values()], weights=j['weights'], iterate_over_all=False)` over "
        "folders of one item per document (`python write_litdata.py`). It stops when the first "
        "domain runs out (about one pass over the most-read domain): iterate it `epochs` "
        "times. For folders of fixed-length token blocks (LitGPT's `TokensLoader`), use "
        "`token_shares` as the weights",
    ),
    "hf_interleave.json": (
        "document probability",
        "Hugging Face datasets: `interleave_datasets([concatenate_datasets([load_dataset("
        "'json', data_files=j['data_files'][d], split='train')] * j['repeats'][d]) for d in "
        "j['domains']], probabilities=j['probabilities'], stopping_strategy='first_exhausted')`:"
        " each domain read at most `repeats` times (its epochs, rounded up), stopping when one "
        "runs out, at or past the run's tokens. (`all_exhausted` would repeat small domains "
        "without bound; `all_exhausted_without_replacement`, datasets >= 4.2, reads every "
        "document once and lets the mixture drift to the corpus's as domains run out)",
    ),
    "sources.json": (
        "tokens, documents",
        "each domain's parts, token files and folders: what the recipes read",
    ),
    "write_mds.py": ("", "`python write_mds.py`: the MDS folders of `mosaic_streams.yaml`"),
    "write_litdata.py": ("", "`python write_litdata.py`: the LitData folders of `litdata.json`"),
    "shares.json": (
        "all",
        "weights, tokens, documents, mean tokens per document, document probabilities and the "
        "run (tokens, max_epochs, epochs per domain, seq_length, global batch), for scripts",
    ),
}


def render(
    shares: dict,
    tokenizer: dict,
    token_dtype: str,
    names: list[str],
    skipped: dict[str, str],
    out: str,
) -> str:
    run = shares["run"]
    probabilities = shares["document_probabilities"]
    rows = "\n".join(
        f"| {d} | {w:.4f} | {shares['tokens'][d]:,} | "
        + (f"{run['epochs'][d]:.3f} | " if d in run["epochs"] else "— | ")
        + (f"{probabilities[d]:.4f} |" if d in probabilities else "— |")
        if d in shares["tokens"]
        else f"| {d} | 0 | left out (weight 0) | | |"
        for d, w in shares["weights"].items()
    )
    if run["budget"]:
        budget = (
            f"The run: **{run['tokens']:,} tokens** (the budget), no domain read more than "
            f"{run['max_epochs']:g} times; checked against the exported data's exact tokens."
        )
    else:
        budget = (
            f"No budget is set: the run is **one pass, {run['tokens']:,} tokens**, the most "
            "tokens this mixture reaches without repeating any domain (the domain of largest "
            "weight per token runs out first). Set the dataset's `budget:` (or the CLI's "
            "`--tokens`) for a longer run."
        )
    table = "\n".join(
        f"| `{name}` | {FILES[name][0]} | {FILES[name][1]} |" for name in names if name in FILES
    )
    missing = "".join(f"\n- `{name}`: not written, {why}." for name, why in skipped.items())
    return f"""# This mixture for production trainers

Every path points at the **whole corpus** of each domain (its by-domain split, or the data the
domain declares under `data:`), and is absolute. Token ids: `{token_dtype}` on disk (vocabulary
{tokenizer["vocab_size"]}, EOS {tokenizer["eos_id"]}, tokenizer `{tokenizer["path"]}`).

{budget} Sequences of {run["seq_length"]} tokens, {run["global_batch_tokens"]:,} tokens a step.

The weights are shares of **training tokens**. Trainers that draw fixed-length sequences
(Megatron, OLMo-core, Nanotron, torchtitan, LitGPT's `TokensLoader`) take them as they are.
Trainers that draw whole documents (MosaicML streams, LitData items, `interleave_datasets`) get
per-document probabilities `p_i ∝ w_i / mean_tokens_i`, which give the same expected token
shares.

| domain | token share | tokens | epochs in the run | document probability |
|---|---|---|---|---|
{rows}

| file | unit | use |
|---|---|---|
{table}
{missing}

Run the recipes from this folder ({out}); the MDS and LitData folders they write are shared by
every method's export. The workflow's val/test documents were drawn from the same corpus, so
the whole-corpus train blend also holds them: the valid/test loss is not on held-out text.
"""
