"""Which domain a document or token window came from, by its tokens (every domain's documents
name it, so no two domains share one): read from the export's Megatron parts with the export's
own reader (``write_mds.megatron_documents``)."""

import json
import sys
from pathlib import Path

import numpy as np


def domain_of_documents(export: Path) -> dict[bytes, str]:
    sys.path.insert(0, str(export))
    from write_mds import megatron_documents

    sources = json.loads((export / "sources.json").read_text())
    return {
        np.asarray(document, dtype=np.int64).tobytes(): name
        for name, domain in sources["domains"].items()
        for part in domain["parts"]
        for document in megatron_documents(part["megatron"])
    }


def domain_of_windows(export: Path, seq_len: int) -> dict[bytes, str]:
    """Each ``seq_len``-token window ``[k·seq_len, (k+1)·seq_len)`` of every token file."""
    sources = json.loads((export / "sources.json").read_text())
    dtype = np.dtype(sources["token_dtype"])
    windows = {}
    for name, domain in sources["domains"].items():
        for path in domain["token_files"]:
            tokens = np.fromfile(path, dtype=dtype).astype(np.int64)
            for k in range((len(tokens) - 1) // seq_len):
                windows[tokens[k * seq_len : (k + 1) * seq_len].tobytes()] = name
    return windows
