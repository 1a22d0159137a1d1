"""``chameleon-weights``: Chameleon weights from a directory of per-domain ``.npy`` embeddings;
``chameleon-weights export``: a mixture as the inputs of other trainers (``chameleon_mix.export``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .ensemble import DEFAULT_DRAWS
from .krls import DEFAULT_LAM, DEFAULT_TEMPERATURE, TEMPERATURES
from .weights import compute_weights


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="chameleon-weights export",
        description="Write a mixture (mixtures/<method>.json or weights.json) as the inputs of "
        "Megatron-LM/NeMo, OLMo-core, MosaicML streaming, LitData, Hugging Face datasets and "
        "Nanotron, converting token shares to document probabilities where a trainer samples "
        "documents. Each domain's Megatron dataset is (re)written under "
        "DATA_ROOT/megatron_data/.",
    )
    parser.add_argument("mixture", type=Path, help="mixture JSON with a `weights` object")
    parser.add_argument(
        "--tokens", type=Path, required=True, help="directory of DOMAIN/ token files"
    )
    parser.add_argument(
        "--shards", type=Path, required=True, help="directory of DOMAIN/train.parquet shards"
    )
    parser.add_argument(
        "--global-batch-tokens",
        type=int,
        required=True,
        help="tokens per optimizer step, for OLMo-core's global_batch_size",
    )
    parser.add_argument("--out", type=Path, required=True, help="folder for the method's files")
    parser.add_argument(
        "--data-root", type=Path, default=None, help="shared data folders (default: OUT's parent)"
    )
    args = parser.parse_args(argv)

    from .export import data_dir, export_mixture, write_megatron_dataset
    from .tokens import read_stats

    try:
        domains = list(json.loads(args.mixture.read_text())["weights"])
    except (OSError, ValueError, KeyError) as err:
        print(
            f"chameleon-weights export: error: {args.mixture}: not a mixture with a `weights` "
            f"object ({err!r})",
            file=sys.stderr,
        )
        return 2
    data_root = args.data_root or args.out.parent
    token_dirs = {d: args.tokens / d for d in domains}
    try:
        for domain in domains:  # every domain's token files, before anything is written
            read_stats(token_dirs[domain])
        for domain in domains:
            write_megatron_dataset(token_dirs[domain], data_dir(data_root, "megatron") / domain)
        shares = export_mixture(
            args.mixture,
            domains,
            token_dirs,
            {d: args.shards / d / "train.parquet" for d in domains},
            data_root,
            args.out,
            args.global_batch_tokens,
        )
    except (OSError, ValueError) as err:
        print(f"chameleon-weights export: error: {err}", file=sys.stderr)
        return 2
    width = max(map(len, domains))
    print(f"{'domain':<{width}}  {'tokens':>8}  {'document':>8}")
    for name in domains:
        probability = shares["document_probabilities"].get(name, 0.0)
        print(f"{name:<{width}}  {shares['weights'][name]:8.4f}  {probability:8.4f}")
    print(f"wrote {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        return export_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="chameleon-weights",
        description="Domain weights from kernel ridge leverage scores of domain embeddings. "
        "Each DOMAIN.npy in the directory is one domain's embedding vector. "
        "`chameleon-weights export --help`: a mixture for other trainers.",
    )
    parser.add_argument("embeddings", type=Path, help="directory of DOMAIN.npy files")
    parser.add_argument("--stage", choices=["pretrain", "finetune"], default="pretrain")
    parser.add_argument("--lam", type=float, default=DEFAULT_LAM, help="ridge lambda (scaled by k)")
    parser.add_argument(
        "--tau", type=float, default=None, help="softmax temperature (the stage's default)"
    )
    parser.add_argument(
        "--temperature",
        choices=TEMPERATURES,
        default=DEFAULT_TEMPERATURE,
        help="paper: the paper's softmax of 1/S or S; scaled: of S / mean(S), for many domains",
    )
    parser.add_argument("--no-center", dest="center", action="store_false")
    parser.add_argument("--no-normalize", dest="normalize", action="store_false")
    parser.add_argument(
        "--bootstrap",
        type=int,
        default=DEFAULT_DRAWS,
        metavar="N",
        help="90%% intervals from N bootstrap draws of the DOMAIN.samples.npy beside each "
        "embedding (the workflow writes them); 0: no intervals",
    )
    parser.add_argument("--out", type=Path, default=None, help="write weights JSON here")
    args = parser.parse_args(argv)

    files = {
        p.stem: p
        for p in sorted(args.embeddings.glob("*.npy"))
        if not p.name.endswith(".samples.npy")
    }
    if not files:
        parser.error(f"no DOMAIN.npy files in {args.embeddings}")
    try:
        report = compute_weights(
            files,
            args.out,
            stage=args.stage,
            lam=args.lam,
            tau=args.tau,
            temperature=args.temperature,
            center=args.center,
            normalize=args.normalize,
            bootstrap=args.bootstrap,
        )
    except ValueError as err:
        print(f"chameleon-weights: error: {err}", file=sys.stderr)
        return 2
    width = max(map(len, files))
    intervals = report["intervals"]
    print(
        f"{'domain':<{width}}  {'score':>8}  {'weight':>8}"
        + ("  90% interval" if intervals else "")
    )
    for name in report["domains"]:
        line = f"{name:<{width}}  {report['scores'][name]:8.4f}  {report['weights'][name]:8.4f}"
        if intervals:
            line += f"  [{intervals[name][0]:.4f}, {intervals[name][1]:.4f}]"
        print(line)
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
