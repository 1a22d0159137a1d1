"""Tokenizing a shard that holds one very long document, and verifying token files (not a
timed test).

    python benchmarks/long_document.py              # a 100 MB document, as committed
    python benchmarks/long_document.py --mb 20      # a quick run

Each measurement runs in a fresh subprocess (peak RSS is its VmHWM):

- ``ordinary``: a shard of 2,000 ordinary documents (~5 KB each);
- ``long``: the same shard plus one document of ``--mb`` MB, encoded in pieces as shipped
  (``chameleon_mix.tokens.PIECE_BYTES``);
- ``one call``: that document encoded in one tokenizer call, as before (the baseline; at
  ``--baseline-mb``, since at 100 MB it needs more memory than a 24 GB machine has);
- ``read only``: the long shard's record batches read and dropped, nothing tokenized: what
  pyarrow itself holds while it decodes the row group with the long document;
- the sha256 verification of the long shard's ``train.bin`` (``verify_token_file``), per GB.

The pieces' ids are compared with the one-call ids of the baseline's document. Results go to
benchmarks/results/long_document.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "long_document.json"
WORDS = ["river", "mill", "déjà", "vu", "x=1;", "42", "spring", "the", "of", "and", "naïve"]


def text(megabytes: float, seed: int) -> str:
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, size=int(megabytes * 1e6 / 5)))


def write_shard(path: Path, long_mb: float) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    documents = [text(0.005, seed) for seed in range(2000)]
    if long_mb:
        documents.insert(1000, text(long_mb, 7))
    pq.write_table(pa.table({"text": documents}), path)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tokenize_stage(shard: str, tokenizer: str, out: str, one_call: str) -> dict:
    import chameleon_mix.tokens as tokens

    if one_call == "yes":
        tokens.PIECE_BYTES = 1 << 62  # every document in one call
    started = time.perf_counter()
    stats = tokens.write_token_files({"train": shard}, tokenizer, out)
    return {
        "seconds": time.perf_counter() - started,
        "tokens": stats["splits"]["train"]["tokens"],
        "peak_rss_mb": peak_rss_mb(),
    }


def read_stage(shard: str) -> dict:
    from chameleon_mix.tokens import _open_shard

    started = time.perf_counter()
    for _ in _open_shard(Path(shard)).iter_batches(batch_size=1024, columns=["text"]):
        pass
    return {"seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def verify_stage(token_dir: str) -> dict:
    from chameleon_mix.tokens import verify_token_file

    size = (Path(token_dir) / "train.bin").stat().st_size
    started = time.perf_counter()
    verify_token_file(token_dir, "train")
    seconds = time.perf_counter() - started
    return {"bytes": size, "seconds": seconds, "seconds_per_gb": seconds / (size / 1e9)}


def run_stage(*args: str) -> dict:
    run = subprocess.run(
        [sys.executable, __file__, "--stage", *args], capture_output=True, text=True
    )
    if run.returncode:
        raise RuntimeError(run.stderr[-3000:])
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mb", type=float, default=100, help="the long document's size")
    parser.add_argument("--baseline-mb", type=float, default=30, help="the one-call baseline's")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--stage", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        name, *rest = args.stage
        stage = {"tokenize": tokenize_stage, "read": read_stage, "verify": verify_stage}[name]
        print(json.dumps(stage(*rest)))
        return

    from chameleon_mix.tokenizer import train_tokenizer
    from chameleon_mix.tokens import PIECE_BYTES, read_tokens

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        tokenizer = work / "tokenizer"
        train_tokenizer([text(0.005, seed) for seed in range(500)], 4096, tokenizer)
        runs = {}
        for name, long_mb, one_call in (
            ("ordinary", 0, "no"),
            ("long", args.mb, "no"),
            ("baseline pieces", args.baseline_mb, "no"),
            ("baseline one call", args.baseline_mb, "yes"),
        ):
            shard = work / f"{long_mb}.parquet"
            if not shard.exists():
                write_shard(shard, long_mb)
            runs[name] = run_stage(
                "tokenize", str(shard), str(tokenizer), str(work / name), one_call
            )
            print(name, runs[name], flush=True)
        for name, long_mb in (("read only, ordinary", 0), ("read only, long", args.mb)):
            runs[name] = run_stage("read", str(work / f"{long_mb}.parquet"))
            print(name, runs[name], flush=True)
        same = np.array_equal(
            read_tokens(work / "baseline pieces", "train"),
            read_tokens(work / "baseline one call", "train"),
        )
        verify = run_stage("verify", str(work / "long"))
        print("verify", verify, flush=True)

    rss = {name: run["peak_rss_mb"] for name, run in runs.items()}
    result = {
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "long_document_mb": args.mb,
        "baseline_document_mb": args.baseline_mb,
        "piece_bytes": PIECE_BYTES,
        "runs": runs,
        "rss_ratio_long_over_ordinary": runs["long"]["peak_rss_mb"]
        / runs["ordinary"]["peak_rss_mb"],
        # The long document's cost to tokenizing beyond pyarrow's to read it: flat if ~0.
        "rss_mb_long_minus_ordinary": rss["long"] - rss["ordinary"],
        "rss_mb_of_reading_it": rss["read only, long"] - rss["read only, ordinary"],
        "rss_mb_tokenizing_adds": (rss["long"] - rss["ordinary"])
        - (rss["read only, long"] - rss["read only, ordinary"]),
        "rss_ratio_one_call_over_pieces": runs["baseline one call"]["peak_rss_mb"]
        / runs["baseline pieces"]["peak_rss_mb"],
        "pieces_ids_equal_one_call": bool(same),
        "verify": verify,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
