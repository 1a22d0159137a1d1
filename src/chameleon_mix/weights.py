"""The weights stage: domain embeddings on disk -> ``weights.json``, ``affinity.csv``, plots."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from .io import atomic_path, sha256_file, write_json
from .krls import chameleon_weights


def load_embeddings(files: dict[str, str | Path]) -> np.ndarray:
    """Stack per-domain ``.npy`` vectors into (k, p); errors name the file at fault."""
    rows = []
    for domain, path in files.items():
        try:
            vector = np.load(path)
        except (OSError, ValueError) as err:
            raise ValueError(f"domain {domain!r}: cannot read embedding {path}: {err}") from err
        if vector.ndim != 1:
            raise ValueError(
                f"domain {domain!r}: embedding {path} has shape {vector.shape}, expected a vector"
            )
        rows.append(vector)
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        sizes = ", ".join(f"{d}={len(r)}" for d, r in zip(files, rows))
        raise ValueError(f"domain embeddings differ in width ({sizes}); embed all with one model")
    return np.stack(rows)


def compute_weights(
    embedding_files: dict[str, str | Path],
    out_json: str | Path | None = None,
    stage: str = "pretrain",
    lam: float = 10.0,
    tau: float | None = None,
    center: bool = True,
    normalize: bool = True,
    affinity_csv: str | Path | None = None,
    metadata: dict | None = None,
) -> dict:
    """Chameleon weights for the domains of ``embedding_files`` (domain -> ``.npy`` path).

    Nothing is written unless the computation succeeds: a bad embedding leaves no weights.
    """
    names = list(embedding_files)
    X = load_embeddings(embedding_files)
    result = chameleon_weights(X, stage, lam, tau, center, normalize, names=names)
    provenance = {}
    for name, path in embedding_files.items():
        info = Path(path).with_suffix(".json")
        provenance[name] = {
            "path": str(path),
            "sha256": sha256_file(path),
            **(json.loads(info.read_text()) if info.is_file() else {}),
        }
    report = {
        "stage": stage,
        "domains": names,
        "weights": dict(zip(names, result.weights.tolist())),
        "scores": dict(zip(names, result.scores.tolist())),
        "inverse_scores": dict(zip(names, (1.0 / result.scores).tolist())),
        "affinity": result.affinity.tolist(),
        "params": {
            "lam": lam,
            "lam_scaled": lam * len(names),
            "tau": result.tau,
            "center": center,
            "normalize": normalize,
        },
        "embeddings": provenance,
        **(metadata or {}),
    }
    if affinity_csv is not None:
        with atomic_path(affinity_csv) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["domain", *names])
            for name, row in zip(names, result.affinity):
                writer.writerow([name, *(f"{v:.8g}" for v in row)])
    if out_json is not None:
        write_json(out_json, report)
    return report


def weights_stage(
    embedding_files: dict[str, str | Path], settings: dict, outputs: dict, metadata: dict
) -> dict:
    """The weights rule: ``weights.json``, ``affinity.csv`` and the three plots."""
    from . import plots

    report = compute_weights(
        embedding_files,
        outputs["weights"],
        affinity_csv=outputs["affinity"],
        metadata=metadata,
        **settings,
    )
    names = report["domains"]
    plots.plot_affinity(np.array(report["affinity"]), names, outputs["affinity_plot"])
    samples = {
        name: np.load(Path(path).with_suffix(".samples.npy"))
        for name, path in embedding_files.items()
    }
    plots.plot_embedding_map(samples, outputs["map_plot"])
    plots.plot_weights(report["weights"], outputs["weights_plot"])
    return report


def stability_stage(
    embedding_files: dict[int, dict[str, str | Path]], settings: dict, out_table, out_plot
) -> list[dict]:
    """Weights per proxy checkpoint (step -> domain -> ``.npy``) as CSV and a plot."""
    from . import plots

    steps = sorted(embedding_files)
    weights = [compute_weights(embedding_files[s], **settings)["weights"] for s in steps]
    names = list(weights[0])
    with atomic_path(out_table) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", *names])
        for step, w in zip(steps, weights):
            writer.writerow([step, *(f"{w[n]:.6f}" for n in names)])
    plots.plot_stability(steps, weights, out_plot)
    return weights
