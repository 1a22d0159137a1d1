"""Exports of the whole corpus, read by the trainers' own libraries, realise the weights' token
shares and carry the run's budget.

megatron-core and Hugging Face datasets are the project's own dependencies; OLMo-core, LitData,
MosaicML streaming, torchtitan and datatrove (Nanotron's reader) each run in their own virtual
environment (``trainer_envs``), built once per machine."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from by_domain_data import write_by_domain, write_megatron_part
from trainer_envs import run_check

from chameleon_mix.budget import BudgetError
from chameleon_mix.export import (
    ExportError,
    example_probabilities,
    export_mixture,
    write_eval_megatron,
)
from chameleon_mix.mixtures import write_mixture
from chameleon_mix.tokenizer import train_tokenizer

# Documents of very different lengths, so that document and token shares differ by ~10x.
SENTENCES = {"notes": (1, 3), "manuals": (4, 10), "books": (15, 30)}
WEIGHTS = {"notes": 0.5, "manuals": 0.3, "books": 0.2}
# Enough documents that SAMPLES draws exhaust no domain (document shares ~0.83/0.13/0.04).
DOCUMENTS = {"notes": 2400, "manuals": 400, "books": 120}
EVAL_DOCUMENTS = 20
SAMPLES = 2000
SEQ_LENGTH, GLOBAL_BATCH = 64, 256
RUN_PASSES = 2.5  # the budget: 2.5 passes over the most-read domain, within max_epochs 4


def texts(domain, rng, n):
    low, high = SENTENCES[domain]
    words = ["river", "mill", "stone", "light", "north", "field", "bread", "glass", "road"]
    return [
        " ".join(
            f"The {rng.choice(words)} {i} of {domain} stands near the {rng.choice(words)}."
            for i in range(rng.integers(low, high + 1))
        )
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A dataset's by-domain split (2 parts per domain), the Megatron datasets of its val/test
    shards, a mixture under a budget and its export, as the workflow lays them out."""
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    documents = {d: texts(d, rng, n) for d, n in DOCUMENTS.items()}
    tokenizer = root / "tokenizer"
    train_tokenizer([t for ts in documents.values() for t in ts], 300, tokenizer)
    manifest, lengths = write_by_domain(root / "by_domain", documents, tokenizer)
    corpus = json.loads(manifest.read_text())["domains"]
    eval_prefixes = {"valid": {}, "test": {}}
    for domain in DOCUMENTS:
        shards = {}
        for split in ("val", "test"):
            shards[split] = root / "shards" / domain / f"{split}.parquet"
            shards[split].parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({"text": texts(domain, rng, EVAL_DOCUMENTS)}), shards[split])
        prefixes = {s: root / "export" / "megatron_data" / s / domain for s in shards}
        write_eval_megatron(shards, tokenizer, prefixes)
        eval_prefixes["valid"][domain] = str(prefixes["val"])
        eval_prefixes["test"][domain] = str(prefixes["test"])
    one_pass = min(corpus[d]["tokens"] / w for d, w in WEIGHTS.items())
    budget = {"tokens": int(RUN_PASSES * one_pass), "max_epochs": 4}
    mixture = root / "mixtures" / "chameleon.json"
    write_mixture(mixture, "chameleon", WEIGHTS, budget=budget)
    out = root / "export" / "chameleon"
    shares = export_mixture(
        mixture,
        list(DOCUMENTS),
        manifest,
        out,
        seq_length=SEQ_LENGTH,
        global_batch_tokens=GLOBAL_BATCH,
        eval_prefixes=eval_prefixes,
    )
    return {
        "root": root,
        "tokenizer": tokenizer,
        "manifest": manifest,
        "corpus": corpus,
        "lengths": lengths,
        "documents": documents,
        "eval": eval_prefixes,
        "budget": budget,
        "out": out,
        "shares": shares,
    }


def token_shares(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {d: counts[d] / total for d in counts}


def sampling_tolerance(probabilities, lengths, n, sigmas=4.0) -> dict[str, float]:
    """``sigmas`` standard deviations of a domain's token share in ``n`` documents drawn with
    ``probabilities``: the share is the ratio sum(L 1[d=i]) / sum(L), whose variance by the
    delta method is E[L^2 (1[d=i] - s_i)^2] / (n E[L]^2), s_i its expected value."""
    mean = sum(p * lengths[d].mean() for d, p in probabilities.items())
    share = {d: p * lengths[d].mean() / mean for d, p in probabilities.items()}
    second = {d: (lengths[d].astype(float) ** 2).mean() for d in probabilities}
    return {
        i: sigmas
        * np.sqrt(
            sum(
                p * second[d] * ((1.0 if d == i else 0.0) - share[i]) ** 2
                for d, p in probabilities.items()
            )
            / n
        )
        / mean
        for i in probabilities
    }


def assert_shares(realised, tolerance):
    for d, w in WEIGHTS.items():
        assert abs(realised[d] - w) < tolerance[d], (d, realised[d], w, tolerance[d])


def run_tokens(dataset) -> int:
    return dataset["budget"]["tokens"]


def test_document_probabilities_give_the_token_shares():
    mean_tokens = {"short": 400.0, "long": 4000.0}
    probabilities = example_probabilities({"short": 0.5, "long": 0.5}, mean_tokens)
    # 1:1 in tokens is 10:1 in documents.
    assert probabilities == pytest.approx({"short": 10 / 11, "long": 1 / 11})
    expected_tokens = {d: p * mean_tokens[d] for d, p in probabilities.items()}
    assert token_shares(expected_tokens) == pytest.approx({"short": 0.5, "long": 0.5})
    # A domain of weight 0 is left out; one with weight but no tokens is an error.
    assert list(example_probabilities({"short": 1.0, "long": 0.0}, mean_tokens)) == ["short"]
    with pytest.raises(ValueError, match=r"\['long'\] have weight > 0 but no tokens"):
        example_probabilities({"short": 0.5, "long": 0.5}, {"short": 400.0, "long": 0.0})


def test_files_units_and_budget(dataset):
    """Every file, in its trainer's unit, over the whole corpus, with the run's budget."""
    out, corpus, budget = dataset["out"], dataset["corpus"], dataset["budget"]
    names = {p.name for p in out.iterdir()}
    assert names == {
        "megatron.txt",
        "megatron_per_split.json",
        "megatron_args.txt",
        "megatron_blend_args.txt",
        "olmo_core.yaml",
        "nanotron.yaml",
        "nanotron",
        "torchtitan_mixture.py",
        "torchtitan_mixture.json",
        "mosaic_streams.yaml",
        "litdata.json",
        "hf_interleave.json",
        "sources.json",
        "write_mds.py",
        "write_litdata.py",
        "shares.json",
        "README.md",
    }
    shares = dataset["shares"]
    epochs = {d: WEIGHTS[d] * budget["tokens"] / corpus[d]["tokens"] for d in WEIGHTS}
    assert shares["run"]["epochs"] == pytest.approx(epochs)
    assert max(epochs.values()) == pytest.approx(RUN_PASSES, rel=1e-6)
    mean_tokens = {d: corpus[d]["tokens"] / corpus[d]["records"] for d in WEIGHTS}
    assert shares["mean_tokens_per_document"] == pytest.approx(mean_tokens)
    probabilities = shares["document_probabilities"]
    expected = token_shares({d: p * mean_tokens[d] for d, p in probabilities.items()})
    assert expected == pytest.approx(WEIGHTS)
    assert probabilities["notes"] > 0.8  # a naive exporter would have written 0.5

    # Megatron: a domain's weight over its parts by their tokens, every part of the corpus.
    blend = (out / "megatron.txt").read_text().split()
    parts = {p["megatron"]: (d, p["tokens"]) for d in WEIGHTS for p in corpus[d]["parts"]}
    assert set(blend[1::2]) == set(parts) and len(parts) == 2 * len(WEIGHTS)
    for weight, prefix in zip(blend[0::2], blend[1::2]):
        domain, tokens = parts[prefix]
        assert float(weight) == pytest.approx(WEIGHTS[domain] * tokens / corpus[domain]["tokens"])
    args = (out / "megatron_args.txt").read_text().split()
    assert args[:2] == ["--per-split-data-args-path", str(out / "megatron_per_split.json")]
    assert args[args.index("--train-samples") + 1] == str(math.ceil(budget["tokens"] / SEQ_LENGTH))
    blend_args = (out / "megatron_blend_args.txt").read_text().split()
    assert blend_args[blend_args.index("--split") + 1] == "100,0,0"
    assert blend_args[blend_args.index("--data-args-path") + 1] == str(out / "megatron.txt")

    # OLMo-core: the budget and max_epochs, every part's token file.
    olmo = yaml.safe_load((out / "olmo_core.yaml").read_text())
    assert olmo["requested_tokens"] == budget["tokens"]
    assert olmo["global_batch_size"] == GLOBAL_BATCH
    for source in olmo["source_list"]["sources"]:
        d = source["source_name"]
        assert source["max_repetition_ratio"] == 4
        assert source["target_ratio"] == pytest.approx(WEIGHTS[d])
        assert source["paths"] == [p["megatron"] + ".bin" for p in corpus[d]["parts"]]

    # MosaicML: proportions, the run as epoch_size documents, repeats as the epochs.
    mosaic = yaml.safe_load((out / "mosaic_streams.yaml").read_text())
    assert {d: s["proportion"] for d, s in mosaic["streams"].items()} == pytest.approx(
        probabilities
    )
    assert {d: s["repeat"] for d, s in mosaic["streams_repeat"].items()} == pytest.approx(epochs)
    documents = sum(epochs[d] * corpus[d]["records"] for d in WEIGHTS)
    assert mosaic["epoch_size"] == pytest.approx(documents, abs=2)

    litdata = json.loads((out / "litdata.json").read_text())
    assert dict(zip(litdata["domains"], litdata["weights"])) == pytest.approx(probabilities)
    assert dict(zip(litdata["domains"], litdata["token_shares"])) == pytest.approx(WEIGHTS)
    assert litdata["iterate_over_all"] is False and litdata["epochs"] == math.ceil(RUN_PASSES)
    hf = json.loads((out / "hf_interleave.json").read_text())
    assert hf["repeats"] == {d: math.ceil(e) for d, e in epochs.items()}
    assert hf["stopping_strategy"] == "first_exhausted"

    nanoset = yaml.safe_load((out / "nanotron.yaml").read_text())
    stage = nanoset["data_stages"][0]["data"]["dataset"]
    assert stage["dataset_weights"] == pytest.approx(list(WEIGHTS.values()))
    assert stage["dataset_max_tokens"] == [
        math.ceil(w * budget["tokens"]) for w in WEIGHTS.values()
    ]
    assert nanoset["tokens"]["train_steps"] == math.ceil(budget["tokens"] / GLOBAL_BATCH)
    torchtitan = json.loads((out / "torchtitan_mixture.json").read_text())
    assert torchtitan["tokens"] == budget["tokens"] and torchtitan["weights"] == WEIGHTS

    readme = (out / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in names - {"README.md", "nanotron"})
    assert f"{budget['tokens']:,} tokens** (the budget)" in readme


def test_without_a_budget_the_run_is_one_pass(dataset, tmp_path):
    mixture = tmp_path / "natural.json"
    write_mixture(mixture, "human", WEIGHTS)
    out = tmp_path / "export"
    shares = export_mixture(
        mixture,
        list(WEIGHTS),
        dataset["manifest"],
        out,
        seq_length=SEQ_LENGTH,
        global_batch_tokens=GLOBAL_BATCH,
    )
    corpus = dataset["corpus"]
    one_pass = int(min(corpus[d]["tokens"] / w for d, w in WEIGHTS.items()))
    assert shares["run"]["tokens"] == one_pass and not shares["run"]["budget"]
    assert max(shares["run"]["epochs"].values()) == pytest.approx(1.0, abs=1e-4)
    olmo = yaml.safe_load((out / "olmo_core.yaml").read_text())
    assert olmo["requested_tokens"] == one_pass
    assert {s["max_repetition_ratio"] for s in olmo["source_list"]["sources"]} == {1.0}
    assert f"one pass, {one_pass:,} tokens" in (out / "README.md").read_text()
    # Without val/test data, Megatron gets the single blend only.
    assert not (out / "megatron_per_split.json").exists()
    # A budget from the caller (the config) applies where the mixture file has none.
    shares = export_mixture(
        mixture,
        list(WEIGHTS),
        dataset["manifest"],
        tmp_path / "budgeted",
        seq_length=SEQ_LENGTH,
        global_batch_tokens=GLOBAL_BATCH,
        budget={"tokens": 2 * one_pass, "max_epochs": 3},
    )
    assert shares["run"]["tokens"] == 2 * one_pass and shares["run"]["max_epochs"] == 3


def test_hf_interleave_realises_the_token_shares(dataset):
    from datasets import concatenate_datasets, interleave_datasets, load_dataset

    spec = json.loads((dataset["out"] / "hf_interleave.json").read_text())
    # As the README writes it: each domain's whole text, `repeats` times, first_exhausted.
    streams = [
        concatenate_datasets(
            [load_dataset("json", data_files=spec["data_files"][d], split="train")]
            * spec["repeats"][d]
        ).map(lambda _, d=d: {"domain": d})
        for d in spec["domains"]
    ]
    mixed = interleave_datasets(
        streams,
        probabilities=spec["probabilities"],
        seed=0,
        stopping_strategy=spec["stopping_strategy"],
    )
    assert len(mixed) >= SAMPLES
    length_of = {
        text: length
        for d in spec["domains"]
        for text, length in zip(dataset["documents"][d], dataset["lengths"][d])
    }
    tokens = dict.fromkeys(spec["domains"], 0)
    for example in mixed.select(range(SAMPLES)):
        tokens[example["domain"]] += length_of[example["text"]]
    probabilities = dict(zip(spec["domains"], spec["probabilities"]))
    assert_shares(
        token_shares(tokens), sampling_tolerance(probabilities, dataset["lengths"], SAMPLES)
    )
    # Every domain's tokens at least once per run, none past its repeats.
    total = sum(length_of[t] for t in mixed["text"])
    assert total >= run_tokens(dataset)


def megatron_tokenizer(dataset):
    from megatron.core.tokenizers import MegatronTokenizer

    return MegatronTokenizer.from_pretrained(
        tokenizer_path=str(dataset["tokenizer"]), metadata_path={"library": "huggingface"}
    )


def test_megatron_reads_the_parts_back(dataset):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    for domain, entry in dataset["corpus"].items():
        lengths = [
            len(IndexedDataset(p["megatron"])[i])
            for p in entry["parts"]
            for i in range(p["records"])
        ]
        assert lengths == list(dataset["lengths"][domain])
    for split in ("valid", "test"):
        for prefix in dataset["eval"][split].values():
            assert len(IndexedDataset(prefix)) == EVAL_DOCUMENTS


def build_megatron(dataset, sizes, **blends):
    """Megatron's GPT datasets for ``sizes`` (train, valid, test samples) from the blends, on
    a one-process group (Megatron builds its indices on rank 0)."""
    import torch.distributed as dist
    from megatron.core.datasets.blended_megatron_dataset_builder import (
        BlendedMegatronDatasetBuilder,
    )
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig

    config = GPTDatasetConfig(
        random_seed=1,
        sequence_length=SEQ_LENGTH,
        tokenizer=megatron_tokenizer(dataset),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        path_to_cache=str(dataset["root"] / "megatron_cache"),
        **blends,
    )
    group = dataset["root"] / f"megatron_group_{len(list(dataset['root'].glob('megatron_group*')))}"
    dist.init_process_group("gloo", init_method=f"file://{group}", rank=0, world_size=1)
    try:
        return config, BlendedMegatronDatasetBuilder(
            GPTDataset, sizes, lambda: True, config
        ).build()
    finally:
        dist.destroy_process_group()


def megatron_shares(blend, dataset_index, samples) -> dict[str, float]:
    """Token shares by domain of the first ``samples`` samples of a blend (every sample is
    SEQ_LENGTH + 1 tokens, so sample shares are token shares); a part's domain is its folder,
    a val/test dataset's its name."""
    counts = np.bincount(dataset_index[:samples], minlength=len(blend))
    by_domain = {}
    for prefix, count in zip(blend, counts):
        domain = (
            Path(prefix).parent.name if Path(prefix).name.startswith("part-") else Path(prefix).name
        )
        by_domain[domain] = by_domain.get(domain, 0) + int(count)
    return token_shares(by_domain)


def test_megatron_blend_realises_the_token_shares(dataset):
    """`--data-args-path megatron.txt --split 100,0,0`, read as Megatron-LM reads them."""
    from megatron.core.datasets.utils import get_blend_from_list

    args = (dataset["out"] / "megatron_blend_args.txt").read_text().split()
    flags = dict(zip(args[0::2], args[1::2]))
    data_path = Path(flags["--data-args-path"]).read_text().split()  # Megatron-LM's reading
    samples = int(flags["--train-samples"])
    config, (train, _, _) = build_megatron(
        dataset, [samples, 0, 0], blend=get_blend_from_list(data_path), split=flags["--split"]
    )
    assert len(train) >= samples
    realised = megatron_shares(config.blend[0], train.dataset_index, samples)
    assert_shares(realised, {d: 2 / samples + 1e-9 for d in WEIGHTS})


def test_eval_data_takes_the_tokenizer_as_the_parts_do(dataset, tmp_path):
    """The val/test Megatron data are tokenized as the by-domain parts are: a bare
    tokenizer.json (a user's `by_domain.tokenizer`, no tokenizer_config.json beside it) gives
    the ids of its directory, each document ending with the EOS."""
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    from chameleon_mix.tokenizer import load_tokenizer

    bare = tmp_path / "bare" / "tokenizer.json"
    bare.parent.mkdir()
    shutil.copy(dataset["tokenizer"] / "tokenizer.json", bare)
    domain = next(iter(WEIGHTS))
    shards = {s: dataset["root"] / "shards" / domain / f"{s}.parquet" for s in ("val", "test")}
    prefixes = {s: tmp_path / s / domain for s in shards}
    counts = write_eval_megatron(shards, bare, prefixes)
    hf = load_tokenizer(dataset["tokenizer"])
    for split, shard in shards.items():
        texts = pq.read_table(shard)["text"].to_pylist()
        read = IndexedDataset(str(prefixes[split]))
        assert counts[split]["documents"] == len(read) == len(texts)
        for i, text in enumerate(texts):
            ids = hf(text, add_special_tokens=False)["input_ids"] + [hf.eos_token_id]
            assert read[i].tolist() == ids


def test_megatron_per_split_json_loads(dataset):
    """`--per-split-data-args-path`: Megatron-LM's `get_blend_and_blend_per_split` reads the
    JSON's train/valid/test lists (a string is split on whitespace) into blend_per_split."""
    from megatron.core.datasets.utils import get_blend_from_list

    args = (dataset["out"] / "megatron_args.txt").read_text().split()
    flags = dict(zip(args[0::2], args[1::2]))
    per_split = json.loads(Path(flags["--per-split-data-args-path"]).read_text())
    for split in ("train", "valid", "test"):
        if isinstance(per_split[split], str):
            per_split[split] = per_split[split].split()
    blend_per_split = [get_blend_from_list(per_split[s]) for s in ("train", "valid", "test")]
    samples = int(flags["--train-samples"])
    config, (train, valid, test) = build_megatron(
        dataset, [samples, 200, 200], blend_per_split=blend_per_split
    )
    assert len(train) >= samples and len(valid) >= 200 and len(test) >= 200
    assert_shares(
        megatron_shares(config.blend_per_split[0][0], train.dataset_index, samples),
        {d: 2 / samples + 1e-9 for d in WEIGHTS},
    )
    # The valid and test blends are the val/test documents, at the domains' weights.
    assert set(config.blend_per_split[1][0]) == set(dataset["eval"]["valid"].values())
    assert_shares(
        megatron_shares(config.blend_per_split[1][0], valid.dataset_index, 200),
        {d: 2 / 200 + 1e-9 for d in WEIGHTS},
    )


@pytest.mark.slow
def test_olmo_core_builds_the_source_mixture(dataset, tmp_path):
    """OLMo-core's SourceMixtureDatasetConfig builds the mixture for the budget and its
    NumpyFSLDatasetConfig the dataset over every part's token file."""
    result = run_check(
        "olmo_core", "olmo_core_check.py", dataset["out"], SEQ_LENGTH, tmp_path / "olmo_work"
    )
    budget = dataset["budget"]
    selected, population = result["selected_tokens"], result["population"]
    assert result["requested_tokens"] == budget["tokens"]
    assert result["instances"] * SEQ_LENGTH >= budget["tokens"]
    # Hamilton rounding moves each path's allocation by at most a sequence or two.
    paths = {d: 2 * math.ceil(RUN_PASSES) for d in WEIGHTS}
    total = sum(selected.values())
    assert_shares(token_shares(selected), {d: 2 * paths[d] * SEQ_LENGTH / total for d in WEIGHTS})
    for d in WEIGHTS:
        assert selected[d] <= result["max_repetition_ratio"][d] * population[d]
    assert result["largest_id"] < 300


@pytest.mark.slow
def test_litdata_combined_dataset_realises_the_token_shares(dataset):
    """The README's recipe: `python write_litdata.py`, then CombinedStreamingDataset with the
    document weights and iterate_over_all=False."""
    out = dataset["out"]
    run_check("litdata", out / "write_litdata.py", cwd=out)
    result = run_check("litdata", "litdata_check.py", out, SAMPLES)
    assert result["items"] == SAMPLES
    probabilities = dataset["shares"]["document_probabilities"]
    assert_shares(
        token_shares(result["tokens"]),
        sampling_tolerance(probabilities, dataset["lengths"], SAMPLES),
    )


@pytest.mark.slow
def test_mosaic_streaming_dataset_reads_the_run(dataset):
    """The README's recipe: `python write_mds.py`, then StreamingDataset over the streams with
    epoch_size: one epoch is the run, each domain read its epochs' worth of documents."""
    out = dataset["out"]
    run_check("streaming", out / "write_mds.py", cwd=out)
    result = run_check("streaming", "mosaic_check.py", out)
    corpus, epochs = dataset["corpus"], dataset["shares"]["run"]["epochs"]
    spec = yaml.safe_load((out / "mosaic_streams.yaml").read_text())
    assert result["epoch_size"] == spec["epoch_size"] == sum(result["samples"].values())
    for d in WEIGHTS:
        assert result["samples"][d] == result["choose"][d]
        # streaming's own repeat, derived from proportion and epoch_size: the domain's epochs.
        assert result["repeat"][d] == pytest.approx(epochs[d], abs=1.5 / corpus[d]["records"])
        assert result["repeat"][d] <= 4
    probabilities = dataset["shares"]["document_probabilities"]
    assert_shares(
        token_shares(result["tokens"]),
        sampling_tolerance(probabilities, dataset["lengths"], result["epoch_size"]),
    )


@pytest.mark.slow
def test_torchtitan_dataloader_realises_the_token_shares(dataset):
    """torchtitan_mixture.py's dataloader, built as torchtitan's trainer builds one: packed
    samples from torchtitan's InterleavedDataset at the token shares."""
    batches, batch_size = 100, 8
    result = run_check(
        "torchtitan", "torchtitan_check.py", dataset["out"], SEQ_LENGTH, batches, batch_size
    )
    n = batches * batch_size
    assert_shares(
        token_shares(result["tokens"]),
        {d: 4 * math.sqrt(w * (1 - w) / n) for d, w in WEIGHTS.items()},
    )
    assert result["steps"] == math.ceil(run_tokens(dataset) / (8 * SEQ_LENGTH))


@pytest.mark.slow
def test_nanotron_folders_read_by_datatrove(dataset):
    """Each Nanoset folder read by datatrove's DatatroveFolderDataset (Nanoset's reader): all
    of the domain's tokens, in windows of seq_len + 1."""
    result = run_check("datatrove", "nanotron_check.py", dataset["out"], SEQ_LENGTH)
    for d, entry in dataset["corpus"].items():
        parts = [p["tokens"] for p in entry["parts"]]
        assert result[d]["tokens"] == entry["tokens"]
        assert result[d]["windows"] == sum(t // (SEQ_LENGTH + 1) for t in parts)
        assert result[d]["first_window_matches"]


# --- data: per domain -----------------------------------------------------------------------


def manifest_without(dataset, tmp_path, *domains) -> Path:
    """The manifest with ``domains`` left out (their data is declared instead)."""
    manifest = json.loads(dataset["manifest"].read_text())
    for d in domains:
        manifest["domains"].pop(d)
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def export(dataset, tmp_path, mixture=None, **kwargs):
    if mixture is None:
        mixture = tmp_path / "mixture.json"
        write_mixture(mixture, "human", WEIGHTS)
    kwargs.setdefault("manifest", dataset["manifest"])
    return export_mixture(
        mixture,
        list(WEIGHTS),
        out_dir=tmp_path / "out",
        seq_length=SEQ_LENGTH,
        global_batch_tokens=GLOBAL_BATCH,
        **kwargs,
    )


def test_declared_data_is_exported_as_it_is(dataset, tmp_path):
    """A domain with `data:` is read where the user holds it: Megatron prefixes for the blend
    and as token files, an MDS folder for MosaicML."""
    books = dataset["corpus"]["books"]
    mds = tmp_path / "books_mds"
    mds.mkdir()
    (mds / "index.json").write_text("{}")
    data = {"books": {"megatron": [p["megatron"] for p in books["parts"]], "mosaic": str(mds)}}
    shares = export(
        dataset, tmp_path, manifest=manifest_without(dataset, tmp_path, "books"), data=data
    )
    out = tmp_path / "out"
    assert shares["tokens"]["books"] == books["tokens"]
    assert shares["documents"]["books"] == books["records"]
    olmo = yaml.safe_load((out / "olmo_core.yaml").read_text())["source_list"]["sources"]
    assert olmo[2]["paths"] == [p["megatron"] + ".bin" for p in books["parts"]]
    mosaic = yaml.safe_load((out / "mosaic_streams.yaml").read_text())
    assert mosaic["streams"]["books"]["local"] == str(mds.resolve())
    # No text for books: the HF export, which reads text, is not written, and says why.
    assert not (out / "hf_interleave.json").exists()
    assert (
        "`hf_interleave.json`: not written, domain(s) ['books'] have no text files"
        in (out / "README.md").read_text()
    )
    sources = json.loads((out / "sources.json").read_text())
    assert sources["domains"]["books"]["mosaic"] is None  # the user's folder: nothing to write


def test_declared_token_files_only(dataset, tmp_path):
    """OLMo-core token files alone: the token-stream trainers, none that need documents."""
    books = dataset["corpus"]["books"]
    data = {"books": {"olmo_core": [p["megatron"] + ".bin" for p in books["parts"]]}}
    shares = export(
        dataset, tmp_path, manifest=manifest_without(dataset, tmp_path, "books"), data=data
    )
    out = tmp_path / "out"
    assert shares["tokens"]["books"] == books["tokens"]
    written = {p.name for p in out.iterdir()}
    assert {"olmo_core.yaml", "nanotron.yaml", "torchtitan_mixture.py"} <= written
    assert not {"megatron.txt", "mosaic_streams.yaml", "litdata.json"} & written


def bad(dataset, tmp_path, match, **kwargs):
    out = tmp_path / "out"
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        export(dataset, tmp_path, **kwargs)
    assert not out.exists()


def test_bad_data_entries_write_nothing(dataset, tmp_path):
    books = dataset["corpus"]["books"]
    manifest = manifest_without(dataset, tmp_path, "books")
    prefixes = [p["megatron"] for p in books["parts"]]
    # A path that does not exist: named with the domain and the key.
    missing = {"books": {"megatron": [*prefixes, str(tmp_path / "gone")]}}
    bad(
        dataset,
        tmp_path,
        rf"domain 'books': data.megatron\[2\]: {tmp_path / 'gone'}.idx does not exist",
        manifest=manifest,
        data=missing,
    )
    bad(
        dataset,
        tmp_path,
        r"domain 'books': data.olmo_core\[0\]: .*nothing.bin does not exist",
        manifest=manifest,
        data={"books": {"olmo_core": [str(tmp_path / "nothing.bin")]}},
    )
    # Another tokenizer's data: Megatron data of another dtype (a vocabulary over 65535) ...
    wide = tmp_path / "wide"
    write_megatron_part(wide, [np.arange(10, dtype=np.int32)], np.int32)
    bad(
        dataset,
        tmp_path,
        r"domain 'books': data.megatron\[0\]: .*wide.idx holds int32 tokens; the export's "
        r"tokenizer .* writes uint16",
        manifest=manifest,
        data={"books": {"megatron": [str(wide)]}},
    )
    # ... or ids beyond the vocabulary, in Megatron data or OLMo-core token files.
    big = tmp_path / "big"
    write_megatron_part(big, [np.array([5, 7, 40000, 0], dtype=np.uint16)], np.uint16)
    bad(
        dataset,
        tmp_path,
        r"domain 'books': data.megatron\[0\]: .*big.bin holds token id 40000, beyond the "
        r"export tokenizer's vocabulary of 300",
        manifest=manifest,
        data={"books": {"megatron": [str(big)]}},
    )
    bad(
        dataset,
        tmp_path,
        r"data.olmo_core\[0\]: .*big.bin holds token id 40000",
        manifest=manifest,
        data={"books": {"olmo_core": [str(big) + ".bin"]}},
    )
    # Parts that are all empty.
    empty = tmp_path / "empty"
    write_megatron_part(empty, [], np.uint16)
    bad(
        dataset,
        tmp_path,
        r"domain 'books': its `data:` holds no tokens \(every part is empty\)",
        manifest=manifest,
        data={"books": {"megatron": [str(empty)]}},
    )
    # A domain neither split nor declared.
    bad(dataset, tmp_path, r"\['books'\] are neither in the by-domain manifest", manifest=manifest)


def test_bad_manifests_write_nothing(dataset, tmp_path):
    manifest = json.loads(dataset["manifest"].read_text())
    manifest["domains"]["manuals"].update(parts=[], records=0, bytes=0, tokens=0)
    emptied = tmp_path / "emptied.json"
    emptied.write_text(json.dumps(manifest))
    bad(dataset, tmp_path, r"emptied.json: domain 'manuals' has no parts", manifest=emptied)
    bad(dataset, tmp_path, "none.json: no by-domain manifest", manifest=tmp_path / "none.json")
    (tmp_path / "broken.json").write_text('{"tokenizer": {}}')
    bad(dataset, tmp_path, "not a by-domain manifest", manifest=tmp_path / "broken.json")


def test_budgets_the_data_cannot_cover_write_nothing(dataset, tmp_path):
    corpus = dataset["corpus"]
    total = sum(corpus[d]["tokens"] for d in WEIGHTS)
    # More than max_epochs passes over the whole corpus: check_budget's message.
    with pytest.raises(BudgetError, match="need more data than the corpus's"):
        export(dataset, tmp_path, budget={"tokens": 5 * total, "max_epochs": 4})
    # Enough in all, but one domain read past max_epochs at these weights: named, with the
    # largest budget and smallest max_epochs that would work.
    largest = min(4 * corpus[d]["tokens"] / w for d, w in WEIGHTS.items())
    worst = min(WEIGHTS, key=lambda d: corpus[d]["tokens"] / WEIGHTS[d])
    mixture = tmp_path / "over.json"
    write_mixture(
        mixture, "human", WEIGHTS, budget={"tokens": int(largest * 1.05), "max_epochs": 4}
    )
    with pytest.raises(BudgetError) as err:
        export(dataset, tmp_path, mixture=mixture)
    message = str(err.value)
    assert f"domain {worst!r} has {corpus[worst]['tokens']:,} tokens" in message
    assert f"lower the budget's tokens to at most {int(largest):,}" in message
    assert "raise max_epochs to at least 4.2" in message
    assert not (tmp_path / "out").exists()
    # The mixture's own budget is what its weights were made for: it wins over the caller's.
    with pytest.raises(BudgetError):
        export(dataset, tmp_path, mixture=mixture, budget={"tokens": 1000, "max_epochs": 4})


def test_bad_mixtures_write_nothing(dataset, tmp_path):
    partial = tmp_path / "partial.json"
    write_mixture(partial, "human", {"notes": 0.5, "manuals": 0.5})
    bad(dataset, tmp_path, r"missing \['books'\]", mixture=partial)
    bad(
        dataset, tmp_path, "does not exist; run the rule that makes it", mixture=tmp_path / "x.json"
    )
    mixture = tmp_path / "m.json"
    write_mixture(mixture, "human", WEIGHTS)
    with pytest.raises(ExportError, match="not a whole number of sequences"):
        export_mixture(
            mixture,
            list(WEIGHTS),
            dataset["manifest"],
            tmp_path / "out",
            seq_length=60,
            global_batch_tokens=GLOBAL_BATCH,
        )


@pytest.mark.slow
def test_export_rule(dataset, tmp_path):
    """The DAG from a fresh checkout, for pretraining and finetuning, on by-domain manifests
    as their target writes them (the jobs themselves run in test_workflow's end-to-end run)."""
    from test_workflow import (
        planned_jobs,
        small_config,
        small_finetune_dataset,
        write_config,
    )

    names = ["python_code", "licenses"]
    config = small_config(
        names, {"small-ft": small_finetune_dataset(methods=["uniform", "chameleon_pt"])}
    )
    config["proxies"]["tiny"]["domains"] = names
    write_config(tmp_path, config)
    sources = dict(zip(names, SENTENCES))
    # The by-domain split of each dataset, as its target writes it (its rule: by_domain.smk).
    for ds in ("small", "small-ft"):
        manifest = json.loads(dataset["manifest"].read_text())
        manifest["domains"] = {n: manifest["domains"][s] for n, s in sources.items()}
        path = tmp_path / "results" / ds / "by_domain" / "manifest.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(manifest))
    jobs = planned_jobs(tmp_path, "results/small-ft/export/chameleon_pt")
    planned = {rule for rule, _ in jobs}
    assert {"export", "megatron_eval_data", "mixture"} <= planned
    assert ("mixture", "dataset=small-ft, method=chameleon_pt") in jobs
    assert "train_base" in planned  # the pretrained model: the small dataset's uniform base
