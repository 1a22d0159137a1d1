"""Cost of the Chameleon weights against the number of domains k, and the temperature's drift.

    OPENBLAS_NUM_THREADS=1 python benchmarks/krls_scaling.py   # k = 100 ... 10,000, as committed
    python benchmarks/krls_scaling.py --dual-max 1000 --repeats 1 --out /tmp/quick.json

Timing: :func:`chameleon_mix.krls.chameleon_weights` on seeded Gaussian embeddings (k, 768),
with the automatic choice of form (the dual (k, k) solve while k <= p, the primal (p, p) one
beyond) and with the dual form forced, in the same run, interleaved, the fastest of
``--repeats`` counting. The forced dual stops at ``--dual-max`` domains (3,000): at 10,000 it
holds several (k, k) float64 matrices (0.8 GB each) and takes tens of seconds. Peak memory is
traced (tracemalloc, which sees NumPy's buffers) in an extra untimed call. The scaling
exponent is the slope of log CPU seconds against log k, fitted over the automatic choice's
primal sizes (k > p) and over the dual's sizes, and between the two largest of each. The
committed results ran with one BLAS thread: the machine's 2 cores were shared with other jobs,
under which threaded BLAS ran slower and its times did not even grow with k; with one thread,
CPU seconds are the wall time on an idle core, without the waits for a busy one.

Temperature: the mixture's normalised entropy ``H(alpha) / log k`` (1 uniform, 0 one domain)
and largest weight for k = 10 ... 10,000, pretraining and finetuning, with the paper's
temperature and the scaled one (``chameleon_mix.krls``'s docstring derives it), on two kinds of
embeddings: the Gaussian ones above, and cluster centroids of an anisotropic cloud (a shared
offset and a power-law spectrum, whose relative scores vary about as much as the paper's
SlimPajama's), as tests/test_krls.py uses at p = 64. Results:
``benchmarks/results/krls_scaling.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc
from pathlib import Path

import numpy as np

from chameleon_mix.io import write_json
from chameleon_mix.krls import chameleon_weights, stage_weights

RESULTS = Path(__file__).resolve().parent / "results" / "krls_scaling.json"
P = 768
TIMED_KS = (100, 300, 1000, 3000, 10000)
ENTROPY_KS = (10, 30, 100, 300, 1000, 3000, 10000)


def gaussian_embeddings(k: int, p: int = P) -> np.ndarray:
    return np.random.default_rng([0, k]).normal(size=(k, p))


def clustered_embeddings(k: int, p: int = P) -> np.ndarray:
    generator = np.random.default_rng([0, k])
    return 5.0 + generator.normal(size=(k, p)) * 3.0 * np.arange(1, p + 1) ** -0.75


def normalized_entropy(weights: np.ndarray) -> float:
    nonzero = weights[weights > 0]
    return float(-(nonzero * np.log(nonzero)).sum() / np.log(len(weights)))


def seconds(X: np.ndarray, solver: str) -> np.ndarray:
    """Wall-clock and CPU seconds of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    chameleon_weights(X, solver=solver)
    return np.array([time.perf_counter() - wall, time.process_time() - cpu])


def peak_mb(X: np.ndarray, solver: str) -> float:
    tracemalloc.start()
    chameleon_weights(X, solver=solver)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20


def slope(ks: list[int], times: list[float]) -> float | None:
    if len(ks) < 2:
        return None
    return float(np.polyfit(np.log(ks), np.log(times), 1)[0])


def timing(ks: tuple[int, ...], dual_max: int, repeats: int) -> dict:
    rows = []
    for k in ks:
        X = gaussian_embeddings(k)
        solvers = ["auto", "dual"] if k <= dual_max else ["auto"]
        best = {solver: np.full(2, np.inf) for solver in solvers}
        for _ in range(repeats):
            for solver in solvers:
                best[solver] = np.minimum(best[solver], seconds(X, solver))
        auto = chameleon_weights(X)
        row = {
            "k": k,
            "p": P,
            "solver": auto.solver,
            "auto_s": float(best["auto"][0]),
            "auto_cpu_s": float(best["auto"][1]),
            "auto_peak_mb": peak_mb(X, "auto"),
            "dual_s": float(best["dual"][0]) if "dual" in best else None,
            "dual_cpu_s": float(best["dual"][1]) if "dual" in best else None,
            "dual_peak_mb": peak_mb(X, "dual") if "dual" in best else None,
        }
        if "dual" in best:
            dual = chameleon_weights(X, solver="dual")
            row["speedup_vs_dual"] = float(best["dual"][1] / best["auto"][1])
            row["max_rel_diff_scores"] = float(
                np.max(np.abs(auto.scores - dual.scores) / dual.scores)
            )
        else:
            row["speedup_vs_dual"] = None
            row["max_rel_diff_scores"] = None
        rows.append(row)
        dual_text = "skipped" if row["dual_s"] is None else f"{row['dual_s']:.3f} s"
        print(
            f"k={k:>6}  auto ({row['solver']:>6}) {row['auto_s']:.3f} s "
            f"{row['auto_peak_mb']:7.1f} MB   dual {dual_text}",
            flush=True,
        )
    primal = [r for r in rows if r["solver"] == "primal"]
    duals = [r for r in rows if r["dual_s"] is not None]
    return {
        "rows": rows,
        "exponents_of": "CPU seconds",
        "exponent_auto_primal": slope([r["k"] for r in primal], [r["auto_cpu_s"] for r in primal]),
        # between the two largest sizes, where the fixed (p, p) factorisation weighs least
        "exponent_auto_largest": slope(
            [r["k"] for r in primal[-2:]], [r["auto_cpu_s"] for r in primal[-2:]]
        ),
        "exponent_auto_all": slope([r["k"] for r in rows], [r["auto_cpu_s"] for r in rows]),
        "exponent_dual": slope([r["k"] for r in duals], [r["dual_cpu_s"] for r in duals]),
        "exponent_dual_largest": slope(
            [r["k"] for r in duals[-2:]], [r["dual_cpu_s"] for r in duals[-2:]]
        ),
        "dual_skipped_above": dual_max,
    }


def entropies(ks: tuple[int, ...]) -> dict:
    tables = {}
    for kind, embed in (("gaussian", gaussian_embeddings), ("clustered", clustered_embeddings)):
        rows = []
        for k in ks:
            scores = chameleon_weights(embed(k)).scores
            row = {"k": k}
            for stage in ("pretrain", "finetune"):
                for temperature in ("paper", "scaled"):
                    weights = stage_weights(scores, stage, None, temperature)
                    row[f"{stage}_{temperature}_entropy"] = normalized_entropy(weights)
                    row[f"{stage}_{temperature}_max_weight"] = float(weights.max())
            rows.append(row)
        tables[kind] = rows
    return tables


def print_tables(result: dict) -> None:
    print("\nTime of chameleon_weights (fastest of the repeats: wall / CPU seconds), p = 768")
    print("| k | auto form | auto s | auto peak MB | dual s | dual peak MB | dual / auto (CPU) |")
    print("|---|---|---|---|---|---|---|")
    for r in result["timing"]["rows"]:
        dual = "—" if r["dual_s"] is None else f"{r['dual_s']:.3f} / {r['dual_cpu_s']:.3f}"
        dual_mb = "—" if r["dual_peak_mb"] is None else f"{r['dual_peak_mb']:.0f}"
        ratio = "—" if r["speedup_vs_dual"] is None else f"{r['speedup_vs_dual']:.1f}×"
        print(
            f"| {r['k']} | {r['solver']} | {r['auto_s']:.3f} / {r['auto_cpu_s']:.3f} | "
            f"{r['auto_peak_mb']:.0f} | "
            f"{dual} | {dual_mb} | {ratio} |"
        )
    t = result["timing"]
    print(
        f"scaling exponent (slope of log CPU seconds against log k): auto over its primal sizes "
        f"{t['exponent_auto_primal']:.2f} (between the two largest "
        f"{t['exponent_auto_largest']:.2f}), auto over all {t['exponent_auto_all']:.2f}; "
        f"dual {t['exponent_dual']:.2f} (between the two largest "
        f"{t['exponent_dual_largest']:.2f})"
    )
    for kind, rows in result["entropy"].items():
        print(f"\nNormalised entropy H(alpha)/log k (largest weight), {kind} embeddings, p = 768")
        print("| k | pretrain paper | pretrain scaled | finetune paper | finetune scaled |")
        print("|---|---|---|---|---|")
        for r in rows:
            cells = [
                f"{r[f'{s}_{t}_entropy']:.3f} ({r[f'{s}_{t}_max_weight']:.3g})"
                for s in ("pretrain", "finetune")
                for t in ("paper", "scaled")
            ]
            print(f"| {r['k']} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dual-max", type=int, default=3000, help="largest k for the dual form")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "numpy": np.__version__,
            # BLAS threads (unset: one per core); the machine's load at the start, since
            # other jobs sharing the cores slow the threaded solves
            "blas_threads": {
                v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
            },
            "load_average": os.getloadavg(),
        },
        "timing": timing(TIMED_KS, args.dual_max, args.repeats),
        "entropy": entropies(ENTROPY_KS),
    }
    print_tables(result)
    write_json(args.out, result)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
