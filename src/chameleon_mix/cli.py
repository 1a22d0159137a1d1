"""``chameleon-weights``: Chameleon weights from a directory of per-domain ``.npy`` embeddings;
``chameleon-weights export``: a mixture as the inputs of other trainers (``chameleon_mix.export``);
``chameleon-weights budget``: any weights under a token budget (``chameleon_mix.budget``)."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .corpus_stats import read_corpus_tokens
from .ensemble import DEFAULT_DRAWS
from .krls import DEFAULT_LAM, DEFAULT_TEMPERATURE, TEMPERATURES
from .weights import compute_weights


def export_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="chameleon-weights export",
        description="Write a mixture (mixtures/<method>.json or weights.json) over the whole "
        "corpus of each domain as the inputs of Megatron-LM/NeMo, OLMo-core, MosaicML "
        "streaming, LitData, Hugging Face datasets, Nanotron and torchtitan, with the run's "
        "budget in each trainer's terms, converting token shares to document probabilities "
        "where a trainer samples documents (docs/export.md).",
    )
    parser.add_argument("mixture", type=Path, help="mixture JSON with a `weights` object")
    parser.add_argument(
        "--manifest",
        type=Path,
        required=True,
        help="the by-domain manifest (results/<dataset>/by_domain/manifest.json): each "
        "domain's parts and the tokenizer",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help="YAML or JSON {domain: {megatron: [...], olmo_core: [...], mosaic: DIR, "
        "litdata: DIR, tokens: N}}: data you hold per domain, exported as it is",
    )
    parser.add_argument(
        "--eval-shards",
        type=Path,
        default=None,
        help="directory of DOMAIN/val.parquet and DOMAIN/test.parquet: Megatron's valid/test "
        "blends (written under DATA_ROOT/megatron_data/{val,test}/)",
    )
    parser.add_argument("--seq-length", type=int, required=True, help="the run's sequence length")
    parser.add_argument(
        "--global-batch-tokens",
        type=int,
        required=True,
        help="tokens per optimizer step (a multiple of --seq-length)",
    )
    parser.add_argument(
        "--tokens", type=int, default=None, help="the run's tokens, where the mixture has no budget"
    )
    parser.add_argument("--max-epochs", type=float, default=4.0, help="with --tokens")
    parser.add_argument("--out", type=Path, required=True, help="folder for the method's files")
    parser.add_argument(
        "--data-root",
        type=Path,
        default=None,
        help="shared data folders (MDS, LitData, Megatron val/test; default: OUT's parent)",
    )
    args = parser.parse_args(argv)

    import yaml

    from .by_domain import read_manifest
    from .export import check_export, export_mixture, write_eval_megatron

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
    try:
        data = yaml.safe_load(args.data.read_text()) if args.data else None
        budget = {"tokens": args.tokens, "max_epochs": args.max_epochs} if args.tokens else None
        run = {"seq_length": args.seq_length, "global_batch_tokens": args.global_batch_tokens}
        # Everything checked before anything (the val/test Megatron data) is written.
        check_export(args.mixture, domains, args.manifest, data=data, budget=budget, **run)
        eval_prefixes = None
        if args.eval_shards:
            eval_prefixes = {"valid": {}, "test": {}}
            for domain in domains:
                shards = {s: args.eval_shards / domain / f"{s}.parquet" for s in ("val", "test")}
                missing = [str(p) for p in shards.values() if not p.is_file()]
                if missing:
                    raise ValueError(f"--eval-shards: {', '.join(missing)} do not exist")
            tokenizer = read_manifest(args.manifest)["tokenizer"]["path"]
            for domain in domains:
                prefixes = {s: data_root / "megatron_data" / s / domain for s in ("val", "test")}
                write_eval_megatron(
                    {s: args.eval_shards / domain / f"{s}.parquet" for s in prefixes},
                    tokenizer,
                    prefixes,
                )
                eval_prefixes["valid"][domain] = str(prefixes["val"].resolve())
                eval_prefixes["test"][domain] = str(prefixes["test"].resolve())
        shares = export_mixture(
            args.mixture,
            domains,
            args.manifest,
            args.out,
            data=data,
            budget=budget,
            eval_prefixes=eval_prefixes,
            **run,
            data_root=data_root,
        )
    except (OSError, ValueError) as err:
        print(f"chameleon-weights export: error: {err}", file=sys.stderr)
        return 2
    width = max(map(len, domains))
    run = shares["run"]
    print(f"{'domain':<{width}}  {'tokens':>8}  {'document':>8}  {'epochs':>7}")
    for name in domains:
        probability = shares["document_probabilities"].get(name, 0.0)
        epochs = run["epochs"].get(name, 0.0)
        print(f"{name:<{width}}  {shares['weights'][name]:8.4f}  {probability:8.4f}  {epochs:7.2f}")
    what = "the budget" if run["budget"] else "one pass, no budget"
    print(f"run: {run['tokens']:,} tokens ({what})")
    print(f"wrote {args.out}")
    return 0


def budget_main(argv: list[str]) -> int:
    from .budget import check_budget, constrain
    from .io import write_json

    parser = argparse.ArgumentParser(
        prog="chameleon-weights budget",
        description="Bring a mixture within MAX_EPOCHS passes over each domain's corpus tokens "
        "for a run of TOKENS tokens, by the smallest change in KL divergence (the capped "
        "domains at their cap, the others keeping their ratios).",
    )
    parser.add_argument("weights", type=Path, help='any JSON with "weights": {domain: weight}')
    parser.add_argument(
        "--corpus-stats",
        type=Path,
        required=True,
        help="corpus_stats.json (the workflow writes results/<dataset>/corpus_stats.json)",
    )
    parser.add_argument("--tokens", type=float, required=True, help="planned training tokens")
    parser.add_argument("--max-epochs", type=float, default=4.0, help="most passes per domain")
    parser.add_argument("--out", type=Path, default=None, help="write the mixture JSON here")
    args = parser.parse_args(argv)
    try:
        if not (math.isfinite(args.tokens) and args.tokens >= 1 and args.tokens.is_integer()):
            raise ValueError(f"--tokens {args.tokens:g}: give a whole number of tokens, at least 1")
        if not args.max_epochs > 0:
            raise ValueError(f"--max-epochs {args.max_epochs:g}: give a number above 0")
        weights = _weights_of(args.weights)
        corpus = read_corpus_tokens(args.corpus_stats, list(weights))
        check_budget(args.tokens, args.max_epochs, corpus, "--tokens/--max-epochs")
        mixture = constrain(weights, corpus, int(args.tokens), args.max_epochs)
    except ValueError as err:
        print(f"chameleon-weights budget: error: {err}", file=sys.stderr)
        return 2
    width = max(map(len, weights))
    print(f"{'domain':<{width}}  {'weight':>8}  {'epochs':>7}  {'budgeted':>8}  {'epochs':>7}")
    for name, weight in weights.items():
        before = weight * args.tokens / corpus[name]
        mark = "  capped" if name in mixture["capped"] else ""
        print(
            f"{name:<{width}}  {weight:8.4f}  {before:7.2f}  {mixture['weights'][name]:8.4f}"
            f"  {mixture['epochs'][name]:7.2f}{mark}"
        )
    if args.out:
        write_json(args.out, {"method": "budget", "source": str(args.weights), **mixture})
        print(f"wrote {args.out}")
    return 0


def _weights_of(path: Path) -> dict[str, float]:
    """The checked ``weights`` of a weights or mixture JSON file."""
    from .mixtures import check_weights

    if not path.is_file():
        raise ValueError(f"{path} does not exist")
    weights = json.loads(path.read_text()).get("weights")
    if not isinstance(weights, dict) or not weights:
        raise ValueError(f'{path} has no "weights": {{domain: weight}} mapping')
    return check_weights(weights, list(weights), str(path))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["export"]:
        return export_main(argv[1:])
    if argv[:1] == ["budget"]:
        return budget_main(argv[1:])
    parser = argparse.ArgumentParser(
        prog="chameleon-weights",
        description="Domain weights from kernel ridge leverage scores of domain embeddings. "
        "Each DOMAIN.npy in the directory is one domain's embedding vector. "
        "`chameleon-weights export --help`: a mixture for other trainers; "
        "`chameleon-weights budget --help`: a mixture under a token budget.",
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
