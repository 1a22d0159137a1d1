"""Write each domain's LitData folder: one item per document (its token array), with the
writer ``litdata.optimize`` uses, read from the domain's Megatron parts (``sources.json``
beside this file).

    python write_litdata.py        # every domain whose folder is not written yet

Needs numpy and litdata. A folder appears whole (written beside it, then renamed); one that
exists is kept, so every method's export shares it.
"""

import json
import shutil
import sys
from pathlib import Path

from write_mds import megatron_documents


def main() -> None:
    from litdata.streaming.writer import BinaryWriter

    sources = json.loads(Path(__file__).with_name("sources.json").read_text())
    for name, domain in sources["domains"].items():
        folder = domain["litdata"]
        if folder is None or (Path(folder) / "index.json").is_file():
            continue
        tmp = Path(f"{folder}.writing")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        writer = BinaryWriter(str(tmp), chunk_bytes="64MB")
        i = 0
        for part in domain["parts"]:
            for document in megatron_documents(part["megatron"]):
                writer[i] = document
                i += 1
        writer.done()
        writer.merge()
        tmp.rename(folder)
        print(f"{name}: {i:,} documents -> {folder}", file=sys.stderr)


if __name__ == "__main__":
    main()
