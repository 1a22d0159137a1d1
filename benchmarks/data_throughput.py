"""Throughput and memory of the data stage on a SlimPajama-shaped source (not a timed test).

    python benchmarks/data_throughput.py                 # >= 1 GB of text, as committed
    python benchmarks/data_throughput.py --size-mb 64    # a quick run

Generates a mixed source like SlimPajama-627B's chunks (several jsonl.zst files, records
``{"text": ..., "meta": {"redpajama_set_name": ...}}`` over its 7 sets in its token shares, with
each set's typical document length), then measures, each stage in a fresh subprocess:

(a) the floor: decompress every file and ``json.loads`` every line, nothing else;
(b) one partition job (``chameleon_mix.shards.partition_part``) over the same files;
(c) tokenization to token files (``chameleon_mix.tokens.write_token_files``) of a shard.

Each runs at two corpus sizes (half the files, all of them; (a) and (b) ``--repeats`` times,
interleaved, the fastest counting): throughput is the slope between the two, so interpreter
start-up and imports are excluded, and peak RSS (VmHWM of the
subprocess) at both sizes shows whether memory grows with the corpus. (a) and (b) are single
threaded, so their MB/s are per core; (c) uses the tokenizers library's threads. Results go
to benchmarks/results/data_throughput.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "data_throughput.json"
# SlimPajama's sets: share of tokens (Soboleva et al. 2023); the mean and log-normal spread of
# a document's length in characters (roughly RedPajama's: books and papers are long); and the
# share of documents with some non-ASCII text (curly quotes, names, formulas), which makes
# Python store the whole text in 2 or 4 bytes a character and encoding it to UTF-8 a real cost.
SETS = {
    "RedPajamaCommonCrawl": (0.522, 4800, 1.0, 0.5),
    "RedPajamaC4": (0.267, 2200, 0.8, 0.4),
    "RedPajamaGithub": (0.052, 3500, 1.2, 0.1),
    "RedPajamaBook": (0.042, 250_000, 0.6, 0.3),
    "RedPajamaArXiv": (0.046, 45_000, 0.6, 0.2),
    "RedPajamaWikipedia": (0.038, 2800, 1.0, 0.8),
    "RedPajamaStackExchange": (0.033, 1800, 0.9, 0.4),
}
FIELD = "meta.redpajama_set_name"


# --- the corpus --------------------------------------------------------------------------
def vocabulary(rng: np.random.Generator, size: int = 40_000) -> tuple[np.ndarray, ...]:
    """Zipf-distributed pseudo-words, each followed by a space, and a non-ASCII variant of each:
    text that compresses and tokenizes about as natural text does."""
    letters = np.array(list("etaoinshrdlcumwfgypbvkjxqz"))
    freq = 1 / np.arange(1, len(letters) + 1) ** 0.9
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters, int(rng.integers(1, 12)), p=freq / freq.sum())))
    words = sorted(words)
    rng.shuffle(words)
    accents = rng.choice(["é", "ü", "ñ", "ø", "ß", "’", "中文", "дом"], size)
    ascii_words = np.array([w.encode() + b" " for w in words], dtype=object)
    other_words = np.array([(w + a).encode() + b" " for w, a in zip(words, accents)], dtype=object)
    p = 1 / (np.arange(size) + 2.7)
    return ascii_words, other_words, p / p.sum()


def byte_lengths(words: np.ndarray) -> np.ndarray:
    return np.array([len(w) for w in words])


def generate(directory: Path, size_mb: float, files: int, seed: int = 0) -> list[Path]:
    """``files`` jsonl.zst files (one zstd frame each) of about ``size_mb`` MB of JSON lines,
    the sets shuffled together as in SlimPajama's chunks."""
    import orjson
    import zstandard

    rng = np.random.default_rng(seed)
    ascii_words, other_words, p = vocabulary(rng)
    ascii_lengths, other_lengths = byte_lengths(ascii_words), byte_lengths(other_words)
    mean_word = float((ascii_lengths * p).sum())
    names = list(SETS)
    share, mean_chars, spread, non_ascii = (np.array([SETS[n][i] for n in names]) for i in range(4))
    doc_p = share / mean_chars  # token shares ~ character shares
    doc_p /= doc_p.sum()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for f in range(files):
        path = directory / f"chunk_{f:04d}.jsonl.zst"
        written = 0
        with open(path, "wb") as raw, zstandard.ZstdCompressor(level=3).stream_writer(raw) as out:
            while written < size_mb * 1e6 / files:
                kinds = rng.choice(len(names), 256, p=doc_p)
                chars = rng.lognormal(
                    np.log(mean_chars[kinds]) - spread[kinds] ** 2 / 2, spread[kinds]
                )
                counts = np.maximum(8, chars / mean_word).astype(int)
                ids = rng.choice(len(p), int(counts.sum()), p=p)
                # 2% of the words of the documents with non-ASCII text
                accented = np.repeat(rng.random(len(kinds)) < non_ascii[kinds], counts)
                swap = accented & (rng.random(len(ids)) < 0.02)
                words = np.where(swap, other_words[ids], ascii_words[ids])
                text = np.frombuffer(b"".join(words), dtype=np.uint8).copy()
                word_ends = np.cumsum(np.where(swap, other_lengths[ids], ascii_lengths[ids]))
                breaks = word_ends[rng.random(len(ids)) < 1 / 40] - 1  # paragraphs
                text[breaks] = ord("\n")
                text = text.tobytes()
                doc_ends = word_ends[np.cumsum(counts) - 1]
                lines, start = [], 0
                for kind, end in zip(kinds, doc_ends):
                    doc = text[start : end - 1].decode()  # a whole number of words
                    lines.append(
                        orjson.dumps({"text": doc, "meta": {"redpajama_set_name": names[kind]}})
                    )
                    start = end
                block = b"\n".join(lines) + b"\n"
                out.write(block)
                written += len(block)
        paths.append(path)
    return paths


def lines_bytes(paths: list[Path]) -> int:
    """Uncompressed bytes of the files (what the floor and the partition read)."""
    import zstandard

    total = 0
    for path in paths:
        with open(path, "rb") as raw:
            reader = zstandard.ZstdDecompressor().stream_reader(raw)
            while chunk := reader.read(1 << 24):
                total += len(chunk)
    return total


def write_shard(paths: list[Path], megabytes: float, out: Path) -> None:
    """A parquet shard of the corpus's first ``megabytes`` MB of texts, as sample_shards writes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from chameleon_mix.sources import iter_documents

    texts, size = [], 0
    for doc in iter_documents({"files": [str(p) for p in paths]}):
        texts.append(doc.text)
        size += len(doc.text.encode())
        if size >= megabytes * 1e6:
            break
    pq.write_table(pa.table({"text": texts}), out, compression="zstd")


# --- the stages, each run in its own subprocess ------------------------------------------
def floor_stage(paths: list[str]) -> dict:
    """Decompress and json.loads every line: the least any reader of these files does."""
    import io

    import zstandard

    lines = 0
    for path in paths:
        with open(path, "rb") as raw:
            for line in io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw), 1 << 20):
                json.loads(line)
                lines += 1
    return {"lines": lines}


def partition_stage(paths: list[str], out: str, per_value: int) -> dict:
    import glob

    from chameleon_mix.shards import partition_part

    source = {"files": [glob.escape(p) for p in paths]}
    stats = partition_part(
        source, FIELD, per_value, 1234, f"{out}/part.parquet", f"{out}/part.json", 32
    )
    return {"documents": {v: c["records"] for v, c in stats["values"].items()}}


def tokenize_stage(shard: str, tokenizer: str, out: str) -> dict:
    try:
        from chameleon_mix.tokens import write_token_files
    except ImportError:  # FALLBACK, only until chameleon_mix.tokens exists: batch encode
        return {"tokens": fallback_tokenize(shard, tokenizer), "implementation": "fallback"}
    stats = write_token_files({"train": shard}, tokenizer, out)
    return {"tokens": stats["splits"]["train"]["tokens"], "implementation": "write_token_files"}


def fallback_tokenize(shard: str, tokenizer: str) -> int:
    import pyarrow.parquet as pq
    from tokenizers import Tokenizer

    encoder, tokens = Tokenizer.from_file(f"{tokenizer}/tokenizer.json"), 0
    for batch in pq.ParquetFile(shard).iter_batches(batch_size=1024, columns=["text"]):
        tokens += sum(len(e.ids) + 1 for e in encoder.encode_batch(batch.column(0).to_pylist()))
    return tokens


STAGES = {"floor": floor_stage, "partition": partition_stage, "tokenize": tokenize_stage}


def peak_rss_mb() -> float:
    """This process's peak RSS since it started: VmHWM, not ``ru_maxrss``, which also counts
    the pages the parent had when it forked this process (the corpus generator's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def run_stage(stage: str, *args, script: str = __file__, env: dict | None = None) -> dict:
    """Run a stage in a fresh interpreter (``script --stage``, this one's by default): its wall
    and CPU seconds, start-up included (the slope between two sizes takes it out), and its
    peak RSS."""
    command = [sys.executable, script, "--stage", stage, json.dumps(args)]
    started = time.perf_counter()
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"stage {stage} failed (status {status})")
    return {
        **json.loads(out.strip().splitlines()[-1]),
        "wall_s": round(wall, 3),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
    }


def slope(amounts: list[float], runs: list[dict], key: str) -> float:
    return (amounts[1] - amounts[0]) / (runs[1][key] - runs[0][key])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--size-mb",
        type=float,
        default=1100,
        help="uncompressed corpus size (>= 1000 for the committed figures)",
    )
    parser.add_argument("--files", type=int, default=8, help="jsonl.zst files of the corpus")
    parser.add_argument(
        "--per-value",
        type=int,
        default=64,
        help="documents each set's sample keeps: below every set's count at half the corpus, so both sizes run at the memory bound",
    )
    parser.add_argument(
        "--token-mb",
        type=float,
        default=40,
        help="text in the smaller tokenized shard (the larger is twice that)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        help="keep the corpus here (reused when present) instead of a temporary directory",
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="runs of (a) and (b) per size; the fastest counts"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("stage_args", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        result = STAGES[args.stage](*json.loads(args.stage_args))
        print(json.dumps({**result, "max_rss_mb": peak_rss_mb()}))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="data_throughput."))
    try:
        report = measure(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written {args.out}")


def measure(args, workdir: Path) -> dict:
    from chameleon_mix.tokenizer import train_tokenizer

    load_before = os.getloadavg()
    source = workdir / f"source-{args.size_mb:g}mb-{args.files}"
    started = time.perf_counter()
    paths = sorted(source.glob("*.jsonl.zst")) if source.is_dir() else []
    if len(paths) != args.files:
        paths = generate(source, args.size_mb, args.files)
    print(f"corpus: {len(paths)} files in {time.perf_counter() - started:.0f} s", flush=True)
    halves = [paths[: len(paths) // 2], paths]
    sizes = [lines_bytes(h) for h in halves]
    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
        },
        "corpus": {
            "files": len(paths),
            "uncompressed_mb": round(sizes[1] / 1e6, 1),
            "compressed_mb": round(sum(p.stat().st_size for p in paths) / 1e6, 1),
            "sizes_mb": [round(s / 1e6, 1) for s in sizes],
        },
    }
    mb = [s / 1e6 for s in sizes]
    runs = {("floor", 0): [], ("floor", 1): [], ("partition", 0): [], ("partition", 1): []}
    for _ in range(args.repeats):  # interleaved, so that both stages see the same load
        for (stage, i), repeats in runs.items():
            extra = () if stage == "floor" else (str(workdir), args.per_value)
            repeats.append(run_stage(stage, [str(p) for p in halves[i]], *extra))
            print(stage, repeats[-1]["wall_s"], "s", repeats[-1]["max_rss_mb"], "MB", flush=True)
    for stage in ("floor", "partition"):
        # The fastest of the repeats: the least disturbed by other load on the machine.
        best = [min(runs[stage, i], key=lambda run: run["cpu_s"]) for i in (0, 1)]
        report[stage] = {
            "runs": best,
            "all_runs": [runs[stage, 0], runs[stage, 1]],
            "mb_per_cpu_s": round(slope(mb, best, "cpu_s"), 1),
            "mb_per_wall_s": round(slope(mb, best, "wall_s"), 1),
        }
    for key in ("mb_per_cpu_s", "mb_per_wall_s"):
        report[f"partition_over_floor_{key.removeprefix('mb_per_')}"] = round(
            report["partition"][key] / report["floor"][key], 2
        )
    report["partition"]["per_value"] = args.per_value

    tokenizer = workdir / "tokenizer"
    if not tokenizer.is_dir():
        write_shard(paths, 8, workdir / "tokenizer-text.parquet")
        import pyarrow.parquet as pq

        train_tokenizer(
            pq.read_table(workdir / "tokenizer-text.parquet").column("text").to_pylist(),
            32000,
            tokenizer,
        )
    token_mb = min(args.token_mb, args.size_mb / 4)
    runs = []
    for i, megabytes in enumerate((token_mb, 2 * token_mb)):
        shard = workdir / f"shard-{i}.parquet"
        write_shard(paths, megabytes, shard)
        runs.append(run_stage("tokenize", str(shard), str(tokenizer), str(workdir / f"tokens-{i}")))
        print("tokenize", runs[-1]["wall_s"], "s", runs[-1]["max_rss_mb"], "MB", flush=True)
    tokens = [r["tokens"] for r in runs]
    report["tokenize"] = {
        "runs": runs,
        "shard_mb": [token_mb, 2 * token_mb],
        "tokens_per_wall_s": round(slope(tokens, runs, "wall_s")),
        "tokens_per_cpu_s": round(slope(tokens, runs, "cpu_s")),
        "vocab_size": 32000,
    }
    report["machine"]["load_average_after"] = os.getloadavg()
    print(
        f"floor {report['floor']['mb_per_cpu_s']} MB/s per core, partition "
        f"{report['partition']['mb_per_cpu_s']} MB/s per core: ratio "
        f"{report['partition_over_floor_cpu_s']} (CPU time; "
        f"{report['partition_over_floor_wall_s']} by wall time); tokenize "
        f"{report['tokenize']['tokens_per_wall_s']:,} tokens/s; peak RSS partition "
        f"{[r['max_rss_mb'] for r in report['partition']['runs']]} MB, tokenize "
        f"{[r['max_rss_mb'] for r in runs]} MB"
    )
    return report


if __name__ == "__main__":
    main()
