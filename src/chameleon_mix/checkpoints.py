"""Checkpoints of a training run: what makes a run this run (its fingerprint), and checkpoints
that appear only once they read back, hold plain data, and are resumed only by the same run.

Checkpoints (``out_dir/checkpoints/step-N``) hold the model, the trainer state (optimizer,
step, tokens seen, the loss log so far, the reweighter's state) as plain data that
``torch.load(weights_only=True)`` reads, and the run's fingerprint (:func:`run_fingerprint`).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import re
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .io import atomic_path

if TYPE_CHECKING:
    from .train import Reweighter, TrainConfig


class CheckpointError(Exception):
    """A checkpoint that does not read back: truncated, damaged, or not plain data."""


def state_digest(model: torch.nn.Module) -> str:
    """sha256 of a model's parameters and buffers (names, dtypes, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()


def stream_digest(stream: np.ndarray) -> str:
    """sha256 of a token stream's little-endian bytes: a memory-mapped token file's sha256."""
    return hashlib.sha256(np.ascontiguousarray(stream, stream.dtype.newbyteorder("<"))).hexdigest()


def run_fingerprint(
    model: torch.nn.Module,
    weights: dict[str, float],
    cfg: TrainConfig,
    tokenizer,
    data_digests: dict[str, str],
    reweighter: Reweighter | None,
    metadata: dict | None,
) -> dict:
    """What makes a training run this run, as plain JSON data; checkpoints resume only a run
    with an equal fingerprint.

    The initial weights' digest covers what the seed initialised and a finetune's pretrained
    model; the data digests, the token streams; the model config leaves out where the model was
    loaded from and the transformers version, which change nothing that is computed.
    """
    from .tokens import tokenizer_digest

    config = model.config.to_dict()
    for key in ("_name_or_path", "transformers_version"):
        config.pop(key, None)
    run = {
        "schedule": asdict(cfg),
        "model": config,
        "initial_weights": state_digest(model),
        "tokenizer": None if tokenizer is None else tokenizer_digest(tokenizer),
        "data": data_digests,
        "weights": weights,
        "reweighter": None if reweighter is None else reweighter.settings(),
        "metadata": metadata or {},
    }
    return json.loads(json.dumps(run))  # tuples become lists, as they come back from a checkpoint


def differences(saved, current, key: str = "") -> list[str]:
    """The dotted keys at which two fingerprints differ."""
    if isinstance(saved, dict) and isinstance(current, dict):
        return [
            difference
            for name in sorted(set(saved) | set(current))
            for difference in differences(
                saved.get(name, "<missing>"), current.get(name, "<missing>"), f"{key}{name}."
            )
        ]
    return [] if saved == current else [key.rstrip(".") or "fingerprint"]


def checkpoint_step(path: Path) -> int:
    return int(path.name.removeprefix("step-"))


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    done = [
        p
        for p in checkpoint_dir.glob("step-*")
        if p.name.removeprefix("step-").isdigit() and (p / "trainer_state.pt").is_file()
    ]
    return max(done, key=checkpoint_step, default=None)


def move_aside(path: Path, where: Path, label: str) -> Path:
    """Rename ``path`` to the first free ``where/<name>.<label>-N``; nothing is deleted."""
    n = 1
    while (aside := where / f"{path.name}.{label}-{n}").exists():
        n += 1
    path.rename(aside)
    return aside


def first_sentence(err: Exception) -> str:
    """An error's first sentence (torch's and safetensors' go on with generic advice)."""
    return str(err).split(". ")[0].strip() or type(err).__name__


def read_checkpoint(path: Path) -> tuple[dict, dict]:
    """Checkpoint ``path``'s model weights and trainer state; :class:`CheckpointError` (naming
    the file and why) when either does not read back whole, or the state is not plain data."""
    from safetensors import SafetensorError
    from transformers import AutoModelForCausalLM

    state_file = path / "trainer_state.pt"
    try:
        state = torch.load(state_file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        refused = re.search(r"GLOBAL (\S+)", str(err))
        what = refused.group(1) if refused else "objects other than tensors, numbers and lists"
        raise CheckpointError(
            f"{state_file} is not a plain trainer state: it would unpickle {what}, which could "
            "run code, so it was not loaded"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise CheckpointError(f"{state_file} does not read back ({first_sentence(err)})") from None
    if not isinstance(state, dict) or not {"step", "optimizer", "tokens"} <= state.keys():
        raise CheckpointError(f"{state_file} is not a trainer state (no step, optimizer, tokens)")
    try:
        model, info = AutoModelForCausalLM.from_pretrained(path, output_loading_info=True)
    except (OSError, RuntimeError, ValueError, SafetensorError) as err:
        raise CheckpointError(
            f"the model in {path} does not read back ({first_sentence(err)})"
        ) from None
    lacking = sorted(info["missing_keys"]) + [k for k, *_ in info["mismatched_keys"]]
    if lacking:
        raise CheckpointError(f"the model in {path} lacks or misshapes {', '.join(lacking)}")
    return model.state_dict(), state


def save_checkpoint(path: Path, model, tokenizer, state: dict) -> None:
    """Write checkpoint ``path``; it appears only once it has been read back whole."""
    with atomic_path(path, directory=True) as tmp:
        model.save_pretrained(tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        torch.save(state, tmp / "trainer_state.pt")
        try:
            read_checkpoint(tmp)
        except CheckpointError as err:
            raise CheckpointError(
                f"checkpoint {path} did not read back after writing ({err}); is the disk full? "
                "The previous resume point is kept"
            ) from None


def resume_point(out_dir: Path, fingerprint: dict) -> tuple[Path, dict, dict] | None:
    """The newest readable checkpoint of the run with ``fingerprint``: (path, model weights,
    trainer state), or None to start afresh.

    A checkpoint that does not read back is moved aside and the one before it tried; when the
    newest readable one belongs to another run, all of them are moved aside.
    """
    checkpoint_dir = out_dir / "checkpoints"
    while (path := latest_checkpoint(checkpoint_dir)) is not None:
        try:
            weights, state = read_checkpoint(path)
        except CheckpointError as err:
            aside = move_aside(path, out_dir, "broken")
            print(f"skipping an unreadable checkpoint: {err}; moved it to {aside}", flush=True)
            continue
        changed = differences(state.get("fingerprint"), fingerprint)  # None: an older version
        if changed:
            aside = move_aside(checkpoint_dir, out_dir, "stale")
            print(
                f"the checkpoints in {checkpoint_dir} are from another run (it differs in "
                f"{', '.join(changed)}); moved them to {aside} (delete it when not needed) and "
                "starting afresh",
                flush=True,
            )
            return None
        return path, weights, state
    return None
