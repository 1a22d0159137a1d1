"""Resume only the same run: fingerprints, stale and unreadable checkpoints, plain trainer state,
the whole loss curve, and a real kill -9, on tiny real models on CPU."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from conftest import domain_texts

from chameleon_mix.checkpoints import CheckpointError, read_checkpoint, stream_digest
from chameleon_mix.doge import DoGE
from chameleon_mix.doremi import DoReMi
from chameleon_mix.model import build_model, load_model, model_spec
from chameleon_mix.tokenizer import load_tokenizer
from chameleon_mix.tokens import read_stats, read_tokens, write_token_files
from chameleon_mix.train import TrainConfig, finetune, token_streams, train, train_from_scratch

TINY = {"n_layer": 2, "n_head": 2, "n_embd": 32}
CFG = {
    "steps": 6,
    "batch_size": 4,
    "seq_len": 16,
    "lr": 3e-3,
    "min_lr": 3e-4,
    "warmup_steps": 2,
    "checkpoints": [2],
    "checkpoint_every": 2,
}
UNIFORM = {"code": 0.5, "prose": 0.5}


@pytest.fixture(scope="module")
def finished(tokens, tokenizer_dir, tmp_path_factory):
    """An uninterrupted run of CFG: the directory and its summary."""
    out = tmp_path_factory.mktemp("finished")
    return out, train_from_scratch(tokens, tokenizer_dir, TINY, CFG, out, UNIFORM, device="cpu")


def stopped_run(tokens, tokenizer_dir, out, stop_after):
    """``train_from_scratch`` with the same settings, ended after step ``stop_after``."""
    tokenizer = load_tokenizer(tokenizer_dir)
    streams, digests = token_streams(tokens, tokenizer, "the test tokenizer")
    torch.manual_seed(0)  # the default seed, as train_from_scratch seeds the initialisation
    net = build_model(TINY, len(tokenizer), CFG["seq_len"], tokenizer.eos_token_id)
    return train(
        net,
        streams,
        UNIFORM,
        TrainConfig(**CFG),
        out,
        tokenizer,
        "cpu",
        stop_after=stop_after,
        metadata={"model": {**model_spec(TINY), "vocab_size": len(tokenizer)}},
        data_digests=digests,
    )


def assert_same_model(a, b):
    a, b = load_model(a / "model").state_dict(), load_model(b / "model").state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def changed_prose(tokenizer_dir, root):
    shard = root / "prose.parquet"
    texts = [t.replace("river", "brook") for t in domain_texts()["prose"]]
    pq.write_table(pa.table({"text": texts}), shard)
    write_token_files({"train": shard}, tokenizer_dir, root / "prose-tokens")
    return root / "prose-tokens"


SHORT = {**CFG, "steps": 4, "checkpoints": [], "checkpoint_every": 4}  # one checkpoint a run


@pytest.fixture(scope="module")
def short_run(tokens, tokenizer_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("short")
    train_from_scratch(tokens, tokenizer_dir, TINY, SHORT, out, UNIFORM, device="cpu")
    return out


@pytest.mark.parametrize(
    "change, differing",
    [
        ({"steps": 3}, "schedule.steps"),
        ({"seed": 1}, "initial_weights, schedule.seed"),
        ({"lr": 1e-3}, "schedule.lr"),
        ({"weights": {"code": 0.8, "prose": 0.2}}, "weights.code, weights.prose"),
        ({"shard": "prose"}, "data.prose"),
    ],
)
def test_a_changed_run_starts_afresh_as_a_new_run(
    change, differing, short_run, tokens, tokenizer_dir, tmp_path, capsys
):
    schedule = {**SHORT, **{k: v for k, v in change.items() if k in CFG or k == "seed"}}
    weights = change.get("weights", UNIFORM)
    if "shard" in change:
        tokens = {**tokens, "prose": changed_prose(tokenizer_dir, tmp_path)}
    out, fresh = tmp_path / "rerun", tmp_path / "fresh"
    shutil.copytree(short_run, out)  # the previous run's model and checkpoints
    capsys.readouterr()
    rerun = train_from_scratch(tokens, tokenizer_dir, TINY, schedule, out, weights, device="cpu")
    message = capsys.readouterr().out
    assert rerun["resumed_from_step"] == 0
    assert (
        f"the checkpoints in {out / 'checkpoints'} are from another run (it differs in "
        f"{differing}); moved them to {out / 'checkpoints.stale-1'}"
    ) in message
    assert [p.name for p in (out / "checkpoints.stale-1").iterdir()] == ["step-4"]
    train_from_scratch(tokens, tokenizer_dir, TINY, schedule, fresh, weights, device="cpu")
    assert_same_model(out, fresh)
    assert [e["step"] for e in rerun["log"]] == list(range(1, schedule["steps"] + 1))


def test_an_interrupted_run_resumes_to_the_same_model_and_whole_log(
    finished, tokens, tokenizer_dir, tmp_path
):
    assert stopped_run(tokens, tokenizer_dir, tmp_path, stop_after=5) == {"stopped_at": 5}
    resumed = train_from_scratch(tokens, tokenizer_dir, TINY, CFG, tmp_path, UNIFORM, device="cpu")
    assert resumed["resumed_from_step"] == 4
    state = torch.load(tmp_path / "checkpoints/step-6/trainer_state.pt", weights_only=True)
    assert state["fingerprint"] == resumed["fingerprint"] and state["log"] == resumed["log"]
    assert_same_model(finished[0], tmp_path)
    log = json.loads((tmp_path / "train_log.json").read_text())["log"]
    assert [entry["step"] for entry in log] == list(range(1, CFG["steps"] + 1))
    assert log == finished[1]["log"]
    # Without data_digests the streams are hashed: the same digest as their token files'.
    for directory in tokens.values():
        train_sha = read_stats(directory)["splits"]["train"]["sha256"]
        assert stream_digest(read_tokens(directory, "train")) == train_sha


# Trains CFG in a process of its own that stalls, mid-run, once step 4's checkpoint is written.
KILLED_RUN = """
import sys, time, torch
import chameleon_mix.train as trainer
torch.set_num_threads(int(sys.argv[1]))
save_checkpoint = trainer.save_checkpoint
def save_then_stall(path, *args):
    save_checkpoint(path, *args)
    if path.name == "step-4":
        time.sleep(600)
trainer.save_checkpoint = save_then_stall
tokens = {"code": sys.argv[2], "prose": sys.argv[3]}
trainer.train_from_scratch(tokens, sys.argv[4], %r, %r, sys.argv[5], %r, device="cpu")
"""


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_to_the_uninterrupted_model(
    finished, tokens, tokenizer_dir, tmp_path
):
    args = [str(torch.get_num_threads()), tokens["code"], tokens["prose"], tokenizer_dir, tmp_path]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN % (TINY, CFG, UNIFORM), *map(str, args)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 300
        while not (tmp_path / "checkpoints/step-4").exists() and time.monotonic() < deadline:
            assert child.poll() is None, "the training process ended before step 4"
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL and not (tmp_path / "model").exists()
    resumed = train_from_scratch(tokens, tokenizer_dir, TINY, CFG, tmp_path, UNIFORM, "cpu")
    assert resumed["resumed_from_step"] == 4
    assert_same_model(finished[0], tmp_path)
    assert resumed["log"] == finished[1]["log"]


@pytest.mark.parametrize(
    "stop_after, damaged, resumed_from",
    [(5, "model.safetensors", 2), (5, "trainer_state.pt", 2), (3, "trainer_state.pt", 0)],
)
def test_a_truncated_checkpoint_is_set_aside_for_the_one_before(
    stop_after, damaged, resumed_from, finished, tokens, tokenizer_dir, tmp_path, capsys
):
    stopped_run(tokens, tokenizer_dir, tmp_path, stop_after)
    newest = tmp_path / "checkpoints" / f"step-{stop_after - 1}"  # the resume point
    path = newest / damaged
    truncated = int(path.stat().st_size * 0.6)
    with open(path, "r+b") as f:
        f.truncate(truncated)
    capsys.readouterr()
    resumed = train_from_scratch(tokens, tokenizer_dir, TINY, CFG, tmp_path, UNIFORM, device="cpu")
    message = capsys.readouterr().out
    aside = tmp_path / f"{newest.name}.broken-1"
    culprit = path if damaged == "trainer_state.pt" else f"the model in {newest}"
    assert f"skipping an unreadable checkpoint: {culprit} does not read back (" in message
    assert f"moved it to {aside}" in message
    assert (aside / damaged).stat().st_size == truncated
    assert resumed["resumed_from_step"] == resumed_from
    assert_same_model(finished[0], tmp_path)
    assert resumed["log"] == finished[1]["log"]


def test_a_checkpoint_that_does_not_read_back_keeps_the_previous_one(
    finished, tokens, tokenizer_dir, tmp_path, monkeypatch
):
    """A disk that loses the end of step 6's trainer state: the job fails, step 4 stays."""
    save = torch.save

    def save_truncated(state, path):
        save(state, path)
        if state["step"] == 6:
            os.truncate(path, 100)

    monkeypatch.setattr(torch, "save", save_truncated)
    with pytest.raises(CheckpointError) as failed:
        train_from_scratch(tokens, tokenizer_dir, TINY, CFG, tmp_path, UNIFORM, device="cpu")
    assert str(failed.value).startswith(
        f"checkpoint {tmp_path / 'checkpoints/step-6'} did not read back after writing ("
    )
    assert str(failed.value).endswith(
        "does not read back (PytorchStreamReader failed reading zip archive: failed finding "
        "central directory)); is the disk full? The previous resume point is kept"
    )
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["step-2", "step-4"]
    monkeypatch.undo()
    resumed = train_from_scratch(tokens, tokenizer_dir, TINY, CFG, tmp_path, UNIFORM, device="cpu")
    assert resumed["resumed_from_step"] == 4
    assert_same_model(finished[0], tmp_path)


class Payload:
    """A custom class: a trainer state holding one is not plain data."""


class RunsCode:
    """Unpickling this object creates a directory: what a crafted trainer_state.pt could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_trainer_state_is_plain_data_and_a_pickled_object_is_refused(
    finished, tokens, tokenizer_dir, tmp_path, capsys
):
    tokenizer = load_tokenizer(tokenizer_dir)
    streams, digests = token_streams(tokens, tokenizer, "the test tokenizer")
    schedule = TrainConfig(**{**CFG, "steps": 2})
    for method, reweighter in [
        ("doremi", DoReMi(build_model(TINY, len(tokenizer), 16, tokenizer.eos_token_id), 2)),
        ("doge", DoGE(2)),
    ]:
        net = build_model(TINY, len(tokenizer), 16, tokenizer.eos_token_id)
        train(net, streams, UNIFORM, schedule, tmp_path / method, reweighter=reweighter)
        state = torch.load(
            tmp_path / method / "checkpoints/step-2/trainer_state.pt", weights_only=True
        )
        assert state["step"] == 2 and len(state["reweighter"]["trajectory"]) == 2
        assert state["fingerprint"]["reweighter"]["method"] == method

    out, marker = tmp_path / "crafted", tmp_path / "code-ran"
    shutil.copytree(finished[0], out)
    crafted = out / "checkpoints/step-6/trainer_state.pt"
    torch.save({"step": 6, "payload": Payload()}, crafted)
    with pytest.raises(CheckpointError) as refused:
        read_checkpoint(crafted.parent)
    assert str(refused.value) == (
        f"{crafted} is not a plain trainer state: it would unpickle test_resume.Payload, which "
        "could run code, so it was not loaded"
    )
    torch.save({"step": 6, "payload": RunsCode(marker)}, crafted)
    capsys.readouterr()
    resumed = train_from_scratch(tokens, tokenizer_dir, TINY, CFG, out, UNIFORM, device="cpu")
    log = capsys.readouterr().out
    assert (
        f"skipping an unreadable checkpoint: {crafted} is not a plain trainer state: it would "
        f"unpickle posix.mkdir, which could run code, so it was not loaded; moved it to "
        f"{out / 'step-6.broken-1'}"
    ) in log
    assert not marker.exists()  # the crafted file ran nothing
    assert resumed["resumed_from_step"] == 2
    assert_same_model(finished[0], out)


def test_a_finetune_of_changed_pretrained_weights_starts_afresh(
    tokens, tokenizer_dir, tmp_path, capsys
):
    """The workflow retrains a pretrained model in place: same path and config, new weights."""
    tokenizer = load_tokenizer(tokenizer_dir)
    pretrained = tmp_path / "pretrained"
    tokenizer.save_pretrained(pretrained)

    def pretrain(seed):
        torch.manual_seed(seed)
        model = build_model(TINY, len(tokenizer), 32, tokenizer.eos_token_id)
        model.save_pretrained(pretrained)

    schedule = {**CFG, "checkpoints": []}
    pretrain(0)
    finetune(tokens, pretrained, schedule, tmp_path / "run", UNIFORM, "cpu", stop_after=3)
    pretrain(1)
    capsys.readouterr()
    rerun = finetune(tokens, pretrained, schedule, tmp_path / "run", UNIFORM, "cpu")
    assert "(it differs in initial_weights)" in capsys.readouterr().out
    assert rerun["resumed_from_step"] == 0
    finetune(tokens, pretrained, schedule, tmp_path / "fresh", UNIFORM, "cpu")
    assert_same_model(tmp_path / "run", tmp_path / "fresh")
