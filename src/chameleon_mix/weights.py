"""The weights stage: domain embeddings on disk -> ``weights.json``, ``affinity.csv``, plots."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np

from .io import atomic_path, sha256_file, warn, write_json
from .krls import (
    AFFINITY_MAX_DOMAINS,
    DEFAULT_CENTER,
    DEFAULT_LAM,
    DEFAULT_NORMALIZE,
    DEFAULT_TEMPERATURE,
    chameleon_weights,
)

# Two domains whose embeddings lie closer than this fraction of the domains' spread (the root
# mean square distance of the embeddings from their mean) count as the same data: each explains
# the other, so together they get about four times one domain's pretraining weight (a demo
# domain and its copy: 0.055 alone, 0.224 together). Identical train tokens embed to exactly
# the same vector; the closest distinct demo domains (docstrings, package_readmes) lie 0.42 of
# the spread apart, the median pair 1.5. 0.05 leaves room for the rounding of another device;
# one source resampled with another seed lies 0.05-0.32 apart with 128 samples per domain and
# so is flagged only with more samples (the sampling noise shrinks as 1/sqrt(samples)).
NEAR_DUPLICATE = 0.05
MAP_POINTS = 20_000  # sample embeddings drawn on the embedding map
# The affinity heatmap labels every domain (0.6 inch each); past this many domains it is
# unreadable (and past ~900 larger than a PNG may be), so a note stands in for it.
AFFINITY_PLOT_MAX_DOMAINS = 100
# Rows of the pairwise distances computed at a time in duplicate_warnings (memory rows x k).
DISTANCE_BLOCK = 1024


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


def duplicate_warnings(
    X: np.ndarray, names: list[str], provenance: dict[str, dict], weights: dict[str, float]
) -> list[str]:
    """A message for each pair of domains with the same train tokens or near-identical
    embeddings (within ``NEAR_DUPLICATE`` of the spread), naming both."""
    centred = X - X.mean(axis=0)
    spread = float(np.sqrt((centred**2).sum(axis=1).mean()))
    pairs = near_pairs(centred, NEAR_DUPLICATE * spread)
    by_digest: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        digest = provenance[name].get("tokens_sha256")
        if digest is not None:
            by_digest.setdefault(digest, []).append(i)
    for group in by_digest.values():
        pairs |= set(itertools.combinations(group, 2))
    messages = []
    for i, j in sorted(pairs):
        a, b = names[i], names[j]
        distance = float(np.linalg.norm(X[i] - X[j]))
        relative = distance / spread if spread > 0 else 0.0
        digest = provenance[a].get("tokens_sha256")
        same_tokens = digest is not None and digest == provenance[b].get("tokens_sha256")
        if not (same_tokens or relative < NEAR_DUPLICATE):
            continue
        found = (
            f"identical train tokens (embeddings {relative:.2g} of the domains' spread apart)"
            if same_tokens
            else f"near-identical embeddings, {relative:.2g} of the domains' spread apart "
            f"(below {NEAR_DUPLICATE})"
        )
        messages.append(
            f"domains {a!r} and {b!r} have {found}: Chameleon counts one domain twice, and "
            f"together they get {weights[a] + weights[b]:.3f} of the weight. If they hold the "
            "same data, keep one of them"
        )
    return messages


def near_pairs(X: np.ndarray, radius: float) -> set[tuple[int, int]]:
    """Index pairs ``i < j`` of rows of X that may lie within ``radius``: a superset, which the
    caller checks with exact distances. Blocks of rows keep the memory at O(k) per row; the
    squared distances ``|x_i|^2 + |x_j|^2 - 2 x_i.x_j`` are off by rounding of order
    ``eps |x|^2``, which the doubled radius and the norm term absorb."""
    squared = np.einsum("ij,ij->i", X, X)
    slack = 4 * radius**2 + 1e-9 * squared.max()
    pairs = set()
    for start in range(0, len(X), DISTANCE_BLOCK):
        block = slice(start, start + DISTANCE_BLOCK)
        distances = squared[block, None] + squared[None, :] - 2 * X[block] @ X.T
        for i, j in zip(*np.nonzero(distances <= slack)):
            if start + i < j:
                pairs.add((int(start + i), int(j)))
    return pairs


def compute_weights(
    embedding_files: dict[str, str | Path],
    out_json: str | Path | None = None,
    stage: str = "pretrain",
    lam: float = DEFAULT_LAM,
    tau: float | None = None,
    center: bool = DEFAULT_CENTER,
    normalize: bool = DEFAULT_NORMALIZE,
    affinity_csv: str | Path | None = None,
    metadata: dict | None = None,
    temperature: str = DEFAULT_TEMPERATURE,
) -> dict:
    """Chameleon weights for the domains of ``embedding_files`` (domain -> ``.npy`` path).

    Nothing is written unless the computation succeeds: a bad embedding leaves no weights.
    Every number written is finite. Past ``AFFINITY_MAX_DOMAINS`` domains the (k, k) affinity
    is not kept: ``weights.json`` has ``"affinity": null`` and a note, and so has
    ``affinity_csv``.
    """
    names = list(embedding_files)
    X = load_embeddings(embedding_files)
    result = chameleon_weights(
        X, stage, lam, tau, center, normalize, names=names, temperature=temperature
    )
    weights = dict(zip(names, result.weights.tolist()))
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
        "weights": weights,
        "scores": dict(zip(names, result.scores.tolist())),
        "affinity": None if result.affinity is None else result.affinity.tolist(),
        "params": {
            "lam": lam,
            "lam_scaled": lam * len(names),
            "tau": result.tau,
            "temperature": result.temperature,
            "center": center,
            "normalize": normalize,
        },
        "embeddings": provenance,
        "warnings": duplicate_warnings(X, names, provenance, weights),
        **(metadata or {}),
    }
    if stage == "pretrain":
        # The logits of pretraining; chameleon_weights refused a (numerically) zero score, so
        # each is finite. Finetuning's formula has no 1/S, and a zero score may occur there.
        report["inverse_scores"] = dict(zip(names, (1.0 / result.scores).tolist()))
    if result.affinity is None:
        report["affinity_note"] = affinity_note(len(names))
    for message in report["warnings"]:
        warn(message)
    if affinity_csv is not None:
        with atomic_path(affinity_csv) as tmp, open(tmp, "w", newline="") as f:
            writer = csv.writer(f)
            if result.affinity is None:
                writer.writerow(["note"])
                writer.writerow([report["affinity_note"]])
            else:
                writer.writerow(["domain", *names])
                for name, row in zip(names, result.affinity):
                    writer.writerow([name, *(f"{v:.8g}" for v in row)])
    if out_json is not None:
        write_json(out_json, report)
    return report


def affinity_note(k: int) -> str:
    return (
        f"affinity not stored: {k} domains, above {AFFINITY_MAX_DOMAINS} (a {k} x {k} matrix); "
        "the weights do not need it. chameleon_mix.krls.affinity(X) computes it from the "
        "embeddings (centred with center=true)"
    )


def corpus_provenance(manifests: dict[str, str | Path]) -> dict:
    """Each collected domain's corpus manifest with its sha256, and one digest over them all:
    two runs with equal digests weighed text collected from the same files."""
    files = {
        domain: {"path": str(path), "sha256": sha256_file(path)}
        for domain, path in manifests.items()
    }
    shas = json.dumps({domain: file["sha256"] for domain, file in files.items()}, sort_keys=True)
    return {"manifests": files, "digest": hashlib.sha256(shas.encode()).hexdigest()}


def weights_stage(
    embedding_files: dict[str, str | Path],
    settings: dict,
    outputs: dict,
    metadata: dict,
    corpus_manifests: dict[str, str | Path] | None = None,
) -> dict:
    """The weights rule: ``weights.json``, ``affinity.csv`` and the three plots;
    ``weights.json`` records the corpus manifests of the collected domains, if any
    (:func:`corpus_provenance`)."""
    from . import plots

    if corpus_manifests:
        metadata = {**metadata, "corpus": corpus_provenance(corpus_manifests)}
    report = compute_weights(
        embedding_files,
        outputs["weights"],
        affinity_csv=outputs["affinity"],
        metadata=metadata,
        **settings,
    )
    names = report["domains"]
    if report["affinity"] is not None and len(names) <= AFFINITY_PLOT_MAX_DOMAINS:
        plots.plot_affinity(np.array(report["affinity"]), names, outputs["affinity_plot"])
    else:
        note = report.get("affinity_note") or (
            f"{len(names)} domains, above {AFFINITY_PLOT_MAX_DOMAINS}: too many for a labelled "
            "heatmap; the affinity is in affinity.csv"
        )
        note_figure(note, outputs["affinity_plot"])
    # At most MAP_POINTS sample embeddings in all, read from memory maps: thousands of
    # clustered domains' samples would not fit in memory, nor be readable on one map.
    per_domain = max(1, MAP_POINTS // len(embedding_files))
    samples = {
        name: np.asarray(
            np.load(Path(path).with_suffix(".samples.npy"), mmap_mode="r")[:per_domain]
        )
        for name, path in embedding_files.items()
    }
    plots.plot_embedding_map(samples, outputs["map_plot"])
    plots.plot_weights(report["weights"], outputs["weights_plot"])
    return report


def note_figure(text: str, path: str | Path) -> None:
    """A figure holding only ``text``, where a rule's plot has nothing readable to show."""
    import textwrap

    from .plots import _figure, _save

    fig, ax = _figure().subplots(figsize=(7, 1.5))
    ax.axis("off")
    ax.text(0.5, 0.5, textwrap.fill(text, 90), ha="center", va="center", fontsize=9)
    _save(fig, path)


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
