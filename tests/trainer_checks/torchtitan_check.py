"""torchtitan's dataloader over the export's mixture: ``torchtitan_mixture.py`` (the export's
module) builds its ``MixtureDataLoader`` through torchtitan's ``Configurable.build`` and
torchtitan's ``InterleavedDataset``; N batches are drawn.

    python torchtitan_check.py EXPORT SEQ_LEN BATCHES BATCH_SIZE   # prints JSON
"""

import json
import sys
from pathlib import Path

import numpy as np
from documents import domain_of_windows

export, seq_len, batches, batch_size = Path(sys.argv[1]), *map(int, sys.argv[2:5])
sys.path.insert(0, str(export))
import torchtitan  # noqa: E402
import torchtitan_mixture  # noqa: E402
import tyro  # noqa: E402

# The trainer's config manager parses every config with tyro; then the trainer builds the
# dataloader with these keywords (torchtitan/trainer.py).
config = tyro.cli(
    torchtitan_mixture.MixtureDataLoader.Config,
    args=["--seed", "7"],
    default=torchtitan_mixture.MixtureDataLoader.Config(),
)
assert config.seed == 7
loader = config.build(
    dp_world_size=1,
    dp_rank=0,
    tokenizer=None,
    seq_len=seq_len,
    local_batch_size=batch_size,
    snapshot_every_n_steps=1,
)
domain_of = domain_of_windows(export, seq_len)
settings = json.loads((export / "torchtitan_mixture.json").read_text())
tokens = dict.fromkeys(settings["weights"], 0)
for i, (inputs, labels) in enumerate(loader):
    if i == batches:
        break
    assert inputs["input"].shape == labels.shape == (batch_size, seq_len)
    assert (inputs["input"][:, 1:] == labels[:, :-1]).all()
    for row in inputs["input"].numpy():
        tokens[domain_of[row.astype(np.int64).tobytes()]] += seq_len


class Training:
    global_batch_size, seq_len, steps = 8, seq_len, None


class Trainer:
    training, dataloader = Training(), None


config = torchtitan_mixture.with_mixture(Trainer())
print(
    json.dumps(
        {
            "tokens": tokens,
            "steps": config.training.steps,
            "dataloader": type(config.dataloader).__qualname__,
            "torchtitan": getattr(torchtitan, "__version__", None),
        }
    )
)
