"""``chameleon-weights``: Chameleon weights from a directory of per-domain ``.npy`` embeddings."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .weights import compute_weights


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="chameleon-weights",
        description="Domain weights from kernel ridge leverage scores of domain embeddings. "
        "Each DOMAIN.npy in the directory is one domain's embedding vector.",
    )
    parser.add_argument("embeddings", type=Path, help="directory of DOMAIN.npy files")
    parser.add_argument("--stage", choices=["pretrain", "finetune"], default="pretrain")
    parser.add_argument("--lam", type=float, default=10.0, help="ridge lambda (scaled by k)")
    parser.add_argument("--tau", type=float, default=None, help="softmax temperature (5 / 0.2)")
    parser.add_argument("--no-center", dest="center", action="store_false")
    parser.add_argument("--no-normalize", dest="normalize", action="store_false")
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
            files, args.out, args.stage, args.lam, args.tau, args.center, args.normalize
        )
    except ValueError as err:
        print(f"chameleon-weights: error: {err}", file=sys.stderr)
        return 2
    width = max(map(len, files))
    print(f"{'domain':<{width}}  {'score':>8}  {'weight':>8}")
    for name in report["domains"]:
        print(f"{name:<{width}}  {report['scores'][name]:8.4f}  {report['weights'][name]:8.4f}")
    if args.out:
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
