"""Data-parallel training: two gloo ranks under torchrun equal one process, on a tiny real model.

One torchrun job (two CPU processes) runs a plain run, a run stopped and resumed, a DoReMi run
and a DoGE run; each rank reports the rows it trained on, its loss log, its weight trajectories
and every file it wrote. The speed-ups that are on by default on CUDA (compile, a padded
vocabulary, the chunked loss) are checked against the plain computation on the CPU.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from chameleon_mix.doge import DoGE
from chameleon_mix.doremi import DoReMi
from chameleon_mix.model import build_model, load_model
from chameleon_mix.tokenizer import load_tokenizer
from chameleon_mix.train import TrainConfig, sample_batch, token_streams, train

TINY = {"n_layer": 2, "n_head": 2, "n_embd": 32}
CFG = {
    "steps": 4,
    "batch_size": 4,
    "micro_batch_size": 1,  # two micro-batches per rank and step: no_sync, then sync
    "seq_len": 16,
    "lr": 3e-3,
    "min_lr": 3e-4,
    "warmup_steps": 2,
    "checkpoint_every": 2,
    "log_every": 3,
}
WEIGHTS = {"code": 0.3, "prose": 0.7}

# Run by every rank: the four runs, then a JSON report per rank.
WORKER = """
import json, os, sys
import torch
from chameleon_mix import distributed
from chameleon_mix.doge import DoGE
from chameleon_mix.doremi import DoReMi
from chameleon_mix.model import build_model
from chameleon_mix.tokenizer import load_tokenizer
from chameleon_mix.train import TrainConfig, token_streams, train

args = json.loads(sys.argv[1])
torch.set_num_threads(1)
runs = args["runs"]
written = []  # every file or directory this process created, renamed or deleted under runs

def audit(event, details):
    if event == "open" and isinstance(details[0], str) and details[1] not in (None, "r", "rb"):
        written.append(details[0])
    elif event in ("os.mkdir", "os.rename", "os.replace", "os.remove", "shutil.rmtree"):
        written.append(str(details[0]))

sys.addaudithook(audit)
tokenizer = load_tokenizer(args["tokenizer"])
streams, digests = token_streams(args["tokens"], tokenizer, "the test tokenizer")
cfg = TrainConfig(**args["cfg"])

def run(name, reweighter=None, **kwargs):
    torch.manual_seed(0)
    net = build_model(args["model"], len(tokenizer), cfg.seq_len, tokenizer.eos_token_id)
    rows = []
    hook = net.transformer.wte.register_forward_pre_hook(lambda m, a: rows.append(a[0].tolist()))
    summary = train(net, streams, args["weights"], cfg, f"{runs}/{name}", device="cpu",
                    reweighter=reweighter, data_digests=digests, **kwargs)
    hook.remove()
    return summary, rows

def reference():
    torch.manual_seed(1)
    return build_model(args["model"], len(tokenizer), cfg.seq_len, tokenizer.eos_token_id)

plain, rows = run("plain")
stopped, _ = run("resumed", stop_after=3)
resumed, _ = run("resumed")
doremi, _ = run("doremi", DoReMi(reference(), 2))
doge, _ = run("doge", DoGE(2))
report = {
    "world": distributed.world_size(),
    "log": plain["log"],
    "rows": rows,
    "stopped": stopped,
    "resumed_from": resumed["resumed_from_step"],
    "resumed_log": resumed["log"],
    "doremi": doremi["reweighting"]["trajectory"],
    "doge": doge["reweighting"]["trajectory"],
    "written": sorted({w for w in written if w.startswith(runs)}),
}
with open(f"{args['report']}/rank-{distributed.rank()}.json", "w") as f:
    json.dump(report, f)
"""


@pytest.fixture(scope="module")
def two_ranks(tokens, tokenizer_dir, tmp_path_factory):
    """The worker run by ``torchrun --nproc_per_node=2`` (gloo): each rank's report."""
    root = tmp_path_factory.mktemp("ddp")
    (root / "report").mkdir()
    (root / "worker.py").write_text(WORKER)
    args = {
        "runs": str(root / "runs"),
        "report": str(root / "report"),
        "tokens": {name: str(path) for name, path in tokens.items()},
        "tokenizer": str(tokenizer_dir),
        "model": TINY,
        "cfg": CFG,
        "weights": WEIGHTS,
    }
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    command += ["--nproc_per_node=2", str(root / "worker.py"), json.dumps(args)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    print(f"torchrun, 2 ranks: {time.perf_counter() - started:.1f} s")
    reports = [json.loads((root / "report" / f"rank-{r}.json").read_text()) for r in (0, 1)]
    return root / "runs", reports


def one_process(tokens, tokenizer_dir, out, reweighter=None, **changes):
    """The same run in this process: one rank."""
    tokenizer = load_tokenizer(tokenizer_dir)
    streams, digests = token_streams(tokens, tokenizer, "the test tokenizer")
    torch.manual_seed(0)
    net = build_model(TINY, len(tokenizer), CFG["seq_len"], tokenizer.eos_token_id)
    cfg = TrainConfig(**{**CFG, **changes})
    summary = train(
        net, streams, WEIGHTS, cfg, out, device="cpu", reweighter=reweighter, data_digests=digests
    )
    return summary, net


def reference_model(tokenizer_dir):
    tokenizer = load_tokenizer(tokenizer_dir)
    torch.manual_seed(1)
    return build_model(TINY, len(tokenizer), CFG["seq_len"], tokenizer.eos_token_id)


@pytest.fixture(scope="module")
def single(tokens, tokenizer_dir, tmp_path_factory):
    """The plain run in one process: its summary and model."""
    return one_process(tokens, tokenizer_dir, tmp_path_factory.mktemp("single"))


@pytest.mark.slow
def test_two_ranks_train_as_one_process(two_ranks, single):
    runs, (rank0, rank1) = two_ranks
    assert rank0["world"] == rank1["world"] == 2
    single, net = single
    assert [e["step"] for e in rank0["log"]] == list(range(1, CFG["steps"] + 1))
    for key in ("loss", "grad_norm"):
        one = [e[key] for e in single["log"]]
        np.testing.assert_allclose([e[key] for e in rank0["log"]], one, rtol=1e-5)
        np.testing.assert_allclose([e[key] for e in rank1["log"]], one, rtol=1e-5)
    trained = load_model(runs / "plain" / "model").state_dict()
    for name, value in net.state_dict().items():
        torch.testing.assert_close(trained[name], value, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_ranks_take_disjoint_rows_that_form_the_global_batch(two_ranks, tokens, tokenizer_dir):
    _, reports = two_ranks
    streams, _ = token_streams(tokens, load_tokenizer(tokenizer_dir), "the test tokenizer")
    probs = np.array(list(WEIGHTS.values()))
    half = CFG["batch_size"] // 2
    for step in range(CFG["steps"]):
        rng = np.random.default_rng([0, step])
        batch, _ = sample_batch(list(streams.values()), probs, CFG["batch_size"], 16, rng)
        for rank, report in enumerate(reports):
            # micro_batch_size 1: one forward per row, two per rank and step
            taken = [row for forward in report["rows"][2 * step : 2 * step + 2] for row in forward]
            assert taken == batch[rank * half : (rank + 1) * half, :-1].tolist()


@pytest.mark.slow
def test_only_rank_0_writes_and_a_stopped_run_resumes_to_the_uninterrupted_one(two_ranks):
    runs, (rank0, rank1) = two_ranks
    assert rank1["written"] == []
    assert any(w.startswith(str(runs / "plain" / "checkpoints")) for w in rank0["written"])
    assert (runs / "plain" / "model").is_dir() and (runs / "plain" / "train_log.json").is_file()
    assert rank0["stopped"] == rank1["stopped"] == {"stopped_at": 3}
    assert rank0["resumed_from"] == rank1["resumed_from"] == 2  # both from step 2's checkpoint
    assert rank0["resumed_log"] == rank0["log"]
    resumed = load_model(runs / "resumed" / "model").state_dict()
    for name, value in load_model(runs / "plain" / "model").state_dict().items():
        assert torch.equal(resumed[name], value), name


@pytest.mark.slow
@pytest.mark.parametrize("method", ["doremi", "doge"])
def test_reweighted_trajectories_agree_on_both_ranks_and_with_one_process(
    method, two_ranks, tokens, tokenizer_dir, tmp_path
):
    _, (rank0, rank1) = two_ranks
    assert rank0[method] == rank1[method]  # identical weights on every rank
    reweighter = DoReMi(reference_model(tokenizer_dir), 2) if method == "doremi" else DoGE(2)
    single, _ = one_process(tokens, tokenizer_dir, tmp_path, reweighter)
    assert len(rank0[method]) == CFG["steps"]
    np.testing.assert_allclose(rank0[method], single["reweighting"]["trajectory"], rtol=1e-5)


def test_a_padded_vocabulary_and_chunked_loss_change_no_result(
    single, tokens, tokenizer_dir, tmp_path
):
    """pad_vocab and loss_chunk (on by default on CUDA): the same losses as the plain loss; the
    saved model has the tokenizer's vocabulary, and a stopped padded run resumes exactly."""
    plain = single[0]
    fast = {"pad_vocab": True, "loss_chunk": 7}
    padded, net = one_process(tokens, tokenizer_dir, tmp_path / "padded", **fast)
    vocabulary = len(load_tokenizer(tokenizer_dir))
    assert vocabulary % 64 and net.config.vocab_size == vocabulary
    saved = load_model(tmp_path / "padded" / "checkpoints" / "step-4")
    assert saved.config.vocab_size == vocabulary
    np.testing.assert_allclose(
        [e["loss"] for e in padded["log"]], [e["loss"] for e in plain["log"]], rtol=1e-5
    )
    tokenizer = load_tokenizer(tokenizer_dir)
    streams, digests = token_streams(tokens, tokenizer, "the test tokenizer")
    cfg = TrainConfig(**{**CFG, **fast})
    for stop_after in (3, None):
        torch.manual_seed(0)
        model = build_model(TINY, vocabulary, CFG["seq_len"], tokenizer.eos_token_id)
        resumed = train(
            model, streams, WEIGHTS, cfg, tmp_path / "resumed", device="cpu",
            stop_after=stop_after, data_digests=digests,
        )  # fmt: skip
    assert resumed["resumed_from_step"] == 2 and resumed["log"] == padded["log"]
    for name, value in net.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


@pytest.mark.slow
def test_compiled_training_gives_the_eager_losses(tokens, tokenizer_dir, tmp_path):
    """torch.compile (on by default on CUDA) on the CPU: about 25 s, mostly compiling."""
    eager, _ = one_process(tokens, tokenizer_dir, tmp_path / "eager", steps=2, compile=False)
    compiled, _ = one_process(tokens, tokenizer_dir, tmp_path / "compiled", steps=2, compile=True)
    np.testing.assert_allclose(
        [e["loss"] for e in compiled["log"]], [e["loss"] for e in eager["log"]], rtol=1e-4
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_cuda_defaults_train_like_the_plain_loop(tokens, tokenizer_dir, tmp_path):
    """On CUDA: compile, padding and the chunked loss on (the defaults) against all off."""
    off = {"compile": False, "pad_vocab": False, "loss_chunk": 0}
    tokenizer = load_tokenizer(tokenizer_dir)
    streams, digests = token_streams(tokens, tokenizer, "the test tokenizer")
    logs = []
    for changes in ({}, off):
        torch.manual_seed(0)
        net = build_model(TINY, len(tokenizer), CFG["seq_len"], tokenizer.eos_token_id)
        cfg = TrainConfig(**{**CFG, **changes})
        out = tmp_path / str(len(logs))
        logs.append(train(net, streams, WEIGHTS, cfg, out, device="cuda", data_digests=digests))
    np.testing.assert_allclose(
        [e["loss"] for e in logs[0]["log"]], [e["loss"] for e in logs[1]["log"]], rtol=2e-2
    )
