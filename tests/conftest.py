"""Small real training data shared by the model, training and finetuning tests, a made-up
Debian package for the tests of the declared demo corpus, and the workflow tests' configs
(the catalog's `.test/` files)."""

import copy
import gzip
import os
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from chameleon_mix.tokenizer import train_tokenizer

TEST_CONFIGS = Path(__file__).resolve().parents[1] / ".test"


# SlimPajama-627B's token share per set (Soboleva et al. 2023, the dataset's card).
SLIMPAJAMA_SHARES = {
    "arxiv": 0.046,
    "book": 0.042,
    "cc": 0.522,
    "c4": 0.267,
    "github": 0.052,
    "stackexchange": 0.033,
    "wikipedia": 0.038,
}


def write_slimpajama_chunks(directory: Path, documents: dict[str, list[str]], files: int) -> list:
    """A mixed source shaped like SlimPajama-627B's chunks: every set's documents as records
    ``{"text", "meta": {"redpajama_set_name": set}}``, shuffled together (seeded) and cut into
    ``files`` jsonl.zst files ``chunk_<i>.jsonl.zst``; returns the records in file order."""
    import numpy as np
    import orjson
    import zstandard

    records = [
        {"text": text, "meta": {"redpajama_set_name": name}}
        for name, texts in documents.items()
        for text in texts
    ]
    np.random.default_rng(0).shuffle(records)
    directory.mkdir(parents=True, exist_ok=True)
    for i, part in enumerate(np.array_split(np.arange(len(records)), files)):
        data = b"".join(orjson.dumps(records[j]) + b"\n" for j in part)
        (directory / f"chunk_{i}.jsonl.zst").write_bytes(zstandard.compress(data))
    return records


def merge(base: dict, overlay: dict) -> dict:
    """``overlay`` on ``base``, mappings merged key by key, as Snakemake merges the files of
    ``--configfile a.yaml b.yaml``; other values (lists too) are replaced."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_test_config(*names: str) -> dict:
    """The workflow test config ``.test/<name>.yaml``, each further file merged on top of the
    ones before it: a fresh dict the test may change."""
    config: dict = {}
    for name in names:
        config = merge(config, yaml.safe_load((TEST_CONFIGS / f"{name}.yaml").read_text()))
    return config


def domain_texts():
    code = [f"def f{i}(x):\n    return x * {i} + {i % 3}\n" for i in range(60)]
    prose = [f"The river number {i} flows slowly past the old mill in spring." for i in range(60)]
    return {"code": code, "prose": prose}


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    paths = {}
    for name, texts in domain_texts().items():
        paths[name] = root / f"{name}.parquet"
        pq.write_table(pa.table({"text": texts}), paths[name])
    return paths


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer"
    train_tokenizer([t for ts in domain_texts().values() for t in ts], 400, path)
    return path


@pytest.fixture(scope="module")
def tokens(tmp_path_factory, shards, tokenizer_dir):
    """Each domain's shard tokenized once, as its train split: domain -> token directory."""
    from chameleon_mix.tokens import write_token_files

    root = tmp_path_factory.mktemp("tokens")
    for name, shard in shards.items():
        write_token_files({"train": shard}, tokenizer_dir, root / name)
    return {name: root / name for name in shards}


def build_mo(pairs: list[tuple[bytes, bytes]], order: str = "<") -> bytes:
    """A GNU .mo catalogue: header, table of originals, table of translations, strings."""
    originals_at = 28
    translations_at = originals_at + 8 * len(pairs)
    strings_at = translations_at + 8 * len(pairs)
    tables, strings = [b"", b""], b""
    for column in (0, 1):
        for pair in pairs:
            tables[column] += struct.pack(
                order + "2I", len(pair[column]), strings_at + len(strings)
            )
            strings += pair[column] + b"\0"
    header = struct.pack(
        order + "7I", 0x950412DE, 0, len(pairs), originals_at, translations_at, 0, 0
    )
    return header + tables[0] + tables[1] + strings


EXTRA_PACKAGE = "chameleon-mix-test-extra"


@pytest.fixture
def extra_debian_package():
    """``install()`` puts a made-up Debian package into the real directories the demo's
    collectors read (a changelog, a copyright, a man page, a catalogue, a header, a Perl
    module) and into dpkg's file lists, as `apt-get install slurmd` would, and returns its
    files; they are removed after the test. Skips unless the test runs as root."""
    info = Path("/var/lib/dpkg/info")
    if not os.access(info, os.W_OK) or not os.access("/usr/share/doc", os.W_OK):
        pytest.skip("needs write access to the dpkg database and /usr/share (root)")
    name = EXTRA_PACKAGE
    changelog = f"{name} (1.0-1) bookworm; urgency=medium\n\n  * An extra change.\n" * 12
    files = {
        f"/usr/share/doc/{name}/changelog.Debian.gz": gzip.compress(changelog.encode()),
        f"/usr/share/doc/{name}/copyright": b"The extra licence, explained. " * 20,
        f"/usr/share/man/man1/{name}.1.gz": gzip.compress(b".TH EXTRA 1\n" + b"Extra text. " * 40),
        f"/usr/share/locale/de/LC_MESSAGES/{name}.mo": build_mo([(b"Hello", b"Hallo " * 50)]),
        f"/usr/include/{name}.h": b"/* An extra header. */\nint extra(void);\n" * 20,
        "/usr/share/perl5/ChameleonMixTestExtra.pm": b"package Extra;\n# extra\n1;\n" * 40,
    }
    listing = info / f"{name}.list"

    def install() -> list[str]:
        for path, data in files.items():
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_bytes(data)
        listing.write_text("\n".join(files) + "\n")
        return list(files)

    try:
        yield install
    finally:
        for path in files:
            Path(path).unlink(missing_ok=True)
        if Path(f"/usr/share/doc/{name}").is_dir():
            Path(f"/usr/share/doc/{name}").rmdir()
        listing.unlink(missing_ok=True)


def pytest_collection_finish(session):
    """Build the trainers' environments (tests/trainer_envs.py) in the background while the
    tests before theirs run: pip mostly waits on the network. A build that fails here is built
    again, and its error raised, by the first test that needs it."""
    if not any(item.fspath.basename == "test_export.py" for item in session.items):
        return
    import contextlib
    import threading

    from trainer_envs import ENVS, trainer_python

    def build_all():
        for name in ENVS:
            with contextlib.suppress(Exception):  # the test that needs it raises it
                trainer_python(name)

    threading.Thread(target=build_all, name="trainer-envs", daemon=True).start()
