"""LitData iterates the export's mixture as its README says: ``write_litdata.py`` wrote the
folders (run before this), ``CombinedStreamingDataset(..., weights=..., iterate_over_all=False)``
draws N items.

    python litdata_check.py EXPORT N   # prints JSON: tokens per domain in N items
"""

import itertools
import json
import sys
from pathlib import Path

import litdata
import numpy as np
from documents import domain_of_documents

export, n = Path(sys.argv[1]), int(sys.argv[2])
spec = json.loads((export / "litdata.json").read_text())
combined = litdata.CombinedStreamingDataset(
    [litdata.StreamingDataset(spec["input_dirs"][d], shuffle=True) for d in spec["domains"]],
    weights=spec["weights"],
    seed=0,
    iterate_over_all=spec["iterate_over_all"],
)
domain_of = domain_of_documents(export)
tokens = dict.fromkeys(spec["domains"], 0)
items = list(itertools.islice(combined, n))
for item in items:
    tokens[domain_of[np.asarray(item, dtype=np.int64).tobytes()]] += len(item)
print(json.dumps({"items": len(items), "tokens": tokens, "litdata": litdata.__version__}))
