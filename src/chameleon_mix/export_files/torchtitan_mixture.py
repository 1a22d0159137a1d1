"""This mixture as a torchtitan (0.3) dataloader: each domain's token files as a source of
packed ``seq_len``-token samples, drawn by torchtitan's own ``InterleavedDataset`` with the
domains' token shares (every sample is ``seq_len`` tokens, so sample shares are token shares).

torchtitan 0.3 reads text through Hugging Face datasets and tokenizes it itself; these sources
read the already tokenized files instead (the Megatron parts' ``.bin`` or OLMo-core token
files: raw ids of ``dtype``), so the run sees exactly the tokens the budget was checked on.
The settings are in ``torchtitan_mixture.json`` beside this file. Put this folder on
``PYTHONPATH`` and name a config function that applies the mixture to yours::

    # my_run.py
    from torchtitan.models.llama3.config_registry import llama3_8b
    from torchtitan_mixture import with_mixture

    def llama3_8b_mixture():
        return with_mixture(llama3_8b())

    torchrun --nproc-per-node 8 -m torchtitan.train --module my_run --config llama3_8b_mixture

``with_mixture`` sets ``training.steps`` to the run's tokens over the global batch.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.distributed.checkpoint.stateful import Stateful
from torch.utils.data import IterableDataset
from torchtitan.components.dataloader import ParallelAwareDataloader
from torchtitan.hf_datasets.interleaved import InterleavedDataset

SETTINGS_PATH = str(Path(__file__).with_suffix(".json"))


class TokenStreamSource(IterableDataset, Stateful):
    """One domain's token files as samples of ``seq_len`` input and label tokens: window k of
    a file is its tokens ``[k·seq_len, (k+1)·seq_len]`` (consecutive windows share one token,
    as the label of one is the input of the next). Data-parallel rank r takes the windows
    ``k ≡ r (mod world)``; each epoch reads them in a new seeded order, and ``reloop`` (called
    by the interleaver, or by the source itself when ``infinite``) starts the next epoch."""

    def __init__(self, name, paths, dtype, eos_id, seq_len, dp_rank, dp_world_size, seed, infinite):
        self.name, self.seq_len, self.eos_id = name, seq_len, eos_id
        self.paths, self.dtype = list(paths), np.dtype(dtype)
        self.seed, self.infinite = seed, infinite
        sizes = [Path(p).stat().st_size // self.dtype.itemsize for p in self.paths]
        self._ends = np.cumsum([max(s - 1, 0) // seq_len for s in sizes])
        self._windows = np.arange(dp_rank, int(self._ends[-1]), dp_world_size)
        if not len(self._windows):
            raise ValueError(f"{name}: fewer than {seq_len + 1} tokens per data-parallel rank")
        self._files = None
        self._epoch, self._index = 0, 0

    def _order(self):
        rng = np.random.default_rng([self.seed, self._epoch])
        return self._windows[rng.permutation(len(self._windows))]

    def _window(self, k):
        if self._files is None:
            self._files = [np.memmap(p, dtype=self.dtype, mode="r") for p in self.paths]
        f = int(np.searchsorted(self._ends, k, side="right"))
        start = (k - (int(self._ends[f - 1]) if f else 0)) * self.seq_len
        return np.asarray(self._files[f][start : start + self.seq_len + 1], dtype=np.int64)

    def _positions(self, inputs):
        """Each token's position within its document (documents end in EOS)."""
        starts = np.zeros(len(inputs), dtype=np.int64)
        after_eos = np.flatnonzero(inputs[:-1] == self.eos_id) + 1
        starts[after_eos] = after_eos
        return np.arange(len(inputs)) - np.maximum.accumulate(starts)

    def __iter__(self):
        while True:
            order = self._order()
            while self._index < len(order):
                window = self._window(int(order[self._index]))
                self._index += 1
                inputs = window[:-1]
                yield (
                    {
                        "input": torch.from_numpy(inputs),
                        "positions": torch.from_numpy(self._positions(inputs)),
                    },
                    torch.from_numpy(window[1:]),
                )
            if not self.infinite:
                return
            self.reloop()

    def reloop(self):
        self._epoch, self._index = self._epoch + 1, 0

    def state_dict(self):
        return {"epoch": self._epoch, "index": self._index}

    def load_state_dict(self, state_dict):
        self._epoch, self._index = state_dict["epoch"], state_dict["index"]


class MixtureDataLoader(ParallelAwareDataloader):
    """The domains' ``TokenStreamSource``s interleaved by torchtitan's ``InterleavedDataset``
    with the token shares as weights."""

    @dataclass(kw_only=True, slots=True)
    class Config(ParallelAwareDataloader.Config):
        settings: str = SETTINGS_PATH
        """The mixture's JSON: sources (domain -> token files), weights, dtype, eos_id, tokens."""
        seed: int = 42
        infinite: bool = True
        """Re-read a domain when its tokens run out (its epochs); the run stops at its steps."""

    def __init__(
        self,
        config,
        *,
        dp_world_size,
        dp_rank,
        seq_len,
        local_batch_size,
        snapshot_every_n_steps=1,
        **kwargs,
    ):
        settings = json.loads(Path(config.settings).read_text())
        sources = [
            TokenStreamSource(
                name,
                paths,
                settings["dtype"],
                settings["eos_id"],
                seq_len,
                dp_rank,
                dp_world_size,
                config.seed + i,
                config.infinite,
            )
            for i, (name, paths) in enumerate(settings["sources"].items())
        ]
        dataset = InterleavedDataset(
            datasets=sources,
            weights=[settings["weights"][s.name] for s in sources],
            seed=config.seed,
        )
        super().__init__(
            dataset,
            dp_rank=dp_rank,
            dp_world_size=dp_world_size,
            num_workers=config.num_workers,
            persistent_workers=config.persistent_workers,
            pin_memory=config.pin_memory,
            prefetch_factor=config.prefetch_factor,
            snapshot_every_n_steps=snapshot_every_n_steps,
            batch_size=local_batch_size,
        )


def steps(global_batch_size: int, seq_len: int, settings: str = SETTINGS_PATH) -> int:
    """Training steps that read the run's tokens at this global batch (in samples)."""
    tokens = json.loads(Path(settings).read_text())["tokens"]
    return math.ceil(tokens / (global_batch_size * seq_len))


def with_mixture(config, global_batch_size: int | None = None):
    """``config`` (a torchtitan Trainer config) reading this mixture for the run's tokens:
    its dataloader, and ``training.steps`` at ``global_batch_size`` samples a step (default:
    the config's ``training.global_batch_size``, which must then be set)."""
    batch = global_batch_size or config.training.global_batch_size
    if batch is None or batch < 1:
        raise ValueError(
            "set training.global_batch_size (or pass global_batch_size): the steps that read "
            "the run's tokens depend on it"
        )
    config.dataloader = MixtureDataLoader.Config()
    config.training.steps = steps(batch, config.training.seq_len)
    return config
