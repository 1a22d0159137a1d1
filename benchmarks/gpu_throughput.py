"""Training and embedding throughput (tokens/s) and MFU, the project's path against plain HF.

    python benchmarks/gpu_throughput.py             # on a GPU: 82M, 124M, 684M at seq 512
    python benchmarks/gpu_throughput.py --ranks 2   # also data-parallel over 2 ranks (torchrun)

Training, per model size: ``reference`` is the plain Hugging Face form the official code uses
(GPT-2 with eager attention, float32, the full logits into the cross-entropy, unfused AdamW);
``project`` is this project's trainer step with its defaults for the device: on CUDA bf16
autocast, SDPA attention, a padded vocabulary, the chunked loss, ``torch.compile`` and fused
AdamW (:func:`chameleon_mix.train.training_loss`). On a CPU (no GPU) the sizes are tiny so the
script can be tried anywhere, and ``project_compiled`` adds the compiled form the CPU does not
use by default. ``--ranks N`` runs the project's step under ``torchrun`` on N ranks (NCCL on N
GPUs, gloo on the CPU), each with the one-rank batch: the tokens/s are the global rate.

Embedding (the 82M proxy): ``reference`` is the HF float32 eager forward of the whole model,
its hidden states of the embedding layer averaged; ``project`` is
:func:`chameleon_mix.embed.embed_windows` on the truncated model (bf16 on CUDA).

MFU = tokens/s x FLOPs per token / the GPU's dense bf16 peak (both paths against the same
peak), FLOPs per token = 6 N + 12 n_layer d T for training and a third of it for a forward,
with N every parameter that multiplies (the blocks and the LM head; not the position
embedding). Timed steps follow warm-up steps (compilation), between CUDA synchronisations.
Results: ``benchmarks/results/<device>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from chameleon_mix import distributed
from chameleon_mix.embed import embed_windows, middle_layer, truncate_to_layer
from chameleon_mix.flops import block_parameters
from chameleon_mix.model import build_model, model_spec
from chameleon_mix.train import TrainConfig, make_optimizer, training_loss

RESULTS = Path(__file__).resolve().parent / "results"
# Dense bf16 peak FLOP/s (vendor data sheets, SXM parts); an unknown GPU gets no MFU.
PEAK_BF16 = {"H200": 989e12, "H100": 989e12, "A100": 312e12}
GPU_SIZES = {"82M": 32, "124M": 32, "684M": 16}  # size -> batch (rows of 512 tokens)
CPU_SIZES = {"tiny": 8}
GPT2_VOCAB = 50257


def flops_per_token(spec: dict, vocab: int, seq_len: int, training: bool = True) -> float:
    forward = 2 * (block_parameters(spec) + vocab * spec["n_embd"])
    forward += 4 * spec["n_layer"] * spec["n_embd"] * seq_len  # attention scores and values
    return 3 * forward if training else forward


def peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_BF16.items() if key in name), None)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reference_step(model, optimizer, batch):
    logits = model(batch[:, :-1]).logits
    loss = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)), batch[:, 1:].reshape(-1)
    )
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def time_steps(step, batches, device, warmup: int) -> float:
    """Seconds per step over ``batches`` after ``warmup`` untimed steps."""
    for batch in batches[:warmup]:
        step(batch)
    synchronize(device)
    start = time.perf_counter()
    for batch in batches[warmup:]:
        step(batch)
    synchronize(device)
    return (time.perf_counter() - start) / (len(batches) - warmup)


def train_throughput(size, form, rows, seq_len, vocab, device, steps, warmup) -> dict:
    torch.manual_seed(0)
    spec = model_spec(size)
    model = build_model(spec, vocab, seq_len, 0)
    rng = np.random.default_rng(distributed.rank())
    batches = [
        torch.from_numpy(rng.integers(0, vocab, (rows, seq_len + 1))).to(device)
        for _ in range(warmup + steps)
    ]
    if form == "reference":
        model.set_attn_implementation("eager")
        model.to(device).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.95))
        seconds = time_steps(lambda b: reference_step(model, optimizer, b), batches, device, warmup)
    else:
        cfg = TrainConfig(compile=True if form == "project_compiled" else None)
        model.to(device).train()
        net, _ = training_loss(model, cfg, device)
        optimizer = make_optimizer(model, cfg, device)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")

        def step(batch):
            with autocast:
                loss = net(batch, reduction="mean")
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        seconds = time_steps(step, batches, device, warmup)
    tokens_per_s = distributed.world_size() * rows * seq_len / seconds
    flops = flops_per_token(spec, vocab, seq_len)
    peak = peak_flops(device)
    return {
        "tokens_per_s": tokens_per_s,
        "flops_per_token": flops,
        "mfu": None if peak is None else tokens_per_s * flops / (peak * distributed.world_size()),
        "rows": rows,
        "seq_len": seq_len,
        "ranks": distributed.world_size(),
    }


def embed_throughput(size, form, rows, seq_len, vocab, device, batches, warmup) -> dict:
    torch.manual_seed(0)
    spec = model_spec(size)
    model = build_model(spec, vocab, seq_len, 0)
    layer = middle_layer(spec["n_layer"])
    rng = np.random.default_rng(0)
    windows = [rng.integers(0, vocab, seq_len) for _ in range(rows * (warmup + batches))]
    if form == "reference":
        model.set_attn_implementation("eager")
        model.to(device).eval()

        @torch.no_grad()
        def embed(chunk):
            ids = torch.from_numpy(np.stack(chunk)).to(device)
            hidden = model(ids, output_hidden_states=True).hidden_states[layer]
            return hidden.mean(1).cpu().numpy()

    else:
        trunk = truncate_to_layer(model, layer)

        def embed(chunk):
            return embed_windows(trunk, chunk, 0, batch_size=rows, device=device)

    chunks = [windows[i : i + rows] for i in range(0, len(windows), rows)]
    seconds = time_steps(embed, chunks, device, warmup)
    tokens_per_s = rows * seq_len / seconds
    flops = flops_per_token({**spec, "n_layer": layer}, 0, seq_len, training=False)
    peak = peak_flops(device)
    return {
        "tokens_per_s": tokens_per_s,
        "flops_per_token": flops,
        "mfu": None if peak is None else tokens_per_s * flops / peak,
        "rows": rows,
        "seq_len": seq_len,
        "layer": layer,
    }


def data_parallel(ranks: int, args) -> dict:
    """The project's training step on ``ranks`` ranks under torchrun: rank 0's figures."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ranks.json"
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += [f"--nproc_per_node={ranks}", __file__, "--worker", str(out)]
        command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, torch.get_num_threads() // ranks))}
        subprocess.run(command, check=True, env=env)
        return json.loads(out.read_text())


def settings(device: torch.device) -> tuple[dict, int, int]:
    """(size -> rows, seq_len, vocab) for the device."""
    if device.type == "cuda":
        return GPU_SIZES, 512, GPT2_VOCAB
    return CPU_SIZES, 64, 512


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ranks", type=int, default=1, help="also time N data-parallel ranks")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps (compilation)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a torchrun rank of --ranks
    args = parser.parse_args()
    device = distributed.setup()
    sizes, seq_len, vocab = settings(device)
    if args.worker:
        figures = {
            size: train_throughput(
                size, "project", rows, seq_len, vocab, device, args.steps, args.warmup
            )
            for size, rows in sizes.items()
        }
        if distributed.is_main():
            Path(args.worker).write_text(json.dumps(figures))
        distributed.shutdown()
        return

    forms = ["reference", "project"] + (["project_compiled"] if device.type == "cpu" else [])
    results: dict = {"train": {}, "embed": {}}
    for size, rows in sizes.items():
        results["train"][size] = {}
        for form in forms:
            figures = train_throughput(
                size, form, rows, seq_len, vocab, device, args.steps, args.warmup
            )
            results["train"][size][form] = figures
            print(f"train {size} {form}: {figures['tokens_per_s']:,.0f} tokens/s", flush=True)
            if device.type == "cuda":
                torch.cuda.empty_cache()
    embed_size = "82M" if device.type == "cuda" else "tiny"
    embed_rows = 64 if device.type == "cuda" else 16
    for form in ("reference", "project"):
        figures = embed_throughput(
            embed_size, form, embed_rows, seq_len, vocab, device, args.steps, args.warmup
        )
        results["embed"].setdefault(embed_size, {})[form] = figures
        print(f"embed {embed_size} {form}: {figures['tokens_per_s']:,.0f} tokens/s", flush=True)
    for kind in results.values():
        for forms_of_size in kind.values():
            base = forms_of_size["reference"]["tokens_per_s"]
            for figures in forms_of_size.values():
                figures["speedup_over_reference"] = figures["tokens_per_s"] / base
    if args.ranks > 1:
        results["data_parallel"] = {"ranks": args.ranks, "train": data_parallel(args.ranks, args)}
        for size, figures in results["data_parallel"]["train"].items():
            one = results["train"][size]["project"]["tokens_per_s"]
            figures["speedup_over_one_rank"] = figures["tokens_per_s"] / one
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    results["environment"] = {
        "device": name,
        "peak_bf16_flops": peak_flops(device),
        "cpu_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{re.sub(r'[^A-Za-z0-9]+', '-', name).strip('-').lower()}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
