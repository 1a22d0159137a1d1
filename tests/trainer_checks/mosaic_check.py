"""MosaicML streaming reads the export's streams as its README says: ``write_mds.py`` wrote
the folders (run before this); ``StreamingDataset(streams=..., epoch_size=...)`` is one epoch
of the run, read whole.

    python mosaic_check.py EXPORT   # prints JSON: samples and tokens per domain in the epoch
"""

import json
import sys
from pathlib import Path

import numpy as np
import streaming
import yaml
from documents import domain_of_documents
from streaming import Stream, StreamingDataset

export = Path(sys.argv[1])
spec = yaml.safe_load((export / "mosaic_streams.yaml").read_text())
names = list(spec["streams"])
streaming.base.util.clean_stale_shared_memory()
dataset = StreamingDataset(
    streams=[Stream(**spec["streams"][d]) for d in names],
    epoch_size=spec["epoch_size"],
    batch_size=1,
    shuffle=True,
    shuffle_seed=0,
)
domain_of = domain_of_documents(export)
samples, tokens = dict.fromkeys(names, 0), dict.fromkeys(names, 0)
for sample in dataset:
    domain = domain_of[np.asarray(sample["tokens"], dtype=np.int64).tobytes()]
    samples[domain] += 1
    tokens[domain] += len(sample["tokens"])
print(
    json.dumps(
        {
            "samples": samples,
            "tokens": tokens,
            "repeat": {d: float(s.repeat) for d, s in zip(names, dataset.streams)},
            "choose": {d: int(s.choose) for d, s in zip(names, dataset.streams)},
            "epoch_size": int(dataset.epoch_size),
            "streaming": streaming.__version__,
        }
    )
)
