"""The weights stage on real embeddings: two domains holding the same data are named."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import domain_texts

from chameleon_mix.embed import embed_domain_to_files
from chameleon_mix.model import build_model
from chameleon_mix.tokenizer import load_tokenizer
from chameleon_mix.tokens import write_token_files
from chameleon_mix.weights import NEAR_DUPLICATE, compute_weights, duplicate_warnings

SETTINGS = {"samples": 24, "seq_len": 16, "sampling": "stream", "batch_size": 24}


@pytest.fixture(scope="module")
def embeddings(tmp_path_factory, tokenizer_dir):
    """Domain -> embedding .npy of a tiny model; `prose_copy` holds exactly `prose`'s texts,
    from a file of its own."""
    root = tmp_path_factory.mktemp("weights")
    texts = {
        **domain_texts(),
        "ini": [f"[section{i}]\nname = value {i}\nsize = {i * 7}\n" for i in range(60)],
    }
    texts["prose_copy"] = list(texts["prose"])
    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(0)
    model = build_model({"n_layer": 2, "n_head": 2, "n_embd": 32}, len(tokenizer), 16, 0)
    model.save_pretrained(root / "model")
    tokenizer.save_pretrained(root / "model")
    files = {}
    for name, domain_texts_ in texts.items():
        shard = root / "shards" / name / "train.parquet"
        shard.parent.mkdir(parents=True)
        pq.write_table(pa.table({"text": domain_texts_}), shard)
        write_token_files({"train": shard}, tokenizer_dir, root / "tokens" / name)
        out = root / "embeddings"
        files[name] = out / f"{name}.npy"
        embed_domain_to_files(
            root / "model",
            "final",
            root / "tokens" / name,
            SETTINGS,
            files[name],
            out / f"{name}.samples.npy",
            out / f"{name}.json",
            model_name="tiny",
            device="cpu",
        )
    return files


def test_two_domains_with_the_same_data_are_named_in_a_warning(embeddings, tmp_path, capsys):
    report = compute_weights(embeddings, tmp_path / "weights.json")
    [warning] = report["warnings"]
    assert warning.startswith(
        "domains 'prose' and 'prose_copy' have identical train tokens (embeddings 0 of the "
        "domains' spread apart): Chameleon counts one domain twice, and together they get "
    )
    together = report["weights"]["prose"] + report["weights"]["prose_copy"]
    assert f"together they get {together:.3f} of the weight" in warning
    assert json.loads((tmp_path / "weights.json").read_text())["warnings"] == [warning]
    assert f"warning: {warning}\n" in capsys.readouterr().err
    # Without the copy the same domains raise nothing.
    distinct = {d: embeddings[d] for d in ("code", "prose", "ini")}
    assert compute_weights(distinct)["warnings"] == []
    # The copy takes weight from the others: prose alone gets less than the pair.
    assert compute_weights(distinct)["weights"]["prose"] < together


def test_near_identical_embeddings_are_named_without_equal_tokens(embeddings):
    """A copy embedded elsewhere (another device, a few documents more) is not bit-equal."""
    names = ["code", "prose", "ini", "near"]
    X = np.stack([np.load(embeddings[d]) for d in names[:3]])
    spread = np.sqrt(((X - X.mean(axis=0)) ** 2).sum(axis=1).mean())
    direction = np.random.default_rng(0).standard_normal(X.shape[1])
    direction /= np.linalg.norm(direction)
    weights, no_digests = dict.fromkeys(names, 0.25), {d: {} for d in names}
    # Half and twice the threshold; a fourth point changes the spread by well under 2x.
    near = X[1] + 0.5 * NEAR_DUPLICATE * spread * direction
    [warning] = duplicate_warnings(np.vstack([X, near]), names, no_digests, weights)
    assert warning.startswith("domains 'prose' and 'near' have near-identical embeddings, 0.0"), (
        warning
    )
    assert f"of the domains' spread apart (below {NEAR_DUPLICATE})" in warning
    assert "together they get 0.500 of the weight" in warning
    near = X[1] + 2 * NEAR_DUPLICATE * spread * direction
    assert duplicate_warnings(np.vstack([X, near]), names, no_digests, weights) == []
