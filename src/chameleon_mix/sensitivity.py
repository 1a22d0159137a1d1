"""How the Chameleon weights move with their settings (the paper's Table 14), without training.

The weights are recomputed from embeddings already on disk while one setting at a time moves
away from the configured one: the temperature ``tau``, the ridge ``lam``, the number of sample
embeddings averaged into each domain embedding, the proxy checkpoint that embedded the
domains, and, with several proxy replicates, each replicate alone in place of their ensemble
(:mod:`chameleon_mix.ensemble`). Plain functions on NumPy arrays; :func:`sensitivity_stage`
reads and writes the files.

Shapes: ``R`` embedders (proxy replicates), ``k`` domains, ``p`` embedding dimensions, ``n_i``
sample embeddings of domain ``i``.

    Xs         R arrays (k, p)  domain embeddings, X[i] the mean of domain i's samples
    samples    R lists of k arrays (n_i, p), one row per embedded window (stored as float16)
    weights    (k,)      a mixture on the simplex

What the derivation predicts (centred kernel ``K`` of rank ``k - 1``, i.e. ``k <= p + 1``, with
``S_i = sum_j mu_j / (mu_j + k lam) u_ij^2`` over its eigenpairs ``(mu_j, u_j)``):

* ``tau``: ``tau -> inf`` gives the uniform mixture, ``tau -> 0`` all weight on one domain.
* ``lam -> 0``: every ``S_i -> 1 - 1/k``, so the normalised scores, and the mixture, become
  uniform. ``lam -> inf``: ``S_i -> K_ii / (k lam)``, scores proportional to each domain's
  squared distance from the mean embedding. Between the two, raising ``lam`` tends to
  concentrate the mixture (not always monotonically), and only where ``k lam`` is comparable
  with the eigenvalues of ``K``: far below or above them every ``lam`` gives one mixture.
"""

from __future__ import annotations

import csv
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np

from .ensemble import ensemble_weights
from .io import atomic_path
from .krls import default_tau
from .weights import by_embedder, common_domains, load_embeddings, load_samples, sample_files

AXES = {
    "tau": "temperature τ",
    "lambda": "ridge λ",
    "samples": "embedding samples per domain",
    "checkpoint": "proxy checkpoint (step)",
    "seed": "proxy replicate (seed)",
}
# The paper's range, 1-20 around its pretraining tau = 5, as multiples of the configured tau:
# the scale of a useful tau differs by stage (finetuning's 0.2) and by temperature form.
TAU_FACTORS = (0.2, 0.4, 0.6, 1.0, 1.4, 2.0, 3.0, 4.0)
LAMBDA_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
SAMPLE_FRACTIONS = (0.25, 0.5, 1.0)
# The share of the weight whose holders the tables count ("3 of 9 domains hold 90%").
MASS = 0.9


def normalized_entropy(weights: np.ndarray) -> float:
    """Entropy of a (k,) mixture divided by ``log k``: 1 for uniform, 0 for one domain."""
    w = np.asarray(weights, dtype=np.float64)
    nonzero = w[w > 0]
    return float(-(nonzero * np.log(nonzero)).sum() / np.log(len(w)))


def domains_holding(weights: np.ndarray, mass: float = MASS) -> int:
    """The fewest domains whose weights add up to ``mass``."""
    ranked = np.sort(np.asarray(weights, dtype=np.float64))[::-1]
    # The tolerance keeps a mixture of exactly 0.9 + 0.1 from needing a second domain.
    return int(np.searchsorted(np.cumsum(ranked), mass - 1e-12) + 1)


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Half the L1 distance of two (k,) mixtures: the share of the weight that moved."""
    return float(0.5 * np.abs(np.asarray(a) - np.asarray(b)).sum())


def subsample_rows(n: int, fraction: float, seed: int, name: str) -> np.ndarray:
    """Sorted indices of a seeded ``fraction`` (at least one) of a domain's ``n`` sample rows.

    They are the first rows of a permutation seeded by ``seed`` and the domain's name, so the
    subsets are nested (1/4 within 1/2) and a domain keeps its subset when others are added."""
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    return np.sort(rng.permutation(n)[: max(1, round(fraction * n))])


def subsample_embeddings(
    samples: list[np.ndarray], names: list[str], fraction: float, seed: int
) -> np.ndarray:
    """(k, p) domain embeddings, each the float64 mean of :func:`subsample_rows` of its
    domain's (n_i, p) samples (the float64 mean of all of them is how the embedding stage
    forms a domain embedding)."""
    return np.stack(
        [
            s[subsample_rows(len(s), fraction, seed, name)].astype(np.float64).mean(axis=0)
            for name, s in zip(names, samples)
        ]
    )


def _fraction_label(fraction: float, samples: list[np.ndarray]) -> str:
    counts = sorted({max(1, round(fraction * len(s))) for s in samples})
    per_domain = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    name = "all" if fraction == 1 else str(Fraction(fraction).limit_denominator(100))
    return f"{name} ({per_domain} per domain)"


def sweep(
    Xs: list[np.ndarray],
    settings: dict,
    names: list[str],
    samples: list[list[np.ndarray]] | None = None,
    checkpoints: dict[int, list[np.ndarray]] | None = None,
    tau_factors: tuple[float, ...] = TAU_FACTORS,
    lams: tuple[float, ...] = LAMBDA_GRID,
    fractions: tuple[float, ...] = SAMPLE_FRACTIONS,
    seed: int = 0,
    replicates: list[str] | None = None,
) -> list[dict]:
    """The weights with one setting at a time moved away from ``settings`` (the keyword
    arguments of :func:`~chameleon_mix.krls.chameleon_weights`: ``stage``, ``tau``, ..., and
    ``lam``, required).

    ``Xs`` (R arrays (k, p)) are the configured embedders' domain embeddings, combined as the
    weights stage combines them. ``samples`` (per embedder, k arrays (n_i, p)) add the samples
    axis, its fraction 1 being ``Xs`` themselves; ``checkpoints`` (step -> R arrays (k, p))
    the checkpoint axis, a step whose embeddings equal ``Xs`` being the configured one. With
    several embedders (named by ``replicates``), the seed axis gives each one's mixture
    alone. The tau grid is ``tau_factors`` times the configured tau; both grids include the
    configured value.

    Returns one dict per row: ``axis``, ``setting``, ``label``, ``configured``, ``weights``
    (k,), and the summary ``max_weight``, ``normalized_entropy``, ``domains_for_mass``,
    ``tv_from_configured`` (to the configured weights).
    """
    settings = {key: value for key, value in settings.items() if key != "bootstrap"}
    configured = weights_of(Xs, settings, names)
    tau = settings.get("tau") or default_tau(
        settings.get("stage", "pretrain"), settings.get("temperature", "paper")
    )

    def row(axis, setting, label, weights, is_configured):
        return {
            "axis": axis,
            "setting": setting,
            "label": label,
            "configured": is_configured,
            "weights": weights,
            "max_weight": float(weights.max()),
            "normalized_entropy": normalized_entropy(weights),
            "domains_for_mass": domains_holding(weights),
            "tv_from_configured": total_variation(weights, configured),
        }

    def weights(embeddings=Xs, **change):
        return weights_of(embeddings, {**settings, **change}, names)

    rows = []
    for value in sorted({tau * f for f in tau_factors} | {tau}):
        rows.append(row("tau", value, f"{value:g}", weights(tau=value), value == tau))
    for value in sorted(set(lams) | {settings["lam"]}):
        is_configured = value == settings["lam"]
        rows.append(row("lambda", value, f"{value:g}", weights(lam=value), is_configured))
    if samples is not None:
        for fraction in sorted(set(fractions) | {1.0}):
            embeddings = (
                Xs
                if fraction == 1
                else [subsample_embeddings(s, names, fraction, seed) for s in samples]
            )
            label = _fraction_label(fraction, samples[0])
            rows.append(row("samples", fraction, label, weights(embeddings), fraction == 1))
    for step, embeddings in sorted((checkpoints or {}).items()):
        is_configured = all(np.array_equal(a, b) for a, b in zip(embeddings, Xs))
        rows.append(row("checkpoint", step, str(step), weights(embeddings), is_configured))
    if len(Xs) > 1:
        for i, X in enumerate(Xs):
            label = replicates[i] if replicates else f"replicate {i}"
            rows.append(row("seed", i, label, weights([X]), False))
    return rows


def weights_of(Xs: list[np.ndarray], settings: dict, names: list[str]) -> np.ndarray:
    """The mixture of the embedders ``Xs`` as the weights stage forms it."""
    return ensemble_weights(Xs, settings, names)[0]


def write_table(rows: list[dict], names: list[str], path: str | Path) -> None:
    """One CSV line per row: its setting, summary and each domain's weight (``weight_<name>``)."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            [
                "axis",
                "setting",
                "label",
                "configured",
                "max_weight",
                "normalized_entropy",
                f"domains_for_{round(MASS * 100)}pct",
                "tv_from_configured",
                *(f"weight_{n}" for n in names),
            ]
        )
        for r in rows:
            writer.writerow(
                [
                    r["axis"],
                    f"{r['setting']:g}",
                    r["label"],
                    r["configured"],
                    f"{r['max_weight']:.6f}",
                    f"{r['normalized_entropy']:.6f}",
                    r["domains_for_mass"],
                    f"{r['tv_from_configured']:.6f}",
                    *(f"{w:.6f}" for w in r["weights"]),
                ]
            )


def _largest(weights: np.ndarray, names: list[str], shown: int = 4) -> str:
    """The domains holding ``MASS`` of the weight, largest first, at most ``shown`` named."""
    order = np.argsort(-weights, kind="stable")[: domains_holding(weights)]
    text = ", ".join(f"{names[i]} {weights[i]:.2f}" for i in order[:shown])
    return text + (f" (+{len(order) - shown} more)" if len(order) > shown else "")


def _domains(count: int) -> str:
    return f"{count} domain" + ("" if count == 1 else "s")


def _span(rows: list[dict], symbol: str) -> str:
    """How many domains hold the weight at either end of an axis's grid."""
    first, last = rows[0], rows[-1]
    return (
        f"{symbol} = {first['setting']:g} puts {MASS:.0%} of the weight on "
        f"{_domains(first['domains_for_mass'])} (largest weight {first['max_weight']:.2f}), "
        f"{symbol} = {last['setting']:g} on {_domains(last['domains_for_mass'])} (largest "
        f"{last['max_weight']:.2f})"
    )


def markdown(rows: list[dict], names: list[str], settings: dict, dataset: str) -> str:
    """The rows as one table per axis, led by what the configured mixture is and what moving
    tau and lambda does to it."""
    k = len(names)
    by_axis = {axis: [r for r in rows if r["axis"] == axis] for axis in AXES}
    [base] = [r for r in by_axis["tau"] if r["configured"]]
    configured = f"stage {settings['stage']}, τ = {base['setting']:g}, λ = {settings['lam']:g}"
    if "temperature" in settings:
        configured += f", `temperature: {settings['temperature']}`"
    lines = [
        f"# Sensitivity of the Chameleon weights: {dataset}",
        "",
        f"Each table moves one setting away from the configured one ({configured}) and "
        f"recomputes the weights of the {k} domains from the embeddings already made; no model "
        f"is trained. Per row: the largest weight, the mixture's entropy over log {k} (1 = "
        f"uniform), how many domains hold {MASS:.0%} of the weight and which, and the share of "
        "the weight that moved from the configured mixture (total variation). Every weight is "
        "in `sensitivity.csv`.",
        "",
        f"**As configured, {base['domains_for_mass']} of {k} domains hold {MASS:.0%} of the "
        f"weight**: {_largest(base['weights'], names, shown=k)} (uniform is {1 / k:.2f} "
        f"each). {_span(by_axis['tau'], 'τ')}: a larger τ flattens the mixture. "
        f"{_span(by_axis['lambda'], 'λ')}. Choose with `weights.tau` and `weights.lam` of "
        "the dataset in the config.",
    ]
    for axis, title in AXES.items():
        if not by_axis[axis]:
            continue
        lines += [
            "",
            f"## {title[0].upper()}{title[1:]}",
            "",
            f"| {title} | largest weight | normalised entropy | domains holding {MASS:.0%} "
            "| moved from configured | those domains, largest first |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in by_axis[axis]:
            label = f"**{r['label']}**, configured" if r["configured"] else r["label"]
            lines.append(
                f"| {label} | {r['max_weight']:.3f} | {r['normalized_entropy']:.3f} "
                f"| {r['domains_for_mass']} of {k} | {r['tv_from_configured']:.3f} "
                f"| {_largest(r['weights'], names)} |"
            )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], names: list[str], path: str | Path) -> None:
    """Stacked weight bars against each axis's settings, one panel per axis."""
    from .plots import _figure, _save

    plt = _figure()
    axes_present = [a for a in AXES if any(r["axis"] == a for r in rows)]
    fig, panels = plt.subplots(
        1, len(axes_present), figsize=(4 * len(axes_present) + 2, 4.5), sharey=True, squeeze=False
    )
    k = len(names)
    colors = (
        plt.get_cmap("tab10" if k <= 10 else "tab20")(np.arange(k))
        if k <= 20
        else plt.get_cmap("viridis")(np.linspace(0, 1, k))
    )
    for ax, axis in zip(panels[0], axes_present):
        axis_rows = [r for r in rows if r["axis"] == axis]
        bottom = np.zeros(len(axis_rows))
        for i, name in enumerate(names):
            heights = np.array([r["weights"][i] for r in axis_rows])
            ax.bar(range(len(axis_rows)), heights, bottom=bottom, color=colors[i], label=name)
            bottom += heights
        labels = [r["label"].split(" (")[0] + ("*" if r["configured"] else "") for r in axis_rows]
        ax.set_xticks(range(len(axis_rows)), labels, rotation=45, ha="right")
        ax.set_xlabel(AXES[axis])
        ax.set_ylim(0, 1)
    panels[0][0].set_ylabel("domain weight")
    fig.suptitle("Chameleon weights, one setting moved at a time (* configured)")
    if k <= 20:
        panels[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    _save(fig, path)


def sensitivity_stage(
    embedding_files: dict,
    settings: dict,
    outputs: dict,
    dataset: str,
    checkpoint_files: dict[int, dict] | None = None,
) -> list[dict]:
    """The sensitivity rule: ``outputs["table"]`` (CSV), ``outputs["markdown"]`` and
    ``outputs["plot"]`` from the configured embeddings (embedder -> domain -> ``.npy``, their
    samples beside them) and, for a pretraining dataset, each kept checkpoint's embeddings
    (step -> embedder -> domain -> ``.npy``). Nothing is written unless every row computes."""
    replicates = by_embedder(embedding_files)
    names = common_domains(replicates)
    Xs = [load_embeddings(files) for files in replicates.values()]
    samples = [
        load_samples(sample_files(files), X, files) for files, X in zip(replicates.values(), Xs)
    ]
    checkpoints = {
        step: [load_embeddings({n: f[n] for n in names}) for f in by_embedder(files).values()]
        for step, files in (checkpoint_files or {}).items()
    }
    rows = sweep(Xs, settings, names, samples, checkpoints, replicates=list(replicates))
    text = markdown(rows, names, settings, dataset)
    write_table(rows, names, outputs["table"])
    with atomic_path(outputs["markdown"]) as tmp:
        tmp.write_text(text)
    plot(rows, names, outputs["plot"])
    return rows
