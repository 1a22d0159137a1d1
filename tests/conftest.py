"""Small real training data shared by the model, training and finetuning tests."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from chameleon_mix.tokenizer import train_tokenizer


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
