"""Write each domain's MDS folder for MosaicML streaming: one sample per document, its tokens
in column ``tokens``, read from the domain's Megatron parts (``sources.json`` beside this file).

    python write_mds.py            # every domain whose folder is not written yet

Needs numpy and mosaicml-streaming. A folder appears whole (written beside it, then renamed);
one that exists is kept, so every method's export shares it.
"""

import json
import shutil
import struct
import sys
from pathlib import Path

import numpy as np


def megatron_documents(prefix: str):
    """The documents of a Megatron indexed dataset, one array each (its .idx: a 9-byte header,
    version, dtype code, sequence and document counts, then the int32 sequence lengths and
    int64 byte offsets)."""
    codes = {1: np.uint8, 2: np.int8, 3: np.int16, 4: np.int32, 5: np.int64, 8: np.uint16}
    with open(f"{prefix}.idx", "rb") as f:
        f.read(9 + 8)
        (code,) = struct.unpack("<B", f.read(1))
        (count,) = struct.unpack("<Q", f.read(8))
        f.read(8)
        lengths = np.fromfile(f, np.int32, count)
        pointers = np.fromfile(f, np.int64, count)
    dtype = np.dtype(codes[code])
    tokens = np.memmap(f"{prefix}.bin", dtype=dtype, mode="r")
    for length, pointer in zip(lengths, pointers):
        start = pointer // dtype.itemsize
        yield np.array(tokens[start : start + length])


def main() -> None:
    from streaming import MDSWriter

    sources = json.loads(Path(__file__).with_name("sources.json").read_text())
    dtype = sources["token_dtype"]
    for name, domain in sources["domains"].items():
        folder = domain["mosaic"]
        if folder is None or (Path(folder) / "index.json").is_file():
            continue
        tmp = Path(f"{folder}.writing")
        shutil.rmtree(tmp, ignore_errors=True)
        with MDSWriter(out=str(tmp), columns={"tokens": f"ndarray:{dtype}"}) as writer:
            for part in domain["parts"]:
                for document in megatron_documents(part["megatron"]):
                    writer.write({"tokens": document})
        tmp.rename(folder)
        print(f"{name}: {domain['documents']:,} documents -> {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
