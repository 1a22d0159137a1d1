"""Byte-level BPE tokenizer trained with ``tokenizers``, saved in Hugging Face format."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from .io import atomic_path

EOS = "<|endoftext|>"


def train_tokenizer(texts: Iterable[str], vocab_size: int, out_dir: str | Path) -> None:
    """Train a GPT-2 style byte-level BPE on ``texts`` and ``save_pretrained`` it to ``out_dir``.

    ``<|endoftext|>`` serves as BOS, EOS and padding, as in GPT-2.
    """
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, special_tokens=[EOS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe._tokenizer, bos_token=EOS, eos_token=EOS, pad_token=EOS
    )
    with atomic_path(out_dir, directory=True) as tmp:
        tokenizer.save_pretrained(tmp)


def load_tokenizer(path: str | Path):
    """Load a tokenizer directory; the error says where it should have come from."""
    from transformers import AutoTokenizer

    path = Path(path)
    if not (path / "tokenizer.json").is_file() and not (path / "tokenizer_config.json").is_file():
        raise FileNotFoundError(
            f"{path} holds no tokenizer (no tokenizer.json); train it with the proxy's tokenizer "
            "rule or set proxies.<name>.tokenizer.path to a Hugging Face tokenizer directory"
        )
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def read_texts(parquet_files: Iterable[str | Path], per_file: int | None = None) -> list[str]:
    """The ``text`` column of shard files, at most ``per_file`` documents from each."""
    import pyarrow.parquet as pq

    texts = []
    for path in parquet_files:
        column = pq.read_table(path, columns=["text"]).column("text").to_pylist()
        texts.extend(column[:per_file] if per_file else column)
    return texts
