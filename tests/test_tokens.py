"""Token files: written once per domain with bounded memory, read back exactly, and the only
thing training, embedding and perplexity read (a training job that tokenizes fails here)."""

import hashlib
import json
import subprocess
import sys
import tracemalloc

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import domain_texts

import chameleon_mix.tokens as tokens_module
from chameleon_mix.embed import document_windows, embed_domain_to_files, stream_windows
from chameleon_mix.evaluate import domain_perplexities
from chameleon_mix.model import build_model, load_model
from chameleon_mix.regmix import regmix_run
from chameleon_mix.tokenizer import load_tokenizer, train_tokenizer
from chameleon_mix.tokens import (
    read_offsets,
    read_stats,
    read_tokens,
    token_dtype,
    write_token_files,
)
from chameleon_mix.train import TrainConfig, finetune, sample_batch, train, train_from_scratch

TINY = {"n_layer": 2, "n_head": 2, "n_embd": 32}
SCHEDULE = {"steps": 6, "batch_size": 4, "seq_len": 16, "warmup_steps": 2, "checkpoint_every": 3}


def write_shard(path, texts):
    pq.write_table(pa.table({"text": texts}), path)
    return path


@pytest.fixture(scope="module")
def splits(tmp_path_factory):
    """Each demo domain as train/val/test shards, with an empty and a non-ASCII document."""
    root = tmp_path_factory.mktemp("splits")
    shards = {}
    for name, texts in domain_texts().items():
        texts = [*texts, "", "Größe naïve — 東京 ✓"]
        shards[name] = {
            split: write_shard(root / f"{name}.{split}.parquet", part)
            for split, part in (("train", texts[:40]), ("val", texts[40:52]), ("test", texts[52:]))
        }
    return shards


@pytest.fixture(scope="module")
def token_dirs(tmp_path_factory, splits, tokenizer_dir):
    root = tmp_path_factory.mktemp("token_files")
    for name, shards in splits.items():
        write_token_files(shards, tokenizer_dir, root / name, batch_documents=7)
    return {name: root / name for name in splits}


def texts_of(shard):
    return pq.read_table(shard)["text"].to_pylist()


def test_token_files_decode_back_to_the_shard_texts(splits, token_dirs, tokenizer_dir):
    tok = load_tokenizer(tokenizer_dir)
    for name, shards in splits.items():
        stats = read_stats(token_dirs[name])
        assert stats["dtype"] == "uint16" and stats["eos_id"] == tok.eos_token_id
        assert stats["vocab_size"] == len(tok) and stats["tokenizer"] == str(tokenizer_dir)
        for split, shard in shards.items():
            stream = read_tokens(token_dirs[name], split)
            offsets = read_offsets(token_dirs[name], split)
            texts = texts_of(shard)
            assert isinstance(stream, np.memmap) and stream.dtype == np.dtype("<u2")
            assert offsets[0] == 0 and offsets[-1] == len(stream) and len(offsets) == len(texts) + 1
            assert np.all(stream[offsets[1:] - 1] == tok.eos_token_id)  # each document's EOS
            decoded = [tok.decode(stream[a : b - 1]) for a, b in zip(offsets[:-1], offsets[1:])]
            assert decoded == texts
            raw = (token_dirs[name] / f"{split}.bin").read_bytes()
            assert np.array_equal(np.frombuffer(raw, dtype="<u2"), stream)
            split_stats = stats["splits"][split]
            assert split_stats["sha256"] == hashlib.sha256(raw).hexdigest()
            assert split_stats["documents"] == len(texts) and split_stats["tokens"] == len(stream)
            assert split_stats["mean_tokens_per_document"] == pytest.approx(
                len(stream) / len(texts)
            )
    # The same ids as one call of the tokenizer on all texts: batching changes nothing.
    train = texts_of(splits["code"]["train"])
    expected = [t for ids in tok(train, add_special_tokens=False)["input_ids"] for t in (*ids, 0)]
    assert np.array_equal(read_tokens(token_dirs["code"], "train"), expected)


def test_encoding_in_smaller_pieces_changes_nothing(monkeypatch, splits, token_dirs, tmp_path):
    """Batches of 5 documents, cut again into encoder calls of at most 40 characters (a single
    longer document alone): the same files."""
    monkeypatch.setattr(tokens_module, "MAX_CHARS_PER_ENCODE", 40)
    tokenizer_dir = read_stats(token_dirs["code"])["tokenizer"]
    stats = write_token_files(splits["code"], tokenizer_dir, tmp_path / "code", batch_documents=5)
    assert stats == read_stats(token_dirs["code"])


def word_tokenizer(path, words: int):
    """A word-level tokenizer of ``words`` words ``w0 w1 ...`` plus EOS (id ``words``)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(words)} | {"<eos>": words, "<unk>": words + 1}
    backend = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<eos>")
    tokenizer.save_pretrained(path)
    return path


def test_the_vocabulary_size_picks_uint16_or_uint32(tmp_path):
    assert token_dtype(65535) == np.uint16 and token_dtype(65536) == np.uint32
    words = 65600  # the demo tokenizers give uint16 files (test above); this one needs uint32
    shard = write_shard(tmp_path / "t.parquet", ["w3 w65599 w7", "w0"])
    tokenizer = word_tokenizer(tmp_path / "tok", words)
    stats = write_token_files({"train": shard}, tokenizer, tmp_path / "out")
    stream = read_tokens(tmp_path / "out", "train")
    assert stats["vocab_size"] == words + 2 and stats["dtype"] == "uint32" == stream.dtype.name
    assert stream.tolist() == [3, 65599, 7, words, 0, words]  # ids above 65535 kept whole


def peak_memory_of_writing(tmp_path, documents, tokenizer_dir):
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"]
    texts = [" ".join(words[(i + j) % 10] for j in range(150)) + f" {i}" for i in range(documents)]
    shard = write_shard(tmp_path / f"{documents}.parquet", texts)
    tracemalloc.start()
    stats = write_token_files({"train": shard}, tokenizer_dir, tmp_path / f"{documents}", 16)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, stats["splits"]["train"]["tokens"]


def test_writing_holds_one_batch_whatever_the_shard_size(tmp_path, tokenizer_dir):
    small, small_tokens = peak_memory_of_writing(tmp_path, 400, tokenizer_dir)
    large, large_tokens = peak_memory_of_writing(tmp_path, 1600, tokenizer_dir)
    assert large_tokens > 3.9 * small_tokens
    # Holding the ids of the stream in lists would cost ~36 bytes a token more; the peak is the
    # tokenizer and one batch of 16 documents, the same at both sizes.
    assert large < small + 0.5 * 36 * (large_tokens - small_tokens) / 16, (small, large)
    assert large < 1.2 * small, (small, large)


def test_unreadable_shards_are_named_and_nothing_is_written(tmp_path, tokenizer_dir):
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match=r"broken\.parquet: cannot read the shard as parquet"):
        write_token_files({"train": tmp_path / "broken.parquet"}, tokenizer_dir, tmp_path / "a")
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "other.parquet")
    with pytest.raises(ValueError, match=r"other\.parquet: the shard has no `text` column"):
        write_token_files({"train": tmp_path / "other.parquet"}, tokenizer_dir, tmp_path / "b")
    write_shard(tmp_path / "holes.parquet", ["a text", None, "another"])
    with pytest.raises(ValueError, match=r"holes\.parquet: row 1 has no text"):
        write_token_files({"train": tmp_path / "holes.parquet"}, tokenizer_dir, tmp_path / "e")
    good = write_shard(tmp_path / "good.parquet", ["fine text"])
    with pytest.raises(ValueError, match=r"unknown split\(s\) \['dev'\]"):
        write_token_files({"dev": good}, tokenizer_dir, tmp_path / "c")
    # A failure in a later split leaves no directory with the earlier split's files.
    shards = {"train": good, "test": tmp_path / "broken.parquet"}
    with pytest.raises(ValueError, match="cannot read the shard"):
        write_token_files(shards, tokenizer_dir, tmp_path / "d")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "broken.parquet",
        "good.parquet",
        "holes.parquet",
        "other.parquet",
    ]
    with pytest.raises(FileNotFoundError, match="holds no token files .* tokenize_domain"):
        read_stats(tmp_path / "d")


# --- no job tokenizes -------------------------------------------------------------------------
class NoEncoding:
    """A tokenizers backend whose every ``encode*`` method fails; all else is the real one."""

    def __init__(self, backend):
        object.__setattr__(self, "_backend", backend)

    def __getattr__(self, name):
        if name.startswith("encode"):
            raise AssertionError(f"a job that reads token files tokenized text ({name})")
        return getattr(self._backend, name)

    def __setattr__(self, name, value):
        setattr(self._backend, name, value)


@pytest.fixture
def no_tokenizing(monkeypatch):
    """Every tokenizer loaded from now on encodes nothing."""
    from transformers.tokenization_utils_tokenizers import TokenizersBackend

    original = TokenizersBackend.__init__

    def guarded(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._tokenizer = NoEncoding(self._tokenizer)

    monkeypatch.setattr(TokenizersBackend, "__init__", guarded)


@pytest.mark.slow
def test_training_embedding_and_perplexity_never_tokenize(
    no_tokenizing, token_dirs, tokenizer_dir, tmp_path
):
    with pytest.raises(AssertionError, match="tokenized text"):
        load_tokenizer(tokenizer_dir)("the guard is on")
    log = train_from_scratch(token_dirs, tokenizer_dir, TINY, SCHEDULE, tmp_path / "base")
    assert log["tokens_total"] == 6 * 4 * 16
    model = tmp_path / "base/model"
    short = {**SCHEDULE, "steps": 2}
    tuned = finetune(token_dirs, model, short, tmp_path / "ft", {"code": 0.9, "prose": 0.1})
    assert tuned["tokens_per_domain"]["code"] > tuned["tokens_per_domain"]["prose"]
    for sampling in ("stream", "document"):
        out = tmp_path / sampling
        settings = {"samples": 6, "seq_len": 16, "sampling": sampling, "seed": 0}
        paths = [out / "code.npy", out / "code.samples.npy", out / "code.json"]
        embed_domain_to_files(model, "final", token_dirs["code"], settings, *paths, "tiny")
        info = json.loads(paths[2].read_text())
        assert info["sampling"] == sampling and info["samples"] == 6
        assert info["tokens_sha256"] == read_stats(token_dirs["code"])["splits"]["train"]["sha256"]
    scores = domain_perplexities(model, token_dirs, tmp_path / "ppl.json")
    test = read_stats(token_dirs["code"])["splits"]["test"]
    assert scores["code"]["tokens"] == test["tokens"] - test["documents"]  # all but the EOS
    run = regmix_run(0, token_dirs, tokenizer_dir, TINY, short, tmp_path / "regmix.json")
    assert set(run["validation_loss"]) == {"code", "prose"}


def test_token_files_of_another_tokenizer_are_refused(token_dirs, tmp_path):
    train_tokenizer(domain_texts()["prose"], 300, tmp_path / "other")
    with pytest.raises(ValueError, match="were written with the tokenizer .* not with the tokeni"):
        train_from_scratch(token_dirs, tmp_path / "other", TINY, SCHEDULE, tmp_path / "run")


@pytest.mark.slow
def test_training_on_token_files_equals_the_in_memory_stream(
    token_dirs, splits, tokenizer_dir, tmp_path
):
    """The trainer drew its windows from an int32 array of the tokenized shard before; the same
    tokens memory-mapped from a uint16 file give the same batches and the same model, bit for
    bit (on CPU)."""
    tok = load_tokenizer(tokenizer_dir)
    in_memory = {}
    for name, shards in splits.items():
        ids = tok(texts_of(shards["train"]), add_special_tokens=False)["input_ids"]
        in_memory[name] = np.array([t for doc in ids for t in (*doc, tok.eos_token_id)], np.int32)
    mapped = [read_tokens(token_dirs[name], "train") for name in in_memory]
    probs = np.array([0.3, 0.7])
    for step in range(3):
        old = sample_batch(list(in_memory.values()), probs, 8, 16, np.random.default_rng([0, step]))
        new = sample_batch(mapped, probs, 8, 16, np.random.default_rng([0, step]))
        assert np.array_equal(old[0], new[0]) and np.array_equal(old[1], new[1])

    weights = {"code": 0.3, "prose": 0.7}
    cfg = TrainConfig(**SCHEDULE)
    torch.manual_seed(cfg.seed)  # as train_from_scratch does before building the model
    net = build_model(TINY, len(tok), cfg.seq_len, tok.eos_token_id)
    old_log = train(net, in_memory, weights, cfg, tmp_path / "old", tok, "cpu")
    new_log = train_from_scratch(
        token_dirs, tokenizer_dir, TINY, SCHEDULE, tmp_path / "new", weights, device="cpu"
    )
    old_state = load_model(tmp_path / "old/model").state_dict()
    new_state = load_model(tmp_path / "new/model").state_dict()
    for key, tensor in old_state.items():
        assert torch.equal(tensor, new_state[key]), key
    assert [r["loss"] for r in old_log["log"]] == [r["loss"] for r in new_log["log"]]
    assert old_log["tokens_per_domain"] == new_log["tokens_per_domain"]


# --- embedding windows ------------------------------------------------------------------------
def test_stream_windows_have_seq_len_tokens_and_cross_documents(token_dirs):
    stream = read_tokens(token_dirs["code"], "train")  # documents of ~16 tokens
    windows = stream_windows(stream, 50, 24, seed=3)
    assert all(len(w) == 24 for w in windows)
    assert all(np.any(w[:-1] == 0) for w in windows)  # each spans an EOS, inside the window
    again = stream_windows(stream, 50, 24, seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(windows, again))
    other = stream_windows(stream, 50, 24, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(windows, other))
    text = bytes(stream).hex()  # every window is a slice of the stream
    assert all(bytes(w.astype("<u2")).hex() in text for w in windows)
    with pytest.raises(ValueError, match=r"has 3 tokens, fewer than one window of seq_len=24"):
        stream_windows(stream[:3], 5, 24, seed=0)


def test_document_windows_lie_inside_one_document(token_dirs, splits, tokenizer_dir):
    stream = read_tokens(token_dirs["prose"], "train")
    offsets = read_offsets(token_dirs["prose"], "train")
    windows = document_windows(stream, offsets, 90, 8, seed=5)
    assert len(windows) == 90 and all(1 <= len(w) <= 8 for w in windows)
    docs = [stream[a : b - 1] for a, b in zip(offsets[:-1], offsets[1:])]
    for w in windows:
        inside = [
            d
            for d in docs
            for s in range(len(d) - len(w) + 1)
            if np.array_equal(d[s : s + len(w)], w)
        ]
        assert inside or np.array_equal(w, [0])  # the empty document: its EOS alone
    again = document_windows(stream, offsets, 90, 8, seed=5)
    assert all(np.array_equal(a, b) for a, b in zip(windows, again))

    # The protocol as it ran on the shard's text before token files: the same windows.
    tok = load_tokenizer(tokenizer_dir)
    texts = texts_of(splits["prose"]["train"])
    rng = np.random.default_rng(5)
    order = np.concatenate([rng.permutation(len(texts)) for _ in range(-(-90 // len(texts)))])
    for i, window in zip(order[:90], windows):
        doc = tok(texts[i], add_special_tokens=False)["input_ids"] or [tok.eos_token_id]
        start = rng.integers(0, max(1, len(doc) - 8 + 1))
        assert np.array_equal(window, doc[start : start + 8])


# --- peak memory of training ------------------------------------------------------------------
# The child's own peak RSS: VmHWM belongs to the address space exec creates, whereas
# ru_maxrss would carry over the RSS of the forked pytest process.
TRAIN_AND_REPORT_PEAK_RSS = """
import re, sys
from pathlib import Path
from chameleon_mix.train import train_from_scratch
train_from_scratch({"code": sys.argv[1]}, sys.argv[2], %r, %r, sys.argv[3], device="cpu")
print(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text())[1])
"""


@pytest.mark.slow
def test_peak_memory_of_training_does_not_grow_with_the_shard(tmp_path, tokenizer_dir):
    """A tiny base model trained on a domain of N and of 4N documents, each in its own process:
    the same peak RSS, where tokenizing the shard in memory cost ~133 bytes a token."""
    script = TRAIN_AND_REPORT_PEAK_RSS % (TINY, {**SCHEDULE, "steps": 3})
    sizes, runs = {}, {}
    for n in (2500, 10000):
        texts = [f"def f{i}(x):\n    return x * {i} + {i % 7}  # {i * 31}\n" for i in range(n)]
        shard = write_shard(tmp_path / f"{n}.parquet", texts)
        stats = write_token_files({"train": shard}, tokenizer_dir, tmp_path / f"tokens-{n}")
        sizes[n] = stats["splits"]["train"]["tokens"]
    for n in sizes:  # side by side: each measures its own process
        command = [sys.executable, "-c", script, tmp_path / f"tokens-{n}", tokenizer_dir]
        runs[n] = subprocess.Popen(
            [*map(str, command), str(tmp_path / f"run-{n}")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    peaks = {}
    for n, run in runs.items():
        out, err = run.communicate()
        assert run.returncode == 0, err[-2000:]
        peaks[n] = int(out.split()[-1]) * 1024
    grown = peaks[10000] - peaks[2500]
    print(f"train tokens {sizes}: peak RSS {peaks} bytes, grown by {grown / 2**20:.1f} MiB")
    assert grown < 0.1 * 133 * (sizes[10000] - sizes[2500]), (sizes, peaks)


@pytest.fixture(scope="module")
def embedding_model(token_dirs, tokenizer_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    train_from_scratch(token_dirs, tokenizer_dir, TINY, {**SCHEDULE, "steps": 2}, out)
    return out / "model"


def damaged_copy(token_dir, tmp_path, damage):
    import shutil

    copy = tmp_path / "tokens" / token_dir.name
    shutil.copytree(token_dir, copy)
    damage(copy)
    return copy


def cut(path, share=0.3):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * share)])


def zero_middle(path, size=64):
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + size] = bytes(size)
    path.write_bytes(bytes(data))


EMBEDDING = {"samples": 6, "seq_len": 16, "sampling": "stream", "seed": 0}


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda d: cut(d / "train.bin"),
            r"train\.bin: holds [\d,]+ bytes, not the [\d,]+ tokens x 2",
        ),
        (
            lambda d: zero_middle(d / "train.bin"),
            r"train\.bin: its sha256 is \w+…, stats\.json records",
        ),
        (lambda d: cut(d / "stats.json", 0.5), r"stats\.json: not valid JSON"),
        (lambda d: cut(d / "train.offsets.npy", 0.9), r"train\.offsets\.npy: "),
    ],
    ids=["truncated", "zeroed", "stats.json", "offsets"],
)
def test_damaged_token_files_stop_every_reader_before_it_writes(
    damage, message, token_dirs, embedding_model, tokenizer_dir, tmp_path
):
    """A cut, zeroed or garbled token file is named, with the fix, by the embedding, the
    trainer and the export; none of them writes a result from it."""
    from chameleon_mix.export import write_megatron_dataset

    damaged = damaged_copy(token_dirs["code"], tmp_path, damage)
    fix = rf"delete {damaged} and rerun its tokenize_domain job"
    out = tmp_path / "out"
    paths = [out / "code.npy", out / "code.samples.npy", out / "code.json"]
    with pytest.raises(ValueError, match=rf"{message}.*{fix}"):
        embed_domain_to_files(embedding_model, "final", damaged, EMBEDDING, *paths, "tiny")
    if "offsets" not in message:
        with pytest.raises(ValueError, match=message):
            train_from_scratch(
                {"code": damaged, "prose": token_dirs["prose"]}, tokenizer_dir, TINY, SCHEDULE, out
            )
    with pytest.raises(ValueError, match=message):
        write_megatron_dataset(damaged, out / "megatron" / "code")
    assert not out.exists() or not any(out.rglob("*.*"))


def test_the_embedding_records_the_hash_of_what_it_read(token_dirs, embedding_model, tmp_path):
    paths = [tmp_path / "code.npy", tmp_path / "code.samples.npy", tmp_path / "code.json"]
    embed_domain_to_files(embedding_model, "final", token_dirs["code"], EMBEDDING, *paths, "tiny")
    digest = hashlib.sha256((token_dirs["code"] / "train.bin").read_bytes()).hexdigest()
    assert json.loads(paths[2].read_text())["tokens_sha256"] == digest


def test_a_long_document_is_encoded_in_pieces_with_the_ids_of_one_call(
    tokenizer_dir, tmp_path, monkeypatch
):
    """A document over PIECE_BYTES is encoded piece by piece, split at word boundaries; its
    ids equal one call's, and so do its neighbours'. (Pieces of 4 KB: hundreds of splits.)"""
    monkeypatch.setattr(tokens_module, "PIECE_BYTES", 4096)
    tokenizer = load_tokenizer(tokenizer_dir)
    words = ["river", "mill", "déjà", "vu", "x=1;", "42", "naïve", "spring", "\n", "  ", "ünïcödé"]
    rng = np.random.default_rng(0)
    book = " ".join(rng.choice(words, size=200_000)) + " the end"
    texts = ["a short one", book, "another short one"]
    assert len(book.encode()) > 3 * tokens_module.PIECE_BYTES
    shard = tmp_path / "shard.parquet"
    pq.write_table(pa.table({"text": texts}), shard)
    write_token_files({"train": shard}, tokenizer_dir, tmp_path / "tokens")
    ids = read_tokens(tmp_path / "tokens", "train")
    expected = [
        tokenizer(t, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
        for t in texts
    ]
    assert ids.tolist() == [i for doc in expected for i in doc]
    offsets = read_offsets(tmp_path / "tokens", "train")
    assert np.diff(offsets).tolist() == [len(doc) for doc in expected]
