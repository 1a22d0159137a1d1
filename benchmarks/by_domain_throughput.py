"""Throughput and memory of the whole corpus per domain (chameleon_mix.by_domain) on a
SlimPajama-shaped source, against the decompress+parse floor and the partition (not a timed
test).

    python benchmarks/by_domain_throughput.py                  # as committed (~5 min on 2 cores)
    python benchmarks/by_domain_throughput.py --size-mb 64     # a quick run

The corpus, the floor, the partition and the way each stage is timed are
``benchmarks/data_throughput.py``'s: every stage runs in a fresh subprocess at two corpus sizes
(half the files, all of them), the throughput is the slope between the two (start-up and imports
drop out), the fastest of ``--repeats`` interleaved runs counts, and the peak RSS (VmHWM) at both
sizes shows whether memory grows with the corpus. The stages:

(a) floor: decompress every file and ``json.loads`` every line;
(b) partition: one partition job (``chameleon_mix.shards.partition_part``);
(c) split, text only: one by-domain job (``split_group`` without a tokenizer), every record
    written to its domain's ``.jsonl.zst`` part;
(d) split with tokens: the same job as the workflow runs it, each part also tokenized into a
    Megatron dataset (megatron-core's builder) in the same pass;
(e) tokens in a second pass: (c)'s parts read back and tokenized (``own_source_parts`` over
    them), the alternative to (d): (c) + (e) against (d) is what the single pass saves.

Tokenizing is ~100x slower than the rest, so (d) and (e) run on fewer files (``--token-files``
and twice that). The tokenizers library's thread pool is held to one thread
(``RAYON_NUM_THREADS=1``), so every figure is per core (MB of uncompressed JSON lines per CPU
second; wall seconds too). Results go to benchmarks/results/by_domain_throughput.json.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import data_throughput as data  # noqa: E402  (the corpus, the floor, the partition, the timing)

RESULTS = Path(__file__).resolve().parent / "results" / "by_domain_throughput.json"
VALUES = {value: [value.removeprefix("RedPajama").lower()] for value in data.SETS}
ONE_THREAD = {"RAYON_NUM_THREADS": "1"}


# --- the stages, each run in its own subprocess ------------------------------------------
def split_stage(paths: list[str], out: str, tokenizer: str | None) -> dict:
    from chameleon_mix.by_domain import split_group

    source = {"files": [glob.escape(p) for p in paths]}
    counts = split_group(source, data.FIELD, VALUES, 0, out, f"{out}/counts.json", tokenizer)
    parts = [part for parts in counts["parts"].values() for part in parts]
    return {
        "records": sum(p["records"] for p in parts),
        "tokens": sum(p.get("tokens", 0) for p in parts),
        "parts_mb": round(sum(Path(p["text"]).stat().st_size for p in parts) / 1e6, 1),
    }


def second_pass_stage(out: str, tokenizer: str) -> dict:
    """Tokenize the text parts a text-only split wrote, each as a domain's own source."""
    from chameleon_mix.by_domain import own_source_parts

    records = tokens = 0
    for domain in sorted(p.parent.name for p in Path(out).glob("*/*.jsonl.zst")):
        source = {"files": f"{glob.escape(out)}/{domain}/*.jsonl.zst"}
        counts = own_source_parts(
            domain, source, 0, f"{out}/tokens", f"{out}/tokens/{domain}.json", tokenizer
        )
        records += sum(p["records"] for p in counts["parts"][domain])
        tokens += sum(p["tokens"] for p in counts["parts"][domain])
    return {"records": records, "tokens": tokens}


STAGES = {**data.STAGES, "split": split_stage, "second_pass": second_pass_stage}


def run(stage: str, *args, env: dict | None = None) -> dict:
    result = data.run_stage(stage, *args, script=__file__, env={**ONE_THREAD, **(env or {})})
    print(stage, result["wall_s"], "s", result["cpu_s"], "cpu s", result["max_rss_mb"], "MB")
    return result


def fastest(runs: list[dict]) -> dict:
    """The least disturbed of the repeats (the machine is shared)."""
    return min(runs, key=lambda run: run["cpu_s"])


def rates(mb: list[float], runs: list[list[dict]]) -> dict:
    best = [fastest(r) for r in runs]
    return {
        "runs": best,
        "mb_per_cpu_s": round(data.slope(mb, best, "cpu_s"), 2),
        "mb_per_wall_s": round(data.slope(mb, best, "wall_s"), 2),
        "max_rss_mb": [r["max_rss_mb"] for r in best],
    }


def measure(args, workdir: Path) -> dict:
    from chameleon_mix.tokenizer import train_tokenizer

    load_before = os.getloadavg()
    source = workdir / f"source-{args.size_mb:g}mb-{args.files}"
    paths = sorted(source.glob("*.jsonl.zst")) if source.is_dir() else []
    if len(paths) != args.files:
        paths = data.generate(source, args.size_mb, args.files)
    halves = [[str(p) for p in paths[: len(paths) // 2]], [str(p) for p in paths]]
    token_sets = [halves[1][: args.token_files], halves[1][: 2 * args.token_files]]
    mb = [data.lines_bytes(list(map(Path, h))) / 1e6 for h in halves]
    token_mb = [data.lines_bytes(list(map(Path, h))) / 1e6 for h in token_sets]
    tokenizer = workdir / "tokenizer"
    if not tokenizer.is_dir():
        shard = workdir / "tokenizer-text.parquet"
        data.write_shard(paths, 8, shard)
        import pyarrow.parquet as pq

        texts = pq.read_table(shard).column("text").to_pylist()
        train_tokenizer(texts, args.vocab_size, tokenizer)
    print(f"corpus {mb} MB, tokenized {token_mb} MB", flush=True)

    text_runs = {stage: [[], []] for stage in ("floor", "partition", "split")}
    for _ in range(args.repeats):  # interleaved, so that every stage sees the same load
        for i, files in enumerate(halves):
            out = str(workdir / f"out-{i}")
            shutil.rmtree(out, ignore_errors=True)
            text_runs["floor"][i].append(run("floor", files))
            text_runs["partition"][i].append(run("partition", files, out, args.per_value))
            text_runs["split"][i].append(run("split", files, out, None))
    token_runs = {stage: [[], []] for stage in ("split_text", "split_tokens", "second_pass")}
    for _ in range(args.token_repeats):
        for i, files in enumerate(token_sets):
            out = str(workdir / f"tokens-{i}")
            shutil.rmtree(out, ignore_errors=True)
            token_runs["split_text"][i].append(run("split", files, out, None))
            token_runs["second_pass"][i].append(run("second_pass", out, str(tokenizer)))
            token_runs["split_tokens"][i].append(run("split", files, out, str(tokenizer)))

    report = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_before": load_before,
            "threads_per_stage": 1,
        },
        "corpus": {
            "files": len(paths),
            "sizes_mb": [round(m, 1) for m in mb],
            "compressed_mb": round(sum(p.stat().st_size for p in paths) / 1e6, 1),
            "tokenized_sizes_mb": [round(m, 1) for m in token_mb],
            "vocab_size": args.vocab_size,
        },
        "floor": rates(mb, text_runs["floor"]),
        "partition": {**rates(mb, text_runs["partition"]), "per_value": args.per_value},
        "split_text": rates(mb, text_runs["split"]),
        "split_tokens": rates(token_mb, token_runs["split_tokens"]),
        "text_then_tokens": {
            "split_text": rates(token_mb, token_runs["split_text"]),
            "second_pass": rates(token_mb, token_runs["second_pass"]),
        },
    }
    # Two passes: CPU seconds per MB add up.
    two = report["text_then_tokens"]
    two["mb_per_cpu_s"] = round(
        1 / (1 / two["split_text"]["mb_per_cpu_s"] + 1 / two["second_pass"]["mb_per_cpu_s"]), 2
    )
    best = [fastest(r) for r in token_runs["split_tokens"]]
    report["split_tokens"]["tokens_per_cpu_s"] = round(
        data.slope([r["tokens"] for r in best], best, "cpu_s")
    )
    floor = report["floor"]["mb_per_cpu_s"]
    report["over_floor_cpu_s"] = {
        stage: round(report[stage]["mb_per_cpu_s"] / floor, 3)
        for stage in ("partition", "split_text", "split_tokens")
    }
    report["over_floor_cpu_s"]["text_then_tokens"] = round(two["mb_per_cpu_s"] / floor, 3)
    report["single_pass_over_two_passes"] = round(
        report["split_tokens"]["mb_per_cpu_s"] / two["mb_per_cpu_s"], 3
    )
    report["machine"]["load_average_after"] = os.getloadavg()
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size-mb", type=float, default=320, help="uncompressed corpus size")
    parser.add_argument("--files", type=int, default=16, help="jsonl.zst files of the corpus")
    parser.add_argument(
        "--token-files",
        type=int,
        default=1,
        help="files the tokenizing stages read at the smaller size (twice that at the larger)",
    )
    parser.add_argument("--per-value", type=int, default=64, help="the partition's sample")
    parser.add_argument("--vocab-size", type=int, default=32000)
    parser.add_argument("--repeats", type=int, default=3, help="runs of (a)-(c) per size")
    parser.add_argument("--token-repeats", type=int, default=2, help="runs of (d), (e) per size")
    parser.add_argument("--workdir", type=Path, help="keep the corpus here (reused when present)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("stage_args", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        result = STAGES[args.stage](*json.loads(args.stage_args))
        print(json.dumps({**result, "max_rss_mb": data.peak_rss_mb()}))
        return

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="by_domain_throughput."))
    started = time.perf_counter()
    try:
        report = measure(args, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    ratio = report["over_floor_cpu_s"]
    print(
        f"MB/s per core: floor {report['floor']['mb_per_cpu_s']}, partition "
        f"{report['partition']['mb_per_cpu_s']} ({ratio['partition']}x the floor), split text "
        f"{report['split_text']['mb_per_cpu_s']} ({ratio['split_text']}x), split with tokens "
        f"{report['split_tokens']['mb_per_cpu_s']} ({ratio['split_tokens']}x; "
        f"{report['split_tokens']['tokens_per_cpu_s']:,} tokens/s), text then tokens in two "
        f"passes {report['text_then_tokens']['mb_per_cpu_s']} ({ratio['text_then_tokens']}x). "
        f"Peak RSS MB: split text {report['split_text']['max_rss_mb']} at {report['corpus']['sizes_mb']} MB, "
        f"with tokens {report['split_tokens']['max_rss_mb']} at "
        f"{report['corpus']['tokenized_sizes_mb']} MB. Written {args.out}"
    )


if __name__ == "__main__":
    main()
