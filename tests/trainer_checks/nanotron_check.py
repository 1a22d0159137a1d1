"""Nanotron's Nanoset reads each ``dataset_folder`` with datatrove's ``DatatroveFolderDataset``
(its ``*.ds`` token streams): every folder of ``nanotron.yaml`` read whole.

    python nanotron_check.py EXPORT SEQ_LEN   # prints JSON: windows and tokens per folder
"""

import json
import sys
from pathlib import Path

import numpy as np
import yaml
from datatrove.utils.dataset import DatatroveFolderDataset

export, seq_len = Path(sys.argv[1]), int(sys.argv[2])
stage = yaml.safe_load((export / "nanotron.yaml").read_text())["data_stages"][0]["data"]["dataset"]
sources = json.loads((export / "sources.json").read_text())
result = {}
for folder, domain in zip(stage["dataset_folder"], sources["domains"]):
    dataset = DatatroveFolderDataset(
        folder, seq_len=seq_len, token_size=stage["token_size_in_bytes"], recursive=False
    )
    stream = np.concatenate(
        [
            np.fromfile(f, dtype=sources["token_dtype"])
            for f in sources["domains"][domain]["token_files"]
        ]
    )
    first = dataset[0]["input_ids"].numpy()
    result[domain] = {
        "windows": len(dataset),
        "tokens": int(stream.size),
        "first_window_matches": bool((first == stream[: seq_len + 1]).all()),
    }
print(json.dumps(result))
