"""The weights stage: domain embeddings on disk -> ``weights.json``, ``affinity.csv``, plots."""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np

from .ensemble import (
    DEFAULT_DRAWS,
    DEFAULT_LEVEL,
    bootstrap_weights,
    intervals,
    replicate_scores,
    scores_to_weights,
)
from .io import atomic_path, sha256_file, warn, write_json
from .krls import (
    AFFINITY_MAX_DOMAINS,
    DEFAULT_CENTER,
    DEFAULT_LAM,
    DEFAULT_NORMALIZE,
    DEFAULT_TEMPERATURE,
    center_kernel,
    default_tau,
)
from .krls import affinity as linear_affinity

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
# A weight whose interval is wider than this, or whose replicates differ by more than this
# (standard deviation), is mostly noise at the scale of the mixture: the user is told.
UNCERTAIN_WIDTH = 0.2
UNCERTAIN_SD = 0.05
# The samples are stored as float16, so their mean differs from the stored float64 domain
# embedding by the rounding (2^-11 of each value at most); far more means the two files come
# from different embedding runs.
SAMPLE_MEAN_TOLERANCE = 1e-2


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


def load_samples(
    sample_files: dict[str, str | Path], X: np.ndarray, embedding_files: dict[str, str | Path]
) -> list[np.ndarray]:
    """Each domain's (n_i, p) sample embeddings, checked against its domain embedding ``X[i]``
    (the mean of the samples, up to their float16 rounding), memory-mapped; errors name the
    files at fault."""
    samples = []
    for (name, path), x in zip(sample_files.items(), X):
        try:
            # Memory-mapped: thousands of clustered domains' samples would not fit in memory;
            # a subsample reads its rows only.
            rows = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as err:
            raise ValueError(
                f"domain {name!r}: cannot read sample embeddings {path}: {err}. The intervals "
                "redraw the samples the embedding stage writes beside each embedding: embed "
                "the domain again, or draw no intervals (the dataset's weights.bootstrap: 0, or "
                "chameleon-weights --bootstrap 0)"
            ) from err
        if rows.ndim != 2 or rows.shape[1] != len(x) or len(rows) == 0:
            raise ValueError(
                f"domain {name!r}: sample embeddings {path} have shape {rows.shape}, expected "
                f"(samples, {len(x)}) like its embedding {embedding_files[name]}"
            )
        gap = np.linalg.norm(rows.astype(np.float64).mean(axis=0) - x) / np.linalg.norm(x)
        if not gap <= SAMPLE_MEAN_TOLERANCE:
            raise ValueError(
                f"domain {name!r}: the mean of the sample embeddings {path} is {gap:.2g} of the "
                f"norm of its embedding {embedding_files[name]} away from it (more than "
                f"{SAMPLE_MEAN_TOLERANCE}): the two files come from different embedding runs; "
                "delete both and embed the domain again"
            )
        samples.append(rows)
    return samples


def sample_files(embedding_files: dict[str, str | Path]) -> dict[str, Path]:
    """The ``.samples.npy`` beside each domain's ``.npy`` (the embedding stage writes both)."""
    return {name: Path(path).with_suffix(".samples.npy") for name, path in embedding_files.items()}


def embedding_table(
    embedders: list[str], domains: list[str], files: list[str | Path]
) -> dict[str, dict[str, str | Path]]:
    """``embedder -> domain -> file`` of a flat list, embedder by embedder (the order in which
    the workflow lists a dataset's embeddings)."""
    if len(files) != len(embedders) * len(domains):
        raise ValueError(
            f"{len(files)} embedding files for {len(embedders)} embedders x {len(domains)} domains"
        )
    rows = iter(files)
    return {embedder: {domain: next(rows) for domain in domains} for embedder in embedders}


def by_embedder(embedding_files: dict) -> dict[str, dict[str, str | Path]]:
    """``embedder -> domain -> .npy``; one embedder's ``domain -> .npy`` is named
    ``embeddings``."""
    first = next(iter(embedding_files.values()), None)
    if isinstance(first, dict):
        return embedding_files
    return {"embeddings": embedding_files}


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
    embedding_files: dict,
    out_json: str | Path | None = None,
    stage: str = "pretrain",
    lam: float = DEFAULT_LAM,
    tau: float | None = None,
    center: bool = DEFAULT_CENTER,
    normalize: bool = DEFAULT_NORMALIZE,
    affinity_csv: str | Path | None = None,
    metadata: dict | None = None,
    temperature: str = DEFAULT_TEMPERATURE,
    bootstrap: int = DEFAULT_DRAWS,
) -> dict:
    """Chameleon weights from the embeddings of ``embedding_files``: embedder (a proxy
    replicate, ``seed-0``, ...) -> domain -> ``.npy`` path, or one embedder's domain -> path.

    Several embedders' weights come from their mean scores (:mod:`chameleon_mix.ensemble`),
    with each embedder's own mixture and their spread. ``bootstrap`` draws (0: none) of the
    replicates and of each domain's sample embeddings (the ``.samples.npy`` beside each
    ``.npy``) give each weight's 90% interval.

    Nothing is written unless the computation succeeds: a bad embedding leaves no weights.
    Every number written is finite. Past ``AFFINITY_MAX_DOMAINS`` domains the (k, k) affinity
    is not kept: ``weights.json`` has ``"affinity": null`` and a note, and so has
    ``affinity_csv``.
    """
    replicates = by_embedder(embedding_files)
    names = common_domains(replicates)
    Xs = [load_embeddings(files) for files in replicates.values()]
    settings = {
        "stage": stage, "lam": lam, "tau": tau, "center": center, "normalize": normalize,
        "temperature": temperature,
    }  # fmt: skip
    each = replicate_scores(Xs, {**settings, "names": names})  # (R, k)
    scores = each.mean(axis=0)
    weights = dict(zip(names, scores_to_weights(scores, settings, names).tolist()))
    provenance = {
        embedder: {name: _provenance(path) for name, path in files.items()}
        for embedder, files in replicates.items()
    }
    k = len(names)
    affinity = mean_affinity(Xs, center) if k <= AFFINITY_MAX_DOMAINS else None
    report = {
        "stage": stage,
        "domains": names,
        "weights": weights,
        "scores": dict(zip(names, scores.tolist())),
        "affinity": None if affinity is None else affinity.tolist(),
        "params": {
            "lam": lam,
            "lam_scaled": lam * k,
            "tau": default_tau(stage, temperature) if tau is None else tau,
            "temperature": temperature,
            "center": center,
            "normalize": normalize,
            "embedders": list(replicates),
            "combined": "mean of the embedders' leverage scores" if len(Xs) > 1 else None,
        },
        "embeddings": provenance,
        **_by_replicate(list(replicates), each, settings, names),
        **_uncertainty(replicates, Xs, settings, names, bootstrap),
        "warnings": duplicate_warnings(Xs[0], names, provenance[next(iter(replicates))], weights),
        **(metadata or {}),
    }
    report["warnings"] += uncertainty_warnings(report)
    if stage == "pretrain":
        # The logits of pretraining; chameleon_weights refused a (numerically) zero score, so
        # each is finite. Finetuning's formula has no 1/S, and a zero score may occur there.
        report["inverse_scores"] = dict(zip(names, (1.0 / scores).tolist()))
    if affinity is None:
        report["affinity_note"] = affinity_note(k)
    for message in report["warnings"]:
        warn(message)
    if affinity_csv is not None:
        write_affinity(affinity_csv, affinity, names, report.get("affinity_note"))
    if out_json is not None:
        write_json(out_json, report)
    return report


def common_domains(replicates: dict[str, dict]) -> list[str]:
    """The domains every embedder embedded, in one order; an error names one that differs."""
    names = list(next(iter(replicates.values())))
    for embedder, files in replicates.items():
        if list(files) != names:
            raise ValueError(
                f"embedder {embedder!r} embedded the domains {list(files)}, not {names}"
            )
    return names


def mean_affinity(Xs: list[np.ndarray], center: bool) -> np.ndarray:
    """(k, k) mean of the embedders' affinities ``X X^T`` (each centred with ``center``)."""
    kernels = [linear_affinity(X) for X in Xs]
    return np.mean([center_kernel(K) if center else K for K in kernels], axis=0)


def _by_replicate(embedders: list[str], scores: np.ndarray, settings: dict, names: list[str]):
    """Each embedder's own mixture from its (R, k) ``scores``, and their standard deviation
    per domain (None for one embedder)."""
    mixtures = np.array([scores_to_weights(S, settings, names) for S in scores])
    spread = mixtures.std(axis=0, ddof=1) if len(mixtures) > 1 else None
    return {
        "replicates": {e: dict(zip(names, m.tolist())) for e, m in zip(embedders, mixtures)},
        "replicate_sd": None if spread is None else dict(zip(names, spread.tolist())),
    }


def write_affinity(path: str | Path, affinity, names: list[str], note: str | None) -> None:
    """``affinity.csv``: the (k, k) affinity with domain names, or the note standing in."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        if affinity is None:
            writer.writerow(["note"])
            writer.writerow([note])
        else:
            writer.writerow(["domain", *names])
            for name, row in zip(names, affinity):
                writer.writerow([name, *(f"{v:.8g}" for v in row)])


def _provenance(path: str | Path) -> dict:
    info = Path(path).with_suffix(".json")
    return {
        "path": str(path),
        "sha256": sha256_file(path),
        **(json.loads(info.read_text()) if info.is_file() else {}),
    }


def _uncertainty(
    replicates: dict[str, dict[str, str | Path]],
    Xs: list[np.ndarray],
    settings: dict,
    names: list[str],
    draws: int,
) -> dict:
    """``intervals`` (domain -> [5%, 95%] of the bootstrap's mixtures) and how they were
    drawn; both None without draws."""
    if draws == 0:
        return {"intervals": None, "uncertainty": None}
    samples = [
        load_samples(sample_files(files), X, files) for files, X in zip(replicates.values(), Xs)
    ]
    bounds = intervals(bootstrap_weights(samples, settings, draws, names=names))
    if len(Xs) > 1:
        what = f"the {len(Xs)} proxy replicates, then each domain's embedding samples"
    else:
        what = "each domain's embedding samples (one embedder: not the proxy's seed)"
    return {
        "intervals": {name: [float(lo), float(hi)] for name, (lo, hi) in zip(names, bounds)},
        "uncertainty": {
            "level": DEFAULT_LEVEL,
            "draws": draws,
            "resampled": f"{what}, with replacement",
        },
    }


def uncertainty_warnings(report: dict) -> list[str]:
    """A message naming the weights that are mostly noise: an interval wider than
    ``UNCERTAIN_WIDTH`` or replicates apart by more than ``UNCERTAIN_SD``."""
    messages = []
    wide = {
        name: hi - lo
        for name, (lo, hi) in (report["intervals"] or {}).items()
        if hi - lo > UNCERTAIN_WIDTH
    }
    if wide:
        listed = ", ".join(
            f"{name} {report['weights'][name]:.3f} [{report['intervals'][name][0]:.3f}, "
            f"{report['intervals'][name][1]:.3f}]"
            for name in sorted(wide, key=wide.get, reverse=True)[:5]
        )
        messages.append(
            f"{len(wide)} weight(s) with a {report['uncertainty']['level']:.0%} interval wider "
            f"than {UNCERTAIN_WIDTH}: {listed}. The embeddings do not pin the mixture down; "
            "embed more samples (embedding.samples), train the proxy longer, or train "
            "replicates (the proxy's seeds)"
        )
    spread = {name: sd for name, sd in (report["replicate_sd"] or {}).items() if sd > UNCERTAIN_SD}
    if spread:
        listed = ", ".join(
            f"{name} sd {sd:.3f}" for name, sd in sorted(spread.items(), key=lambda x: -x[1])[:5]
        )
        messages.append(
            f"the proxy replicates disagree on {len(spread)} weight(s) (standard deviation "
            f"above {UNCERTAIN_SD}): {listed}. Their mean is used; train the proxy longer "
            "for a mixture that does not depend on its seed"
        )
    return messages


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
    embedding_files: dict,
    settings: dict,
    outputs: dict,
    metadata: dict,
    corpus_manifests: dict[str, str | Path] | None = None,
) -> dict:
    """The weights rule: ``weights.json``, ``affinity.csv`` and the three plots from every
    embedder's embeddings (embedder -> domain -> ``.npy``, as :func:`compute_weights`);
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
    # clustered domains' samples would not fit in memory, nor be readable on one map. One
    # embedder's: replicates of other seeds do not share its basis.
    first = next(iter(by_embedder(embedding_files).values()))
    per_domain = max(1, MAP_POINTS // len(first))
    samples = {
        name: np.asarray(np.load(path, mmap_mode="r")[:per_domain])
        for name, path in sample_files(first).items()
    }
    plots.plot_embedding_map(samples, outputs["map_plot"])
    plots.plot_weights(report["weights"], outputs["weights_plot"], intervals=report["intervals"])
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
    embedding_files: dict[int, dict], settings: dict, out_table, out_plot
) -> list[dict]:
    """Weights per proxy checkpoint (step -> embedder -> domain -> ``.npy``, the replicates'
    checkpoints of one step combined as the weights stage does) as CSV and a plot."""
    from . import plots

    steps = sorted(embedding_files)
    settings = {**settings, "bootstrap": 0}
    weights = [compute_weights(embedding_files[s], **settings)["weights"] for s in steps]
    names = list(weights[0])
    with atomic_path(out_table) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", *names])
        for step, w in zip(steps, weights):
            writer.writerow([step, *(f"{w[n]:.6f}" for n in names)])
    plots.plot_stability(steps, weights, out_plot)
    return weights
