"""Exported mixtures read by the consumers' own libraries realise the weights' token shares."""

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from chameleon_mix.export import example_probabilities, export_mixture, write_megatron_dataset
from chameleon_mix.mixtures import write_mixture
from chameleon_mix.tokenizer import train_tokenizer
from chameleon_mix.tokens import read_offsets, read_tokens, write_token_files

# Documents of very different lengths, so that document and token shares differ by ~10x.
SENTENCES = {"notes": (1, 3), "manuals": (4, 10), "books": (15, 30)}
WEIGHTS = {"notes": 0.5, "manuals": 0.3, "books": 0.2}
# Enough documents that SAMPLES draws exhaust no domain (document shares ~0.83/0.13/0.04).
DOCUMENTS = {"notes": 2400, "manuals": 400, "books": 120}
SAMPLES = 2000


def texts(domain, rng):
    low, high = SENTENCES[domain]
    words = ["river", "mill", "stone", "light", "north", "field", "bread", "glass", "road"]
    return [
        " ".join(
            f"The {rng.choice(words)} {i} of {domain} stands near the {rng.choice(words)}."
            for i in range(rng.integers(low, high + 1))
        )
        for _ in range(DOCUMENTS[domain])
    ]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """A dataset's train shards, tokenizer, token files and Megatron datasets, as the workflow
    lays them out under results/<dataset>/."""
    root = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    documents = {d: texts(d, rng) for d in SENTENCES}
    tokenizer = root / "tokenizer"
    train_tokenizer([t for ts in documents.values() for t in ts], 300, tokenizer)
    shards, token_dirs = {}, {}
    for domain, docs in documents.items():
        shards[domain] = root / "shards" / domain / "train.parquet"
        shards[domain].parent.mkdir(parents=True)
        pq.write_table(pa.table({"text": docs}), shards[domain])
        token_dirs[domain] = root / "tokens" / domain
        write_token_files({"train": shards[domain]}, tokenizer, token_dirs[domain])
        write_megatron_dataset(token_dirs[domain], root / "export" / "megatron_data" / domain)
    mixture = root / "mixtures" / "chameleon.json"
    write_mixture(mixture, "chameleon", WEIGHTS)
    out = root / "export" / "chameleon"
    shares = export_mixture(mixture, list(SENTENCES), token_dirs, shards, root / "export", out, 256)
    return {
        "root": root,
        "tokenizer": tokenizer,
        "shards": shards,
        "tokens": token_dirs,
        "out": out,
        "shares": shares,
    }


def token_shares(counts: dict[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {d: counts[d] / total for d in counts}


def document_lengths(dataset) -> dict[str, np.ndarray]:
    """Tokens per train document (EOS included), as the token files measured them."""
    return {d: np.diff(read_offsets(t, "train")) for d, t in dataset["tokens"].items()}


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


def test_files_and_units(dataset):
    out = dataset["out"]
    names = {p.name for p in out.iterdir()}
    assert names == {
        "megatron.txt",
        "olmo_core.yaml",
        "mosaic_streams.yaml",
        "hf_interleave.json",
        "litdata.json",
        "nanotron.yaml",
        "shares.json",
        "README.md",
    }
    probabilities = dataset["shares"]["document_probabilities"]
    lengths = document_lengths(dataset)
    mean_tokens = {d: lengths[d].mean() for d in lengths}
    assert dataset["shares"]["mean_tokens_per_document"] == pytest.approx(mean_tokens)
    # Per-document probabilities: the expected token shares are the weights.
    expected = token_shares({d: p * mean_tokens[d] for d, p in probabilities.items()})
    assert expected == pytest.approx(WEIGHTS)
    assert probabilities["notes"] > 0.8  # a naive exporter would have written 0.5
    mosaic = yaml.safe_load((out / "mosaic_streams.yaml").read_text())["streams"]
    assert {d: s["proportion"] for d, s in mosaic.items()} == pytest.approx(probabilities)
    litdata = json.loads((out / "litdata.json").read_text())
    assert dict(zip(litdata["domains"], litdata["weights"])) == pytest.approx(probabilities)
    # Fixed-length-sequence consumers: the token shares themselves.
    nanoset = yaml.safe_load((out / "nanotron.yaml").read_text())["data_stages"][0]["data"]
    assert nanoset["dataset"]["dataset_weights"] == pytest.approx(list(WEIGHTS.values()))
    readme = (out / "README.md").read_text()
    assert all(name in readme for name in names - {"README.md"})


def test_hf_interleave_realises_the_token_shares(dataset):
    from datasets import interleave_datasets, load_dataset

    spec = json.loads((dataset["out"] / "hf_interleave.json").read_text())
    streams = [
        load_dataset("parquet", data_files=spec["data_files"][d], split="train").map(
            lambda _, d=d: {"domain": d}
        )
        for d in spec["domains"]
    ]
    mixed = interleave_datasets(
        streams, probabilities=spec["probabilities"], seed=0, stopping_strategy="all_exhausted"
    )
    n = SAMPLES
    assert len(mixed) >= n
    length_of = {
        text: length
        for d in spec["domains"]
        for text, length in zip(
            pq.read_table(dataset["shards"][d])["text"].to_pylist(), document_lengths(dataset)[d]
        )
    }
    tokens = dict.fromkeys(spec["domains"], 0)
    for example in mixed.select(range(n)):
        tokens[example["domain"]] += length_of[example["text"]]
    realised = token_shares(tokens)
    tolerance = sampling_tolerance(
        dict(zip(spec["domains"], spec["probabilities"])), document_lengths(dataset), n
    )
    for d, w in WEIGHTS.items():
        assert abs(realised[d] - w) < tolerance[d], (d, realised[d], w, tolerance[d])


def megatron_tokenizer(dataset):
    from megatron.core.tokenizers import MegatronTokenizer

    return MegatronTokenizer.from_pretrained(
        tokenizer_path=str(dataset["tokenizer"]), metadata_path={"library": "huggingface"}
    )


def test_megatron_reads_the_token_files_back(dataset):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    for domain, token_dir in dataset["tokens"].items():
        indexed = IndexedDataset(str(dataset["root"] / "export" / "megatron_data" / domain))
        tokens, offsets = read_tokens(token_dir, "train"), read_offsets(token_dir, "train")
        assert len(indexed) == len(offsets) - 1 == DOCUMENTS[domain]
        assert list(indexed.document_indices) == list(range(DOCUMENTS[domain] + 1))
        for i, (start, end) in enumerate(zip(offsets[:-1], offsets[1:])):
            np.testing.assert_array_equal(indexed[i], tokens[start:end])


def test_megatron_blend_realises_the_token_shares(dataset):
    import torch.distributed as dist
    from megatron.core.datasets.blended_megatron_dataset_builder import (
        BlendedMegatronDatasetBuilder,
    )
    from megatron.core.datasets.gpt_dataset import GPTDataset, GPTDatasetConfig
    from megatron.core.datasets.utils import get_blend_from_list

    data_path = (dataset["out"] / "megatron.txt").read_text().split()
    config = GPTDatasetConfig(
        random_seed=1,
        sequence_length=64,
        blend=get_blend_from_list(data_path),
        split="100,0,0",
        tokenizer=megatron_tokenizer(dataset),
        reset_position_ids=False,
        reset_attention_mask=False,
        eod_mask_loss=False,
        path_to_cache=str(dataset["root"] / "megatron_cache"),
    )
    samples = 2000
    # Megatron builds its indices on rank 0 of the job's process group: a one-process group.
    dist.init_process_group(
        "gloo", init_method=f"file://{dataset['root'] / 'megatron_group'}", rank=0, world_size=1
    )
    try:
        train, _, _ = BlendedMegatronDatasetBuilder(
            GPTDataset, [samples, 0, 0], lambda: True, config
        ).build()
    finally:
        dist.destroy_process_group()
    names = [Path(p).name for p in config.blend[0]]
    counts = np.bincount(train.dataset_index[:samples], minlength=len(names))
    # Every sample is sequence_length + 1 tokens: sample shares are token shares.
    realised = token_shares(dict(zip(names, counts * 65.0)))
    for d, w in WEIGHTS.items():
        assert abs(realised[d] - w) <= 1 / samples + 1e-9


def test_litdata_combined_dataset_realises_the_token_shares(dataset, tmp_path):
    litdata = pytest.importorskip("litdata")
    spec = json.loads((dataset["out"] / "litdata.json").read_text())
    from litdata.streaming.writer import BinaryWriter

    for domain in spec["domains"]:  # one item per document, with the writer optimize() uses
        writer = BinaryWriter(spec["input_dirs"][domain], chunk_bytes="1MB")
        for i, document in enumerate(token_documents(dataset["tokens"][domain])):
            writer[i] = document
        writer.done()
        writer.merge()
    combined = litdata.CombinedStreamingDataset(
        [litdata.StreamingDataset(spec["input_dirs"][d], shuffle=True) for d in spec["domains"]],
        weights=spec["weights"],
        seed=0,
        iterate_over_all=False,
    )
    # Each document names its domain, so its tokens tell which domain an item came from.
    domain_of = {
        document.tobytes(): d
        for d in spec["domains"]
        for document in token_documents(dataset["tokens"][d])
    }
    n = SAMPLES
    tokens = dict.fromkeys(spec["domains"], 0)
    items = list(itertools.islice(combined, n))
    assert len(items) == n
    for item in items:
        tokens[domain_of[np.asarray(item).tobytes()]] += len(item)
    realised = token_shares(tokens)
    tolerance = sampling_tolerance(
        dict(zip(spec["domains"], spec["weights"])), document_lengths(dataset), n
    )
    for d, w in WEIGHTS.items():
        assert abs(realised[d] - w) < tolerance[d], (d, realised[d], w, tolerance[d])


def token_documents(token_dir):
    tokens, offsets = read_tokens(token_dir, "train"), read_offsets(token_dir, "train")
    for start, end in zip(offsets[:-1], offsets[1:]):
        yield np.array(tokens[start:end])


def test_olmo_core_source_mixture_realises_the_token_shares(dataset):
    source_mixture = pytest.importorskip("olmo_core.data.source_mixture")
    spec = yaml.safe_load((dataset["out"] / "olmo_core.yaml").read_text())
    config = source_mixture.SourceMixtureDatasetConfig.from_dict(spec)
    config.render_tables, config.quiet = False, True
    mixture = config.build(npdtype=np.uint16, sequence_length=64)
    tokens = {
        outcome.name: sum(p.tokens for p in outcome.path_tokens) for outcome in mixture.sources
    }
    realised = token_shares(tokens)
    for d, w in WEIGHTS.items():
        assert abs(realised[d] - w) < 0.01


def test_bad_inputs_write_nothing(dataset, tmp_path):
    domains = list(SENTENCES)

    def export(mixture, token_dirs=dataset["tokens"]):
        out = tmp_path / "out"
        with pytest.raises((ValueError, FileNotFoundError)) as err:
            export_mixture(mixture, domains, token_dirs, dataset["shards"], tmp_path, out, 256)
        assert not out.exists()
        return str(err.value)

    partial = write_mixture(tmp_path / "partial.json", "human", {"notes": 0.5, "manuals": 0.5})
    assert partial["weights"]
    assert "weights must name every domain exactly; missing ['books']" in export(
        tmp_path / "partial.json"
    )
    assert "does not exist; run the rule that makes it" in export(tmp_path / "none.json")
    mixture = dataset["root"] / "mixtures" / "chameleon.json"
    untokenized = {**dataset["tokens"], "books": tmp_path / "books"}
    assert "holds no token files (no stats.json)" in export(mixture, untokenized)
    # Token files of another tokenizer: ids that mean other text.
    other = tmp_path / "other_tokenizer"
    train_tokenizer(["something else entirely", "and more of it"] * 20, 280, other)
    write_token_files({"train": dataset["shards"]["books"]}, other, tmp_path / "books_other")
    mixed = {**dataset["tokens"], "books": tmp_path / "books_other"}
    assert "written with different tokenizers" in export(mixture, mixed)
    # An empty train split cannot be a Megatron dataset.
    empty = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"text": pa.array([], pa.string())}), empty)
    write_token_files({"train": empty}, dataset["tokenizer"], tmp_path / "empty_tokens")
    with pytest.raises(ValueError, match="the train split has no documents"):
        write_megatron_dataset(tmp_path / "empty_tokens", tmp_path / "megatron" / "empty")
    assert not (tmp_path / "megatron").exists() or not any((tmp_path / "megatron").iterdir())


@pytest.mark.slow
def test_export_rule(dataset, tmp_path):
    """The DAG from a fresh checkout, for pretraining and finetuning; then the export and
    Megatron jobs themselves, on token files and a mixture laid out as the workflow does."""
    from test_workflow import (
        planned_jobs,
        small_config,
        small_finetune_dataset,
        snakemake,
        write_config,
    )

    names = ["python_code", "licenses"]
    config = small_config(
        names, {"small-ft": small_finetune_dataset(methods=["uniform", "chameleon_pt"])}
    )
    config["proxies"]["tiny"]["domains"] = names
    write_config(tmp_path, config)
    jobs = planned_jobs(tmp_path, "results/small-ft/export/chameleon_pt")
    planned = {rule for rule, _ in jobs}
    assert {"export", "megatron_dataset", "tokenize_domain", "mixture"} <= planned
    assert ("mixture", "dataset=small-ft, method=chameleon_pt") in jobs
    assert "train_base" in planned  # the pretrained model: the small dataset's uniform base

    results = tmp_path / "results" / "small"
    sources = dict(zip(names, SENTENCES))
    for name, source in sources.items():
        (results / "shards" / name).mkdir(parents=True)
        shutil.copy(dataset["shards"][source], results / "shards" / name / "train.parquet")
        shutil.copytree(dataset["tokens"][source], results / "tokens" / name)
    write_mixture(results / "mixtures" / "human.json", "human", {n: 0.5 for n in names})
    snakemake(
        tmp_path, "results/small/export/human", "--allowed-rules", "megatron_dataset", "export"
    )
    out = results / "export" / "human"
    data_path = (out / "megatron.txt").read_text().split()
    assert data_path[0::2] == ["0.5", "0.5"]
    assert data_path[1::2] == [str(results / "export" / "megatron_data" / n) for n in names]
    hf = json.loads((out / "hf_interleave.json").read_text())
    assert hf["domains"] == names and hf["probabilities"][0] > hf["probabilities"][1]
    olmo = yaml.safe_load((out / "olmo_core.yaml").read_text())
    assert olmo["global_batch_size"] == 8 * 32  # the small dataset's base schedule
